# Shared helpers for the stack scripts. Source it; it sets no shell options.
# shellcheck shell=bash disable=SC2034

STACK_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# Per checkout (generated env file, logs): git-ignored .cache/stack.
STACK_CACHE="${STACK_CACHE:-$STACK_ROOT/.cache/stack}"
# Per machine (downloaded wheels, the osmem-server binary): outlives the checkout,
# so a fresh clone on the same machine (CI) reuses them, like the cached images.
STACK_DOWNLOADS="${DOCUSEEK_STACK_DOWNLOADS:-${XDG_CACHE_HOME:-$HOME/.cache}/docuseek-stack}"
COMPOSE_FILE_PATH="$STACK_ROOT/infra/compose.yaml"

# take_lock NAME: holds a machine-wide lock until the calling script exits, so that
# stack tests started side by side install the engine and build the cached images once.
take_lock() {
    mkdir -p "$STACK_DOWNLOADS"
    exec 9>"$STACK_DOWNLOADS/.lock-$1"
    flock 9
}

log() { printf '[stack %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# Debian's own client matches the engine (20.10); a newer client elsewhere on
# PATH works too, but `docker build` of a newer client wants buildx.
docker_cli() {
    if [ -x /usr/bin/docker ]; then /usr/bin/docker "$@"; else command docker "$@"; fi
}

# The bookworm mirror this host uses (read from its apt sources, so no host
# name is written into the repository).
debian_mirror() {
    local uri
    uri="$(grep -rhoE '^(URIs:|deb)[[:space:]]+(\[[^]]*\][[:space:]]+)?http[^[:space:]]*/debian/?' \
        /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null | grep -v security | head -n1 | awk '{print $NF}')"
    printf '%s\n' "${uri%/}"
}

debian_security_mirror() {
    local uri
    uri="$(grep -rhoE '^(URIs:|deb)[[:space:]]+(\[[^]]*\][[:space:]]+)?http[^[:space:]]*/debian-security/?' \
        /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null | head -n1 | awk '{print $NF}')"
    if [ -z "$uri" ]; then uri="$(debian_mirror)-security"; fi
    printf '%s\n' "${uri%/}"
}

# Bounded wait: wait_for SECONDS DESCRIPTION COMMAND...
wait_for() {
    local secs="$1" what="$2"; shift 2
    local deadline=$((SECONDS + secs))
    until "$@" >/dev/null 2>&1; do
        if [ "$SECONDS" -ge "$deadline" ]; then log "timed out after ${secs}s waiting for $what"; return 1; fi
        sleep 1
    done
}
