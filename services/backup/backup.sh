#!/usr/bin/env bash
# Docuseek database backups, run by the compose `backup` service (non-root,
# read-only root filesystem) in the PostgreSQL image, so pg_dump matches the
# server's major version.
#
#   backup.sh schedule   dump now, then every BACKUP_INTERVAL_SECONDS; keep the
#                        newest BACKUP_KEEP dumps
#   backup.sh once       one dump, then prune
#   backup.sh check      healthcheck: the last run succeeded and the newest dump
#                        is younger than the interval plus a margin
#   backup.sh list       the dumps, newest first
#
# Dumps are pg_dump custom format (-Fc): BACKUP_DIR/docuseek-<UTC time>.dump,
# written to a .partial file, checked with pg_restore --list, then renamed, so
# a listed dump is always complete. Connection: the libpq variables PGHOST,
# PGPORT, PGUSER, PGDATABASE, PGPASSWORD (from the environment only).
set -euo pipefail

BACKUP_DIR="${BACKUP_DIR:-/backups}"
BACKUP_INTERVAL_SECONDS="${BACKUP_INTERVAL_SECONDS:-86400}"
BACKUP_KEEP="${BACKUP_KEEP:-14}"
BACKUP_PREFIX="${BACKUP_PREFIX:-docuseek}"
STATUS_FILE="${BACKUP_STATUS_FILE:-/tmp/docuseek-backup.status}"

log() { printf '%s backup: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*"; }

dumps_newest_first() {
    find "$BACKUP_DIR" -maxdepth 1 -type f -name "${BACKUP_PREFIX}-*.dump" -printf '%T@ %p\n' \
        | sort -rn | cut -d' ' -f2-
}

prune() {
    local n=0 f
    while IFS= read -r f; do
        n=$((n + 1))
        if [ "$n" -gt "$BACKUP_KEEP" ]; then rm -f -- "$f"; log "pruned $(basename "$f")"; fi
    done < <(dumps_newest_first)
    find "$BACKUP_DIR" -maxdepth 1 -type f -name "${BACKUP_PREFIX}-*.dump.partial" -mmin +60 -delete
}

dump_once() {
    local stamp final partial
    stamp="$(date -u +%Y%m%dT%H%M%SZ)"
    final="$BACKUP_DIR/${BACKUP_PREFIX}-${stamp}.dump"
    partial="$final.partial"
    if [ ! -w "$BACKUP_DIR" ]; then
        log "ERROR: $BACKUP_DIR is not writable by uid $(id -u); chown it to BACKUP_UID:BACKUP_GID on the host"
        return 1
    fi
    log "dumping ${PGDATABASE:-?} from ${PGHOST:-?} to $(basename "$final")"
    if pg_dump --format=custom --compress=6 --no-password --file="$partial" \
        && pg_restore --list "$partial" >/dev/null; then
        chmod 0640 "$partial"
        mv -f -- "$partial" "$final"
        log "done: $(basename "$final") ($(stat -c %s "$final") bytes)"
        printf 'ok %s %s\n' "$(date +%s)" "$final" >"$STATUS_FILE"
        prune
    else
        rm -f -- "$partial"
        printf 'failed %s\n' "$(date +%s)" >"$STATUS_FILE"
        log "ERROR: pg_dump failed"
        return 1
    fi
}

case "${1:-schedule}" in
    schedule)
        log "every ${BACKUP_INTERVAL_SECONDS}s into $BACKUP_DIR, keeping $BACKUP_KEEP"
        trap 'log "stopping"; exit 0' TERM INT
        while :; do
            dump_once || true
            # sleep in the background so SIGTERM is handled at once
            sleep "$BACKUP_INTERVAL_SECONDS" & wait $! || true
        done
        ;;
    once)
        dump_once
        ;;
    check)
        [ -r "$STATUS_FILE" ] || { echo "no backup run yet"; exit 1; }
        read -r state _ _ <"$STATUS_FILE"
        [ "$state" = ok ] || { echo "last backup run failed"; exit 1; }
        newest="$(dumps_newest_first | head -n1)"
        [ -n "$newest" ] || { echo "no dump in $BACKUP_DIR"; exit 1; }
        age=$(( $(date +%s) - $(stat -c %Y "$newest") ))
        limit=$(( BACKUP_INTERVAL_SECONDS + BACKUP_INTERVAL_SECONDS / 10 + 600 ))
        [ "$age" -le "$limit" ] || { echo "newest dump is ${age}s old (limit ${limit}s)"; exit 1; }
        echo "ok: $(basename "$newest"), ${age}s old"
        ;;
    list)
        dumps_newest_first
        ;;
    *)
        echo "usage: $0 schedule|once|check|list" >&2; exit 2
        ;;
esac
