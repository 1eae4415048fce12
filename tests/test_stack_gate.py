"""`DOCUSEEK_STACK_TEST=0` skips the Docker stack test, in `make test` and in the script itself.

A `docker` on PATH that records its calls stands in for the engine: the skip must not call it,
and the default path (no engine answering) must, which shows the stand-in is the one found.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs GNU make")


def recording_docker(tmp_path: Path) -> tuple[dict[str, str], Path]:
    calls = tmp_path / "docker-calls"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("docker", "dockerd", "apt-get"):
        tool = bin_dir / name
        tool.write_text(f'#!/bin/sh\necho "{name} $*" >>"{calls}"\nexit 1\n')
        tool.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MAKE", "DOCUSEEK_"))}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH']}"
    return env, calls


@pytest.mark.parametrize(
    "command",
    [
        ["make", "-s", "stack-test-if-enabled"],
        ["make", "-s", "stack-test"],
        ["bash", "scripts/stack/stack-test.sh"],
    ],
)
def test_zero_skips_without_touching_docker(tmp_path: Path, command: list[str]) -> None:
    env, calls = recording_docker(tmp_path)
    env["DOCUSEEK_STACK_TEST"] = "0"
    proc = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=30, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert "DOCUSEEK_STACK_TEST=0: stack test skipped" in proc.stdout
    assert not calls.exists(), calls.read_text()


def test_without_the_variable_make_test_asks_the_engine(tmp_path: Path) -> None:
    env, calls = recording_docker(tmp_path)
    proc = subprocess.run(
        ["make", "-s", "stack-test-if-enabled"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "no Docker engine: stack test not run" in proc.stdout
    if os.getuid() == 0:
        assert calls.read_text().splitlines() == ["docker info"]
