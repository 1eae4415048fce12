#!/usr/bin/env python3
"""Checks the deployment requirements of docs/deploy.md against the running stack.

Every command of the requirements' verification checklist (R8) runs against the
live containers (through `docker compose exec`), together with a check for each
other requirement (R1-R7: tmpfs, image ownership, backups, monitoring paths,
limits, postgres_exporter, no password in a file) and the hardening beyond them.
Rows name the requirement they prove. Prints a pass/fail table and exits 1 when
any row fails.

    python3 scripts/stack/verify.py --env-file infra/.env
    make verify                       # the same

Only the standard library; needs `docker compose` and a running stack.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SECRETS = (
    "POSTGRES_PASSWORD",
    "OPENSEARCH_PASSWORD",
    "GRAFANA_ADMIN_PASSWORD",
    "DOCUSEEK_ADMIN_KEY",
)
APP_SERVICES = ("api", "worker")
ONE_SHOT = ("migrate",)
# The OpenSearch development password that requirement R7 forbids in any file, as its
# SHA-256 and length, so that this file does not hold it either.
DEV_PASSWORD_SHA256 = "be90ddcbb84c84d41a1cc565e5123fd339cd2b7428be56c295becafbb8d38795"
DEV_PASSWORD_LENGTH = 23
TOKEN = re.compile(r"[^\s\"'`=:,;()\[\]{}<>|]+")


def contains_digest(text: str, sha256: str, length: int) -> bool:
    """True when some `length`-character run inside a token of `text` has this SHA-256."""
    for token in TOKEN.findall(text):
        for start in range(len(token) - length + 1):
            window = token[start : start + length].encode()
            if hashlib.sha256(window).hexdigest() == sha256:
                return True
    return False


def files_with_digest(root: Path, sha256: str, length: int) -> list[str]:
    """The repository's tracked files (every file when git is not there) holding the string."""
    rc = subprocess.run(
        ["git", "-C", str(root), "ls-files", "-z"], capture_output=True, check=False
    )
    if rc.returncode == 0:
        paths = [root / p for p in rc.stdout.decode().split("\0") if p]
    else:
        skip = {".git", ".venv", ".cache", "node_modules"}
        paths = [p for p in root.rglob("*") if p.is_file() and not skip & set(p.parts)]
    found = []
    for path in paths:
        try:
            text = path.read_text(errors="replace")
        except (OSError, UnicodeDecodeError):
            continue
        if contains_digest(text, sha256, length):
            found.append(str(path.relative_to(root)))
    return found


@dataclass
class Row:
    check: str
    status: str  # PASS | FAIL | SKIP
    evidence: str


