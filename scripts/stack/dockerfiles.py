#!/usr/bin/env python3
"""Renders services/api/Dockerfile and services/worker/Dockerfile from services/Dockerfile.template.

    python3 scripts/stack/dockerfiles.py           write both Dockerfiles
    python3 scripts/stack/dockerfiles.py --check   exit 1 (with a diff) when one differs

The two images are the same build (dependencies, procps, tmpfs mount points, the appuser
ownership block) and differ only in what they run; the template holds the shared part once
and ROLES below the few lines each service fills in. Only the standard library.
"""

from __future__ import annotations

import argparse
import difflib
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "services" / "Dockerfile.template"

ROLES: dict[str, dict[str, str]] = {
    "api": {
        "TITLE": "API",
        "ENV": "    DOCUSEEK_HOST=0.0.0.0 \\\n    DOCUSEEK_PORT=8000",
        "PORT": "8000",
        "PORT_VAR": "DOCUSEEK_PORT",
        "COMMAND": (
            "# uvicorn in the foreground (so `ps` shows it), the app from its factory.\n"
            'CMD ["python", "-m", "uvicorn", "docuseek.api.app:create_app", "--factory", '
            '"--host", "0.0.0.0", "--port", "8000", "--proxy-headers", '
            '"--timeout-graceful-shutdown", "20"]'
        ),
    },
    "worker": {
        "TITLE": "indexing worker",
        "ENV": "    WORKER_METRICS_PORT=9100",
        "PORT": "9100",
        "PORT_VAR": "WORKER_METRICS_PORT",
        "COMMAND": (
            "# The worker loop; SIGTERM finishes the batch in hand, then exits.\n"
            'CMD ["docuseek", "worker"]'
        ),
    },
}


def dockerfile_path(service: str) -> Path:
    return ROOT / "services" / service / "Dockerfile"


def render(template: str, service: str) -> str:
    values = dict(ROLES[service], SERVICE=service)
    values["GENERATED"] = (
        "Rendered from services/Dockerfile.template (shared by the api and worker images):\n"
        "# edit the template, then run python3 scripts/stack/dockerfiles.py."
    )
    text = "".join(line for line in template.splitlines(keepends=True) if not line.startswith("##"))
    for key, value in values.items():
        text = text.replace(f"@{key}@", value)
    if "@" in text.replace("appuser:appuser", ""):
        leftover = [ln for ln in text.splitlines() if "@" in ln and "appuser:appuser" not in ln]
        raise ValueError(f"unfilled placeholder in the {service} Dockerfile: {leftover}")
    return text


def differences(template: str, root: Path = ROOT) -> list[str]:
    """Unified diffs of every Dockerfile that is not its rendering (empty: all match)."""
    diffs = []
    for service in ROLES:
        path = root / "services" / service / "Dockerfile"
        current = path.read_text() if path.exists() else ""
        wanted = render(template, service)
        if current != wanted:
            name = str(path.relative_to(root))
            diffs.append(
                "".join(
                    difflib.unified_diff(
                        current.splitlines(keepends=True),
                        wanted.splitlines(keepends=True),
                        f"{name} (in the repository)",
                        f"{name} (rendered from the template)",
                    )
                )
            )
    return diffs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare, write nothing")
    args = parser.parse_args()
    template = TEMPLATE.read_text()
    if args.check:
        diffs = differences(template)
        for diff in diffs:
            sys.stdout.write(diff)
        if diffs:
            print("Dockerfiles differ from services/Dockerfile.template: edit the template and")
            print("run python3 scripts/stack/dockerfiles.py")
            return 1
        print(f"Dockerfiles match services/Dockerfile.template ({', '.join(ROLES)})")
        return 0
    for service in ROLES:
        dockerfile_path(service).write_text(render(template, service))
    return 0


if __name__ == "__main__":
    sys.exit(main())
