#!/usr/bin/env bash
# Builds the offline stand-in base images the stack test runs on, without any
# container registry: a Debian bookworm root made by debootstrap, then one small
# image per upstream image that infra/compose.yaml names (python, postgres,
# prometheus, postgres_exporter, and osmem-server for OpenSearch).
#
# Every image is tagged with a content hash of what builds it; an image whose
# tag is already present is reused, so a rerun on the same machine is quick.
# Writes the compose variables that select the stand-ins to
#   .cache/stack/images.env
set -euo pipefail
# shellcheck source=scripts/stack/lib.sh
source "$(dirname "$0")/lib.sh"
take_lock base-images

STANDINS="$STACK_ROOT/scripts/stack/standins"
OUT_ENV="$STACK_CACHE/images.env"
mkdir -p "$STACK_CACHE"

MIRROR="$(debian_mirror)"; SEC_MIRROR="$(debian_security_mirror)"
[ -n "$MIRROR" ] || die "cannot find this host's Debian mirror in /etc/apt"

# --- 1. Debian bookworm minbase, imported from a debootstrap tree ----------
build_debian() {
    command -v debootstrap >/dev/null || die "debootstrap missing (run scripts/stack/install-engine.sh)"
    local root="$STACK_CACHE/rootfs.$$"
    rm -rf "$root"; mkdir -p "$root"
    log "debootstrap bookworm minbase (a minute or two) ..."
    debootstrap --variant=minbase bookworm "$root" "$MIRROR" >"$STACK_CACHE/debootstrap.log" 2>&1 \
        || { tail -n 30 "$STACK_CACHE/debootstrap.log" >&2; rm -rf "$root"; die "debootstrap failed"; }
    # All three bookworm sources: a debootstrap tree has only main.
    cat >"$root/etc/apt/sources.list" <<SRC
deb $MIRROR bookworm main
deb $MIRROR bookworm-updates main
deb $SEC_MIRROR bookworm-security main
SRC
    # Like the official Debian images: no recommends, no package cache kept.
    cat >"$root/etc/apt/apt.conf.d/90docuseek-standin" <<'APT'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Acquire::Languages "none";
APT
    # As in the official images: package scripts never start services.
    printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"; chmod 755 "$root/usr/sbin/policy-rc.d"
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
    tar -C "$root" -c . | docker_cli import \
        -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8' \
        -c 'CMD ["bash"]' - "$DEBIAN_TAG" >/dev/null
    rm -rf "$root"
}

# The tag is a hash of the recipe: the function above (mirror excluded).
DEBIAN_TAG="docuseek-standin/debian:bookworm-$(declare -f build_debian | sha256sum | cut -c1-12)"
if docker_cli image inspect "$DEBIAN_TAG" >/dev/null 2>&1; then
    log "reuse $DEBIAN_TAG"
else
    build_debian
    log "built $DEBIAN_TAG"
fi

# --- 2. osmem-server binary (the OpenSearch stand-in), from its PyPI wheel --
OSMEM_VERSION="${OSMEM_VERSION:-0.1.6}"
OSMEM_DIR="$STACK_DOWNLOADS/osmem-$OSMEM_VERSION"
if [ ! -x "$OSMEM_DIR/osmem-server" ]; then
    log "download osmem-server $OSMEM_VERSION wheel"
    rm -rf "$OSMEM_DIR.tmp"; mkdir -p "$OSMEM_DIR.tmp"
    python3 -m pip download --isolated --no-deps --only-binary=:all: \
        --cert /etc/ssl/certs/ca-certificates.crt \
        --platform manylinux_2_17_x86_64 --python-version 3.11 \
        -d "$OSMEM_DIR.tmp" "osmem-server==$OSMEM_VERSION" >/dev/null
    python3 - "$OSMEM_DIR.tmp" <<'PY'
import pathlib, sys, zipfile
d = pathlib.Path(sys.argv[1])
whl = next(d.glob("osmem_server-*.whl"))
with zipfile.ZipFile(whl) as z:
    (d / "osmem-server").write_bytes(z.read("osmem_server/bin/osmem-server"))
(d / "osmem-server").chmod(0o755)
whl.unlink()
PY
    rm -rf "$OSMEM_DIR"; mv "$OSMEM_DIR.tmp" "$OSMEM_DIR"
fi

# --- 3. one stand-in per upstream image ------------------------------------
# build_standin NAME [EXTRA-CONTEXT-FILE]: builds standins/NAME/Dockerfile FROM
# the Debian image; tag = hash of the Debian tag and the stand-in's files.
build_standin() {
    local name="$1" extra="${2:-}" dir="$STANDINS/$1" hash tag ctx
    hash="$( { echo "$DEBIAN_TAG"; (cd "$dir" && find . -type f | LC_ALL=C sort | xargs sha256sum);
               if [ -n "$extra" ]; then sha256sum "$extra" | cut -c1-64; fi; } | sha256sum | cut -c1-12)"
    tag="docuseek-standin/$name:$hash"
    if docker_cli image inspect "$tag" >/dev/null 2>&1; then
        log "reuse $tag"
    else
        log "build $tag"
        ctx="$STACK_CACHE/ctx-$name"
        rm -rf "$ctx"; cp -a "$dir" "$ctx"
        if [ -n "$extra" ]; then cp -a "$extra" "$ctx/"; fi
        docker_cli build -q --build-arg "BASE_IMAGE=$DEBIAN_TAG" -t "$tag" "$ctx" >"$STACK_CACHE/build-$name.log" 2>&1 \
            || { tail -n 40 "$STACK_CACHE/build-$name.log" >&2; die "stand-in $name failed to build"; }
        rm -rf "$ctx"
    fi
    printf '%s\n' "$tag"
}

# The five builds are independent (mostly apt downloads): run them side by side.
declare -A PIDS=()
for name in python postgres prometheus postgres-exporter search; do
    extra=""; [ "$name" = search ] && extra="$OSMEM_DIR/osmem-server"
    ( build_standin "$name" "$extra" >"$STACK_CACHE/tag-$name" ) &
    PIDS[$name]=$!
done
failed=0
for name in "${!PIDS[@]}"; do wait "${PIDS[$name]}" || { log "stand-in $name failed"; failed=1; }; done
[ "$failed" = 0 ] || die "stand-in images failed to build (logs: $STACK_CACHE/build-*.log)"
tag_of() { cat "$STACK_CACHE/tag-$1"; }
PYTHON_TAG="$(tag_of python)"; POSTGRES_TAG="$(tag_of postgres)"; PROMETHEUS_TAG="$(tag_of prometheus)"
EXPORTER_TAG="$(tag_of postgres-exporter)"; SEARCH_TAG="$(tag_of search)"

cat >"$OUT_ENV.tmp" <<ENV
# Written by scripts/stack/base-images.sh: compose variables selecting the stand-ins.
PYTHON_IMAGE=$PYTHON_TAG
POSTGRES_IMAGE=$POSTGRES_TAG
BACKUP_IMAGE=$POSTGRES_TAG
PROMETHEUS_IMAGE=$PROMETHEUS_TAG
POSTGRES_EXPORTER_IMAGE=$EXPORTER_TAG
SEARCH_IMAGE=$SEARCH_TAG
ENV
mv "$OUT_ENV.tmp" "$OUT_ENV"
log "stand-in images ready: $OUT_ENV"