class Verifier:
    def __init__(self, args: argparse.Namespace) -> None:
        self.compose_file = Path(args.compose_file).resolve()
        self.env_file = Path(args.env_file).resolve() if args.env_file else None
        self.project = args.project_name
        self.skip = set(args.skip_service or [])
        self.rows: list[Row] = []
        base = ["docker", "compose", "-f", str(self.compose_file)]
        if self.env_file:
            base += ["--env-file", str(self.env_file)]
        if self.project:
            base += ["-p", self.project]
        self.compose = base
        self.env_values = self._read_env_file()

    # -- helpers -----------------------------------------------------------
    def _read_env_file(self) -> dict[str, str]:
        values: dict[str, str] = {}
        if self.env_file and self.env_file.exists():
            for line in self.env_file.read_text().splitlines():
                line = line.strip()
                if line and not line.startswith("#") and "=" in line:
                    key, _, value = line.partition("=")
                    values[key.strip()] = value.strip().strip("'\"")
        for key in SECRETS:
            if key in os.environ:
                values.setdefault(key, os.environ[key])
        return values

    def run(
        self, cmd: list[str], timeout: float = 60, env: dict[str, str] | None = None
    ) -> tuple[int, str]:
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
        except subprocess.TimeoutExpired:
            return 124, f"timed out after {timeout}s: {shlex.join(cmd)}"
        return proc.returncode, (proc.stdout + proc.stderr).strip()

    def exec(self, service: str, shell: str, timeout: float = 30) -> tuple[int, str]:
        return self.run(self.compose + ["exec", "-T", service, "sh", "-c", shell], timeout=timeout)

    def add(self, check: str, ok: bool | None, evidence: str) -> None:
        status = "SKIP" if ok is None else ("PASS" if ok else "FAIL")
        self.rows.append(Row(check, status, " ".join(evidence.split())))

    def skipped(self, service: str) -> bool:
        return service in self.skip

    # -- state of the stack ------------------------------------------------
    def load(self) -> bool:
        rc, out = self.run(self.compose + ["config", "--format", "json"])
        if rc != 0:
            self.add("docker compose config", False, out[-300:])
            return False
        self.config = json.loads(out)
        rc, raw = self.run(self.compose + ["config", "--format", "json", "--no-interpolate"])
        self.raw_config = json.loads(raw) if rc == 0 else {"services": {}}
        self.services = sorted(self.config["services"])
        rc, out = self.run(self.compose + ["ps", "-a", "--format", "json"])
        entries: list[dict] = []
        text = out.strip()
        if rc == 0 and text:
            if text.startswith("["):
                entries = json.loads(text)
            else:
                entries = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
        self.containers: dict[str, list[dict]] = {}
        for entry in entries:
            self.containers.setdefault(entry["Service"], []).append(entry)
        self.inspect: dict[str, dict] = {}
        names = [c["Name"] for cs in self.containers.values() for c in cs]
        if names:
            rc, out = self.run(["docker", "inspect"] + names)
            if rc == 0:
                for item in json.loads(out):
                    service = item["Config"]["Labels"].get("com.docker.compose.service", "")
                    if item["State"].get("Running"):
                        self.inspect[service] = item
                    else:
                        self.inspect.setdefault(service, item)
        return True

    # -- the specification's checklist -------------------------------------
    def check_tmpfs(self) -> None:
        for service in APP_SERVICES:
            for path in ("/tmp", "/var/tmp"):
                rc, ls = self.exec(service, f"ls -ld {path}")
                rc2, st = self.exec(service, f"stat -c '%a %u %g' {path}")
                ok = (
                    rc == 0
                    and ls.startswith("drwxrwxrwt")
                    and rc2 == 0
                    and st.split() == ["1777", "1000", "1000"]
                )
                self.add(
                    f"R1 tmpfs {path} in {service}: drwxrwxrwt 1000 1000",
                    ok,
                    f"$ ls -ld {path} -> {ls} | stat: {st}",
                )

    def check_write(self) -> None:
        for service in APP_SERVICES:
            rc, out = self.exec(
                service,
                "touch /tmp/test.txt && rm /tmp/test.txt && touch /var/tmp/test.txt "
                "&& rm /var/tmp/test.txt && echo Success",
            )
            self.add(
                f"R1 R8 write test /tmp and /var/tmp in {service}",
                rc == 0 and "Success" in out,
                f"$ touch /tmp/test.txt && rm /tmp/test.txt [/var/tmp too] -> {out}",
            )
            probe = (
                "import tempfile, os\n"
                "for d in (None, '/var/tmp'):\n"
                "    with tempfile.TemporaryFile(dir=d) as f:\n"
                "        f.write(os.urandom(1 << 20)); f.flush(); f.seek(0)\n"
                "        assert len(f.read()) == 1 << 20\n"
                "print('1 MiB temp files ok in', tempfile.gettempdir(), 'and /var/tmp')"
            )
            rc, out = self.run(
                self.compose + ["exec", "-T", service, "python", "-c", probe], timeout=30
            )
            self.add(
                f"app temp files (python tempfile) in {service}",
                rc == 0 and "ok" in out,
                out[-200:],
            )
            rc, out = self.exec(service, "touch /app/should-fail 2>&1; echo rc=$?")
            self.add(
                f"root filesystem read-only in {service}", "rc=1" in out and "Read-only" in out, out
            )

    def check_ownership(self) -> None:
        for service in APP_SERVICES:
            rc, listing = self.exec(service, "ls -la /app/src | head -5")
            rc2, stray = self.exec(
                service,
                "stat -c '%u:%g' /app && "
                "find /app \\( ! -uid 1000 -o ! -gid 1000 \\) -print | head -5",
            )
            lines = stray.splitlines()
            ok = rc == 0 and rc2 == 0 and lines[:1] == ["1000:1000"] and len(lines) == 1
            owners = {
                ln.split()[2] + ":" + ln.split()[3]
                for ln in listing.splitlines()[1:]
                if len(ln.split()) > 4
            }
            ok = ok and owners <= {"appuser:appuser"}
            self.add(
                f"R2 R8 /app owned 1000:1000 (appuser) in {service}",
                ok,
                f"$ ls -la /app/src | head -5 -> owners {sorted(owners)}; /app {lines[:1]}; "
                f"not 1000:1000: {lines[1:] or 'none'}",
            )

    def check_dockerfiles(self) -> None:
        spec = importlib.util.spec_from_file_location(
            "dockerfiles", ROOT / "scripts" / "stack" / "dockerfiles.py"
        )
        assert spec is not None and spec.loader is not None
        renderer = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(renderer)
        diffs = renderer.differences(renderer.TEMPLATE.read_text())
        block = [
            "RUN groupadd -r appuser -g 1000 && \\",
            "useradd -r -u 1000 -g appuser -d /app -s /bin/bash appuser",
            "RUN mkdir -p /app && chown -R appuser:appuser /app",
            "WORKDIR /app",
            "COPY --chown=appuser:appuser pyproject.toml /app/pyproject.toml",
            "COPY --chown=appuser:appuser src /app/src",
            "USER appuser",
        ]
        missing = []
        for service in APP_SERVICES:
            lines = [
                ln.strip()
                for ln in renderer.dockerfile_path(service).read_text().splitlines()
                if ln.strip() and not ln.lstrip().startswith("#")
            ]
            at = lines.index(block[0]) if block[0] in lines else -1
            if at < 0 or lines[at : at + len(block)] != block:
                missing.append(service)
        self.add(
            "R2 api and worker Dockerfiles: appuser 1000, chown /app, COPY --chown, USER appuser",
            not missing,
            f"without the ownership block: {missing or 'none'}",
        )
        self.add(
            "R2 both Dockerfiles match services/Dockerfile.template",
            not diffs,
            f"differing: {len(diffs)} (python3 scripts/stack/dockerfiles.py --check)",
        )

    def check_processes(self) -> None:
        wanted = {"api": "uvicorn", "worker": "docuseek worker"}
        for service in APP_SERVICES:
            rc, ps = self.exec(service, "ps aux")
            rc2, uids = self.exec(service, "ps -eo uid= | sort -u")
            head = [
                ln
                for ln in ps.splitlines()
                if re.search(r"PID|" + wanted[service], ln) and "ps aux" not in ln
            ]
            main = [ln for ln in head if wanted[service] in ln]
            ok = rc == 0 and bool(main) and all(ln.split()[0] in ("appuser", "1000") for ln in main)
            ok = ok and rc2 == 0 and uids.split() == ["1000"]
            shown = [ln for ln in head if "docker-init" not in ln]
            self.add(
                f"R2 R8 {wanted[service]} runs as appuser (uid 1000) in {service}",
                ok,
                f'$ ps aux | grep -E "PID|{wanted[service]}" -> '
                f"{' / '.join(ln[:110] for ln in shown[1:])}; "
                f"uids of all processes: {uids.split()}",
            )

    def check_healthy(self) -> None:
        rc, out = self.run(self.compose + ["ps"])
        self.add("R8 docker compose ps answers", rc == 0, out.splitlines()[0] if out else out)
        for service in self.services:
            if self.skipped(service):
                self.add(
                    f"R8 service {service} healthy",
                    None,
                    "not started by this run (--skip-service)",
                )
                continue
            containers = self.containers.get(service, [])
            if not containers:
                self.add(f"R8 service {service} healthy", False, "no container")
                continue
            if service in ONE_SHOT:
                c = containers[0]
                ok = c.get("State") == "exited" and int(c.get("ExitCode", 1)) == 0
                self.add(
                    f"R8 one-shot {service} completed",
                    ok,
                    f"{c.get('State')} exit {c.get('ExitCode')}",
                )
                continue
            states = [(c.get("State"), c.get("Health")) for c in containers]
            ok = all(s == "running" and h == "healthy" for s, h in states)
            self.add(f"R8 service {service} healthy", ok, f"{len(containers)} containers: {states}")

    def check_backups(self) -> None:
        path = self.compose_file.parent / "backups"
        exists = path.is_dir()
        mode = oct(path.stat().st_mode & 0o777) if exists else "missing"
        self.add(
            "R3 backups directory present, mode 755",
            exists and mode == "0o755",
            f"$ test -d {path.relative_to(ROOT) if exists else path} -> "
            f"{'Directory exists' if exists else 'Missing'}, mode {mode}",
        )
        backup = self.config["services"].get("backup", {})
        mounted = any(
            v.get("target") == "/backups" and Path(v.get("source", "")) == path
            for v in backup.get("volumes", [])
        )
        user = str(backup.get("user", "root"))
        self.add(
            "R3 backup service mounts infra/backups, runs non-root",
            mounted and not user.startswith("0") and user != "root",
            f"user {user}, mount {'ok' if mounted else 'missing'}",
        )
        waits = backup.get("depends_on", {}).get("migrate", {}).get("condition")
        self.add(
            "backup's first dump waits for the migration",
            waits == "service_completed_successfully",
            f"depends_on migrate: {waits}",
        )
        if not self.skipped("backup") and "backup" in self.inspect:
            rc, out = self.exec(
                "backup",
                "bash /opt/docuseek/backup.sh check && bash /opt/docuseek/backup.sh list | head -3",
            )
            self.add("R3 backup service has a fresh custom-format dump", rc == 0, out)
            rc, out = self.exec(
                "backup",
                'f="$(bash /opt/docuseek/backup.sh list | head -n1)"; '
                'pg_restore --list "$f" | grep -E "TABLE [a-z_]+ alembic_version" '
                '&& echo "schema in $(basename "$f")"',
            )
            self.add(
                "newest dump holds the migrated schema (alembic_version)",
                rc == 0 and "schema in" in out,
                out[-160:],
            )

    def check_limits(self) -> None:
        worker = self.config["services"].get("worker", {})
        res = worker.get("deploy", {}).get("resources", {})
        lim, rsv = res.get("limits", {}), res.get("reservations", {})
        cfg_ok = (
            float(lim.get("cpus", 0)) == 1.0
            and int(lim.get("memory", 0)) == 1 << 30
            and float(rsv.get("cpus", 0)) == 0.5
            and int(rsv.get("memory", 0)) == 512 << 20
        )
        self.add(
            "R5 worker limits cpus 1.0 / 1G, reservations 0.5 / 512M in compose",
            cfg_ok,
            f"limits {lim} reservations {rsv}",
        )
        info = self.inspect.get("worker")
        if info:
            hc = info["HostConfig"]
            ok = (
                hc.get("NanoCpus") == 10**9
                and hc.get("Memory") == 1 << 30
                and hc.get("MemoryReservation") == 512 << 20
            )
            self.add(
                "R5 worker limits applied by the engine",
                ok,
                f"NanoCpus {hc.get('NanoCpus')} Memory {hc.get('Memory')} "
                f"MemoryReservation {hc.get('MemoryReservation')}",
            )
        else:
            self.add("R5 worker limits applied by the engine", False, "worker not running")
        missing = [
            s
            for s, c in self.config["services"].items()
            if not c.get("deploy", {}).get("resources", {}).get("limits", {}).get("memory")
            or not c.get("deploy", {}).get("resources", {}).get("limits", {}).get("cpus")
        ]
        self.add(
            "every service has cpu and memory limits", not missing, f"without: {missing or 'none'}"
        )

    def check_secrets(self) -> None:
        text = self.compose_file.read_text()
        leaked = [k for k in SECRETS if self.env_values.get(k) and self.env_values[k] in text]
        self.add(
            "R7 no live secret value in compose.yaml",
            not leaked,
            f"live secret values found in the file: {leaked or 'none'}",
        )
        holders = files_with_digest(ROOT, DEV_PASSWORD_SHA256, DEV_PASSWORD_LENGTH)
        if not self.compose_file.is_relative_to(ROOT) and contains_digest(
            text, DEV_PASSWORD_SHA256, DEV_PASSWORD_LENGTH
        ):
            holders.append(str(self.compose_file))
        self.add(
            "R7 the OpenSearch dev password in no file (matched by SHA-256)",
            not holders,
            f"files holding it: {holders or 'none'}",
        )
        live = self.env_values.get("OPENSEARCH_PASSWORD", "")
        self.add(
            "R7 OPENSEARCH_PASSWORD is not the published dev password",
            hashlib.sha256(live.encode()).hexdigest() != DEV_PASSWORD_SHA256,
            "compared by SHA-256",
        )
        literal = []
        pattern = re.compile(r"PASSWORD|PASS$|SECRET|_KEY$|TOKEN")
        for name, svc in self.raw_config.get("services", {}).items():
            for key, value in (svc.get("environment") or {}).items():
                required = re.fullmatch(r"\$\{[A-Z_]+:\?[^}]*\}", str(value))
                if pattern.search(key) and value is not None and not required:
                    literal.append(f"{name}.{key}={value}")
        self.add(
            "every secret variable is a required ${VAR:?message}",
            not literal,
            f"others: {literal or 'none'}",
        )
        search_env = self.raw_config.get("services", {}).get("search", {}).get("environment", {})
        self.add(
            "R7 OPENSEARCH_INITIAL_ADMIN_PASSWORD=${OPENSEARCH_PASSWORD...}",
            str(search_env.get("OPENSEARCH_INITIAL_ADMIN_PASSWORD", "")).startswith(
                "${OPENSEARCH_PASSWORD:?"
            ),
            str(search_env.get("OPENSEARCH_INITIAL_ADMIN_PASSWORD")),
        )
        base_env = {k: v for k, v in os.environ.items() if k not in SECRETS}
        for key in SECRETS:
            with tempfile.NamedTemporaryFile("w", suffix=".env", delete=False) as f:
                for k, v in self.env_values.items():
                    if k != key:
                        f.write(f"{k}={v}\n")
                tmp = f.name
            cmd = [
                "docker",
                "compose",
                "-f",
                str(self.compose_file),
                "--env-file",
                tmp,
                "config",
                "-q",
            ]
            rc, out = self.run(cmd, env=base_env)
            os.unlink(tmp)
            self.add(
                f"compose refuses to start without {key}",
                rc != 0 and key in out,
                out.splitlines()[-1] if out else "",
            )

    def check_hardening(self) -> None:
        for service in APP_SERVICES:
            info = self.inspect.get(service)
            if not info:
                self.add(f"R1 {service} read_only with uid/gid/mode tmpfs", False, "not running")
                continue
            hc = info["HostConfig"]
            tmpfs = hc.get("Tmpfs") or {}
            want = {"uid=1000", "gid=1000", "mode=1777"}
            ok = hc.get("ReadonlyRootfs") is True and all(
                want <= set(tmpfs.get(p, "").split(",")) for p in ("/tmp", "/var/tmp")
            )
            self.add(
                f"R1 {service} read_only, tmpfs /tmp and /var/tmp uid=1000,gid=1000,mode=1777",
                ok,
                f"ReadonlyRootfs {hc.get('ReadonlyRootfs')} Tmpfs {tmpfs}",
            )
        weak = []
        for service, info in self.inspect.items():
            hc = info["HostConfig"]
            if "ALL" not in (hc.get("CapDrop") or []) or not any(
                o.startswith("no-new-privileges") for o in (hc.get("SecurityOpt") or [])
            ):
                weak.append(service)
        self.add(
            "cap_drop ALL and no-new-privileges on every container",
            not weak and bool(self.inspect),
            f"{len(self.inspect)} containers; without: {weak or 'none'}",
        )
        exposed = []
        for service, info in self.inspect.items():
            for port, bindings in (info["HostConfig"].get("PortBindings") or {}).items():
                for b in bindings or []:
                    if b.get("HostIp") not in ("127.0.0.1", "::1"):
                        exposed.append(f"{service} {port} on {b.get('HostIp') or '0.0.0.0'}")
        self.add(
            "published ports bound to 127.0.0.1", not exposed, f"not loopback: {exposed or 'none'}"
        )
        nolog = [
            s
            for s, c in self.config["services"].items()
            if not c.get("logging", {}).get("options", {}).get("max-size")
        ]
        self.add(
            "log rotation (json-file max-size/max-file) on every service",
            not nolog,
            f"without: {nolog or 'none'}",
        )
        nohc = [
            s
            for s, c in self.config["services"].items()
            if s not in ONE_SHOT and (not c.get("healthcheck") or c["healthcheck"].get("disable"))
        ]
        self.add(
            "healthcheck on every long-running service", not nohc, f"without: {nohc or 'none'}"
        )
        unpinned = []
        for s, c in self.raw_config.get("services", {}).items():
            image = str(c.get("image", ""))
            default = re.sub(r"^\$\{[A-Z_]+:-(.*)\}$", r"\1", image)
            while default.startswith("${"):
                default = re.sub(r"^\$\{[A-Z_]+:-(.*)\}$", r"\1", default)
            if not image or ":" not in default or default.endswith(":latest"):
                unpinned.append(f"{s}={image}")
        self.add(
            "pinned image versions (defaults)", not unpinned, f"unpinned: {unpinned or 'none'}"
        )
        bad_deps = []
        for s, c in self.config["services"].items():
            for dep, d in (c.get("depends_on") or {}).items():
                if d.get("condition") != "service_healthy" and dep not in ONE_SHOT:
                    bad_deps.append(f"{s}->{dep}")
        api_deps = self.config["services"].get("api", {}).get("depends_on", {})
        ok = (
            api_deps.get("migrate", {}).get("condition") == "service_completed_successfully"
            and self.config["services"]
            .get("worker", {})
            .get("depends_on", {})
            .get("migrate", {})
            .get("condition")
            == "service_completed_successfully"
            and not bad_deps
        )
        self.add(
            "api/worker wait for migrate; dependencies wait for service_healthy",
            ok,
            f"plain service_started: {bad_deps or 'none'}",
        )

    def check_monitoring(self) -> None:
        mon = ROOT / "services" / "api" / "monitoring"
        wanted = {
            "postgres_exporter": mon / "postgres_exporter.yml",
            "prometheus": mon / "prometheus.yml",
            "grafana": mon / "grafana_dashboard.json",
        }
        wrong = []
        for service, path in wanted.items():
            vols = self.config["services"].get(service, {}).get("volumes", [])
            if not any(Path(v.get("source", "")) == path for v in vols):
                wrong.append(service)
            elif not path.exists():
                wrong.append(f"{service} (file missing)")
        raw = self.compose_file.read_text()
        self.add(
            "R4 monitoring mounts use ../services/api/monitoring/...",
            not wrong and "./services/" not in raw.replace("../services/", ""),
            f"wrong: {wrong or 'none'}",
        )
        copies = list((ROOT / "infra").glob("services/**/*"))
        names = {"postgres_exporter.yml", "grafana_dashboard.json", "prometheus.yml"}
        dupes = [
            str(p.relative_to(ROOT))
            for p in ROOT.rglob("*")
            if p.name in names
            and ".git" not in p.parts
            and ".cache" not in p.parts
            and p.parent != mon
        ]
        self.add(
            "R4 one copy of each monitoring file, no infra/services/",
            not copies and not dupes,
            f"infra/services entries: {len(copies)}; other copies: {dupes or 'none'}",
        )
        if self.skipped("grafana"):
            self.add(
                "grafana serves the provisioned Docuseek dashboard",
                None,
                "not started by this run (--skip-service)",
            )
        elif "grafana" in self.inspect:
            rc, out = self.exec(
                "grafana",
                'wget -q -O - "http://$GF_SECURITY_ADMIN_USER:$GF_SECURITY_ADMIN_PASSWORD'
                '@127.0.0.1:3000/api/search?query=Docuseek"',
            )
            self.add(
                "grafana serves the provisioned Docuseek dashboard",
                rc == 0 and "docuseek-overview" in out,
                out[:160] if rc == 0 else f"rc {rc}: {out[-160:]}",
            )
        if self.skipped("postgres_exporter") or "postgres_exporter" not in self.inspect:
            self.add(
                "R6 postgres_exporter reaches PostgreSQL (pg_up 1)",
                None if self.skipped("postgres_exporter") else False,
                "not running",
            )
        else:
            rc, out = self.exec(
                "postgres_exporter",
                "wget -q -O - http://127.0.0.1:9187/metrics | grep -E '^pg_up '",
            )
            self.add(
                "R6 postgres_exporter reaches PostgreSQL (pg_up 1)",
                rc == 0 and out.strip().endswith(" 1"),
                out,
            )

    # -- report --------------------------------------------------------------
    def report(self) -> int:
        width = max(len(r.check) for r in self.rows)
        print(f"{'#':>3}  {'CHECK':<{width}}  STATUS  EVIDENCE")
        print(f"{'-' * 3}  {'-' * width}  ------  {'-' * 40}")
        for i, r in enumerate(self.rows, 1):
            ev = r.evidence if len(r.evidence) <= 160 else r.evidence[:157] + "..."
            print(f"{i:>3}  {r.check:<{width}}  {r.status:<6}  {ev}")
        counts = {s: sum(r.status == s for r in self.rows) for s in ("PASS", "FAIL", "SKIP")}
        print(
            f"\nverify: {counts['PASS']} passed, {counts['FAIL']} failed, {counts['SKIP']} skipped"
        )
        return 1 if counts["FAIL"] else 0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--compose-file", default=str(ROOT / "infra" / "compose.yaml"))
    parser.add_argument("--env-file", default=str(ROOT / "infra" / ".env"))
    parser.add_argument("--project-name", "-p", default=None)
    parser.add_argument(
        "--skip-service",
        action="append",
        help="a service this deployment does not start (reported SKIP, not FAIL)",
    )
    args = parser.parse_args()
    if args.env_file and not Path(args.env_file).exists():
        print(f"verify: env file {args.env_file} not found", file=sys.stderr)
        return 2
    v = Verifier(args)
    if v.load():
        for step in (
            v.check_tmpfs,
            v.check_write,
            v.check_ownership,
            v.check_dockerfiles,
            v.check_processes,
            v.check_healthy,
            v.check_backups,
            v.check_limits,
            v.check_secrets,
            v.check_hardening,
            v.check_monitoring,
        ):
            try:
                step()
            except Exception as exc:  # a broken check is a failed row, not a crash
                v.add(f"{step.__name__} ran", False, f"{type(exc).__name__}: {exc}")
    return v.report()


if __name__ == "__main__":
    sys.exit(main())
