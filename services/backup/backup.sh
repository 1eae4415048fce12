#!/usr/bin/env bash
# Docuseek database backups, run by the compose `backup` service (non-root,
# read-only root filesystem) in the PostgreSQL image, so pg_dump matches the
# server's major version.
#
#   backup.sh schedule   dump as soon as the database holds the migrated schema,
#                        then every BACKUP_INTERVAL_SECONDS; keep the newest
#                        BACKUP_KEEP dumps
#   backup.sh once       one dump, then prune (refused, exit 3, before the
#                        schema exists)
#   backup.sh check      healthcheck: the last run succeeded and the newest dump
#                        is younger than the interval plus a margin
#   backup.sh list       the dumps, newest first
#   backup.sh restore F  restore dump F (a name in BACKUP_DIR) as PGDATABASE:
#                        into a fresh database first, then swapped in; the
#                        database it replaces is kept as PGDATABASE_pre_restore
#                        (scripts/stack/restore.sh stops the app around it,
#                        migrates and rebuilds the search index after it)
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

# The migrated schema is there (`docuseek migrate` has run): a dump of a database
# without it restores nothing and must not push a real dump out of retention.
schema_ready() {
    [ "$(psql -X -q -tA --no-password -c 'SELECT count(*) FROM alembic_version' 2>/dev/null)" \
        -ge 1 ] 2>/dev/null
}

dump_once() {
    local stamp final partial
    if ! schema_ready; then
        log "not dumping: ${PGDATABASE:-?} has no migrated Docuseek schema yet (docuseek migrate)"
        printf 'waiting %s\n' "$(date +%s)" >"$STATUS_FILE"
        return 3
    fi
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
            rc=0; dump_once || rc=$?
            pause="$BACKUP_INTERVAL_SECONDS"
            # No schema yet: look again soon instead of a whole interval later.
            [ "$rc" = 3 ] && pause="${BACKUP_SCHEMA_POLL_SECONDS:-10}"
            # sleep in the background so SIGTERM is handled at once
            sleep "$pause" & wait $! || true
        done
        ;;
    once)
        dump_once
        ;;
    check)
        [ -r "$STATUS_FILE" ] || { echo "no backup run yet"; exit 1; }
        read -r state _ _ <"$STATUS_FILE"
        [ "$state" != waiting ] || { echo "no backup yet: the database is not migrated"; exit 1; }
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
    restore)
        name="$(basename "${2:?usage: $0 restore DUMP-FILE-NAME}")"
        file="$BACKUP_DIR/$name"
        [ -r "$file" ] || { log "ERROR: $file not found or not readable"; exit 1; }
        pg_restore --list "$file" >/dev/null || { log "ERROR: $name is not a pg_dump custom-format archive"; exit 1; }
        db="${PGDATABASE:?PGDATABASE must be set}"
        fresh="${db}_restore"; old="${db}_pre_restore"
        psql_admin() { psql -X -q -v ON_ERROR_STOP=1 -d postgres "$@"; }
        log "restoring $name into a fresh database $fresh"
        psql_admin -c "DROP DATABASE IF EXISTS \"$fresh\" WITH (FORCE)" \
                   -c "CREATE DATABASE \"$fresh\" OWNER \"${PGUSER:-postgres}\""
        if ! pg_restore --exit-on-error --no-owner --no-privileges --dbname="$fresh" "$file"; then
            psql_admin -c "DROP DATABASE IF EXISTS \"$fresh\" WITH (FORCE)" || true
            log "ERROR: restore failed; $db is unchanged"; exit 1
        fi
        log "swapping $fresh in as $db (the replaced database is kept as $old)"
        psql_admin -c "DROP DATABASE IF EXISTS \"$old\" WITH (FORCE)"
        if psql_admin -tAc "SELECT 1 FROM pg_database WHERE datname = '$db'" | grep -q 1; then
            psql_admin -c "ALTER DATABASE \"$db\" WITH ALLOW_CONNECTIONS false" \
                       -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '$db' AND pid <> pg_backend_pid()" \
                       -c "ALTER DATABASE \"$db\" RENAME TO \"$old\"" \
                       -c "ALTER DATABASE \"$old\" WITH ALLOW_CONNECTIONS true" >/dev/null
        fi
        psql_admin -c "ALTER DATABASE \"$fresh\" RENAME TO \"$db\""
        log "restored $name as $db"
        ;;
    *)
        echo "usage: $0 schedule|once|check|list|restore DUMP" >&2; exit 2
        ;;
esac
