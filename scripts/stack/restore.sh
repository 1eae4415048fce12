#!/usr/bin/env bash
# Restores a Docuseek backup into the running stack and rebuilds the search
# index from it (the index is derived state; PostgreSQL is the record).
#
#   scripts/stack/restore.sh [--env-file FILE] [-p PROJECT] [--yes] DUMP
#   make restore BACKUP=infra/backups/docuseek-20250101T000000Z.dump
#
# DUMP is a file in infra/backups (a name or a path). Steps:
#   1. stop api and worker (no writes during the restore)
#   2. the backup service's `restore`: pg_restore into a fresh database, then
#      swap it in (the replaced database stays as <db>_pre_restore)
#   3. docuseek migrate (a dump from an older release is brought up to date)
#   4. docuseek reindex --all --local (the search index rebuilt from the restored rows)
#   5. start api and worker again and wait until they are healthy
set -euo pipefail
# shellcheck source=scripts/stack/lib.sh
source "$(dirname "$0")/lib.sh"

ENV_FILE="$STACK_ROOT/infra/.env"; PROJECT=""; YES=0; DUMP=""
while [ $# -gt 0 ]; do
    case "$1" in
        --env-file) ENV_FILE="$2"; shift 2 ;;
        -p|--project-name) PROJECT="$2"; shift 2 ;;
        --yes|-y) YES=1; shift ;;
        -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
        *) DUMP="$1"; shift ;;
    esac
done
[ -n "$DUMP" ] || die "usage: $0 [--env-file FILE] [-p PROJECT] [--yes] DUMP (a file in infra/backups)"
NAME="$(basename "$DUMP")"
[ -f "$STACK_ROOT/infra/backups/$NAME" ] || die "infra/backups/$NAME not found (dumps must be in infra/backups)"
[ -f "$ENV_FILE" ] || die "env file $ENV_FILE not found"

compose=(docker compose -f "$COMPOSE_FILE_PATH" --env-file "$ENV_FILE")
[ -n "$PROJECT" ] && compose+=(-p "$PROJECT")

if [ "$YES" != 1 ]; then
    [ -t 0 ] || die "refusing to replace the database without --yes (or CONFIRM=yes with make)"
    read -r -p "Replace the Docuseek database with $NAME? [y/N] " answer
    [ "$answer" = y ] || [ "$answer" = Y ] || die "cancelled"
fi

T0=$SECONDS
log "1/5 stop api and worker"
"${compose[@]}" stop api worker
log "2/5 restore $NAME"
"${compose[@]}" run --rm --no-deps -T backup restore "$NAME"
log "3/5 docuseek migrate"
"${compose[@]}" run --rm --no-deps -T migrate docuseek migrate
log "4/5 docuseek reindex --all --local"
"${compose[@]}" run --rm --no-deps -T migrate docuseek reindex --all --local
log "5/5 start api and worker"
"${compose[@]}" up -d --wait --wait-timeout "${RESTORE_WAIT_SECONDS:-300}" api worker
log "restore of $NAME done in $((SECONDS - T0))s"
