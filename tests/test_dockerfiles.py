"""The api and worker Dockerfiles are renderings of one template (services/Dockerfile.template).

The deployment requirements (docs/deploy.md) want both files, each with the appuser ownership
block; the template keeps their shared lines in one place, and these tests keep the files equal
to it.
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]

# The ownership block of docs/deploy.md's requirement R2, contiguous and in this order.
OWNERSHIP_BLOCK = [
    "RUN groupadd -r appuser -g 1000 && \\",
    "useradd -r -u 1000 -g appuser -d /app -s /bin/bash appuser",
    "RUN mkdir -p /app && chown -R appuser:appuser /app",
    "WORKDIR /app",
    "COPY --chown=appuser:appuser pyproject.toml /app/pyproject.toml",
    "COPY --chown=appuser:appuser src /app/src",
    "USER appuser",
]


def load_renderer() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "dockerfiles", ROOT / "scripts" / "stack" / "dockerfiles.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_both_dockerfiles_are_renderings_of_the_template() -> None:
    renderer = load_renderer()
    assert renderer.differences(renderer.TEMPLATE.read_text()) == []


def test_a_dockerfile_edited_by_hand_is_reported(tmp_path: Path) -> None:
    renderer = load_renderer()
    shutil.copytree(ROOT / "services", tmp_path / "services")
    worker = tmp_path / "services" / "worker" / "Dockerfile"
    worker.write_text(worker.read_text().replace("USER appuser\n", "USER root\n"))
    diffs = renderer.differences(renderer.TEMPLATE.read_text(), root=tmp_path)
    assert len(diffs) == 1
    assert "services/worker/Dockerfile" in diffs[0]
    assert "-USER root" in diffs[0] and "+USER appuser" in diffs[0]


def test_each_dockerfile_carries_the_ownership_block() -> None:
    for service in ("api", "worker"):
        lines = [
            line.strip()
            for line in (ROOT / "services" / service / "Dockerfile").read_text().splitlines()
            if line.strip() and not line.lstrip().startswith("#")
        ]
        start = lines.index(OWNERSHIP_BLOCK[0])
        assert lines[start : start + len(OWNERSHIP_BLOCK)] == OWNERSHIP_BLOCK, service
