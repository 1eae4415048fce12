#!/usr/bin/env bash
# Downloads, on the host, every wheel the api/worker image build needs (the
# package's dependencies from pyproject.toml plus its build backend) for
# CPython 3.11 on manylinux x86_64, into a cache outside the repository that
# later checkouts on the same machine reuse:
#   ~/.cache/docuseek-stack/wheels/<hash of the requirements>/   (DOCUSEEK_STACK_DOWNLOADS)
# Prints that folder. The image build reaches PyPI only through the host.
set -euo pipefail
# shellcheck source=scripts/stack/lib.sh
source "$(dirname "$0")/lib.sh"
take_lock wheels

REQS="$(python3 - "$STACK_ROOT/pyproject.toml" <<'PY'
import sys, tomllib
with open(sys.argv[1], "rb") as f:
    project = tomllib.load(f)
reqs = list(project["project"].get("dependencies", []))
reqs += project.get("build-system", {}).get("requires", ["setuptools", "wheel"])
print("\n".join(reqs))
PY
)"
HASH="$(printf '%s\n' "$REQS" "cp311-manylinux-x86_64-v1" | sha256sum | cut -c1-12)"
DEST="$STACK_DOWNLOADS/wheels/$HASH"
if [ -f "$DEST/.complete" ]; then
    log "reuse wheels $DEST"
    printf '%s\n' "$DEST"; exit 0
fi

rm -rf "$DEST.tmp"; mkdir -p "$DEST.tmp"
printf '%s\n' "$REQS" >"$DEST.tmp/requirements.txt"
platforms=()
for v in 17 24 26 27 28 31 34 35 36; do platforms+=(--platform "manylinux_2_${v}_x86_64"); done
platforms+=(--platform manylinux2014_x86_64 --platform linux_x86_64)
log "download wheels for $(wc -l <"$DEST.tmp/requirements.txt") requirements"
# --isolated: the host's pip.conf adds constraints and extra indexes that are
# no business of the image; only its certificate bundle is wanted here.
python3 -m pip download --isolated --disable-pip-version-check --quiet \
    --cert /etc/ssl/certs/ca-certificates.crt \
    --only-binary=:all: --python-version 3.11 --implementation cp --abi cp311 --abi abi3 --abi none \
    "${platforms[@]}" -d "$DEST.tmp" -r "$DEST.tmp/requirements.txt" >&2
touch "$DEST.tmp/.complete"
rm -rf "$DEST"; mv "$DEST.tmp" "$DEST"
log "wheels ready: $(find "$DEST" -name '*.whl' | wc -l) in $DEST"
printf '%s\n' "$DEST"
