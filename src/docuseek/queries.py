"""Every SQL statement of the core, by name, in one place (search backends keep their own)."""

from __future__ import annotations

from sqlalchemy import TextClause, text


def _q(sql: str) -> TextClause:
    return text(sql)


# -- keys ------------------------------------------------------------------------------------
INSERT_KEY = _q(
    "INSERT INTO api_keys (name, prefix, key_hash, scopes, collections, expires_at)"
    " VALUES (:name, :prefix, :key_hash, :scopes, :collections, :expires_at)"
    " RETURNING id, name, prefix, scopes, collections, created_at, expires_at"
)
SELECT_KEY_BY_HASH = _q(
    "SELECT id, name, scopes, collections, expires_at,"
    " expires_at IS NOT NULL AND expires_at <= now() AS expired"
    " FROM api_keys WHERE key_hash = :h"
)
LIST_KEYS = _q(
    "SELECT id, name, prefix, scopes, collections, created_at, expires_at FROM api_keys ORDER BY id"
)
DELETE_KEY = _q("DELETE FROM api_keys WHERE id = :id RETURNING id")
COUNT_ADMIN_KEYS = _q("SELECT count(*) FROM api_keys WHERE 'admin' = ANY(scopes)")

# -- collections -----------------------------------------------------------------------------
SELECT_COLLECTION = _q(
    "SELECT id, name, fields, generation, building_generation, index_phrases,"
    " language, unaccent, live_language, live_unaccent, search_settings, created_at,"
    " updated_at FROM collections WHERE name = :name"
)
# Writes of documents and queue rows hold the collection's row in KEY SHARE from their
# first statement; PUT and DELETE take it FOR UPDATE first (collections.load_for_write).
SELECT_COLLECTION_FOR_WRITE = _q(
    "SELECT id, name, fields, generation, building_generation, index_phrases,"
    " language, unaccent, live_language, live_unaccent, search_settings, created_at,"
    " updated_at FROM collections WHERE name = :name FOR KEY SHARE"
)
# A schema change's index DDL, after its commit: NO KEY UPDATE waits for (and holds off) the
# DDL of another change and a DELETE, but not writers' KEY SHARE.
SELECT_COLLECTION_FOR_INDEX_CHANGE = _q(
    "SELECT id, name, fields, generation, building_generation, index_phrases,"
    " language, unaccent, live_language, live_unaccent, search_settings"
    " FROM collections WHERE id = :id FOR NO KEY UPDATE"
)
SELECT_COLLECTION_FOR_UPDATE = _q(
    "SELECT id, name, fields, generation, building_generation, index_phrases,"
    " language, unaccent, live_language, live_unaccent, search_settings"
    " FROM collections WHERE name = :name FOR UPDATE"
)
SELECT_COLLECTION_BY_ID = _q(
    "SELECT id, name, fields, generation, building_generation, index_phrases,"
    " language, unaccent, live_language, live_unaccent, search_settings"
    " FROM collections WHERE id = :id"
)
LIST_COLLECTIONS = _q(
    "SELECT c.id, c.name, c.fields, c.generation, c.building_generation, c.index_phrases,"
    " c.language, c.unaccent, c.live_language, c.live_unaccent, c.search_settings,"
    " c.created_at, c.updated_at FROM collections c ORDER BY c.name"
)
INSERT_COLLECTION = _q(
    "INSERT INTO collections (name, fields, index_phrases, language, unaccent, live_language,"
    " live_unaccent) VALUES (:name, CAST(:fields AS jsonb), :index_phrases, :language,"
    " :unaccent, :language, :unaccent)"
    " ON CONFLICT (name) DO NOTHING RETURNING id"
)
UPDATE_COLLECTION_FIELDS = _q(
    "UPDATE collections SET fields = CAST(:fields AS jsonb), language = :language,"
    " unaccent = :unaccent, updated_at = now() WHERE id = :id"
)
DELETE_COLLECTION = _q("DELETE FROM collections WHERE id = :id")
DELETE_OUTBOX_OF_COLLECTION = _q("DELETE FROM outbox WHERE collection_id = :id")
COUNT_DOCUMENTS = _q("SELECT count(*) FROM documents WHERE collection_id = :cid")
UPDATE_SEARCH_SETTINGS = _q(
    "UPDATE collections SET search_settings = CAST(:settings AS jsonb), updated_at = now()"
    " WHERE id = :id"
)


def pending_tasks_sql(name: str) -> str:
    """The count of a collection's writes still being indexed; `name` is the placeholder
    (or literal) of its name, in the caller's parameter style."""
    return (
        "SELECT count(*) FROM tasks"
        f" WHERE collection = {name} AND status IN ('enqueued', 'processing')"
    )


def has_pages_sql(collection_id: str) -> str:
    """Whether any document of a collection has stored pages (PDF), as a boolean."""
    return f"EXISTS (SELECT 1 FROM document_pages WHERE collection_id = {collection_id})"


COUNT_PENDING_TASKS = _q(pending_tasks_sql(":name"))
SET_BUILDING_GENERATION = _q("UPDATE collections SET building_generation = :gen WHERE id = :id")
# The new generation was built with the text analysis the reindex started with.
ACTIVATE_GENERATION = _q(
    "UPDATE collections SET generation = :gen, building_generation = NULL,"
    " live_language = :language, live_unaccent = :unaccent WHERE id = :id"
)
DOCUMENTS_WITH_FIELD = _q(
    "SELECT id, body -> :field AS value FROM documents"
    " WHERE collection_id = :cid AND body ? :field AND body -> :field <> 'null'::jsonb"
)

# -- documents -------------------------------------------------------------------------------
# The outbox holds one row per chunk of up to OUTBOX_CHUNK documents of one write (ids and
# versions as two arrays; migration 0006 says why). Big enough that a row's own cost is
# spread thin, small enough that a worker's batch can be cut close to its size.
OUTBOX_CHUNK = 100


def _queue_chunks(source: str, op: str, task_id: str) -> str:
    """INSERT into the outbox the rows (id, version) of `source`, in chunks; RETURNING
    each chunk's ids. Both arrays are ordered alike, so they pair up."""
    return f"""
    INSERT INTO outbox (collection_id, doc_ids, versions, op, task_id)
    SELECT :cid, array_agg(q.id ORDER BY q.id, q.version),
           array_agg(q.version ORDER BY q.id, q.version),
           '{op}', {task_id}
    FROM (SELECT s.id, s.version, (row_number() OVER () - 1) / {OUTBOX_CHUNK} AS chunk
          FROM {source}) AS q
    GROUP BY q.chunk
    RETURNING doc_ids
    """


# Upsert a batch and queue the changed ones in one statement. Unchanged documents (same
# content hash) keep their version and are not queued.
UPSERT_DOCUMENTS = _q(
    """
    WITH input AS (
        SELECT * FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS i(id text, body jsonb, hash text)
    ), changed AS (
        INSERT INTO documents AS d (collection_id, id, body, version, content_hash)
        SELECT :cid, id, body, nextval('document_version_seq'), hash FROM input
        ON CONFLICT (collection_id, id) DO UPDATE
            SET body = excluded.body, version = excluded.version,
                content_hash = excluded.content_hash, updated_at = now()
            WHERE d.content_hash <> excluded.content_hash
        RETURNING d.id, d.version
    )"""
    + _queue_chunks("changed AS s", "upsert", ":task_id")
)
# Unchanged documents whose earlier change is still queued: the task must still wait for
# them, or it could say `succeeded` before they are searchable.
REQUEUE_UNCHANGED_PENDING = _q(
    """
    WITH queued AS (
        SELECT DISTINCT q.id FROM outbox o, unnest(o.doc_ids) AS q(id)
        WHERE o.collection_id = :cid AND o.task_id IS DISTINCT FROM :task_id
          AND o.doc_ids && CAST(:ids AS text[])
    ), again AS (
        SELECT d.id, d.version FROM documents d JOIN queued ON queued.id = d.id
        WHERE d.collection_id = :cid AND d.id = ANY(CAST(:ids AS text[]))
    )"""
    + _queue_chunks("again AS s", "upsert", ":task_id")
)
DELETE_DOCUMENTS = _q(
    """
    WITH gone AS (
        DELETE FROM documents WHERE collection_id = :cid AND id = ANY(CAST(:ids AS text[]))
        RETURNING id
    )"""
    + _queue_chunks(
        "(SELECT id, nextval('document_version_seq') AS version FROM gone) AS s",
        "delete",
        ":task_id",
    )
)
SELECT_DOCUMENT = _q(
    "SELECT body, version, updated_at FROM documents WHERE collection_id = :cid AND id = :id"
)
REQUEUE_ALL_DOCUMENTS = _q(
    _queue_chunks("documents AS s WHERE s.collection_id = :cid", "upsert", ":task_id")
)
STREAM_DOCUMENTS = _q(
    "SELECT id, version, body FROM documents WHERE collection_id = :cid ORDER BY id"
)
STREAM_DOCUMENTS_SINCE = _q(
    "SELECT id, version, body FROM documents WHERE collection_id = :cid AND version > :since"
)
STREAM_DOCUMENT_VERSIONS = _q(
    "SELECT id, version FROM documents WHERE collection_id = :cid ORDER BY id"
)
STREAM_DOCUMENT_VERSIONS_SINCE = _q(
    "SELECT id, version FROM documents WHERE collection_id = :cid AND version > :since"
)
CURRENT_VERSION = _q(
    "SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM document_version_seq"
)

# -- tasks -----------------------------------------------------------------------------------
INSERT_TASK = _q(
    "INSERT INTO tasks (type, collection, received) VALUES (:type, :collection, :received)"
    " RETURNING id"
)
FINISH_TASK_ENQUEUE = _q(
    """
    UPDATE tasks SET pending = :pending, indexed = received - :pending,
        status = CASE WHEN :pending = 0 THEN 'succeeded' ELSE status END,
        started_at = CASE WHEN :pending = 0 THEN now() ELSE started_at END,
        finished_at = CASE WHEN :pending = 0 THEN now() ELSE finished_at END
    WHERE id = :id
    """
)
TASK_COLUMNS = (
    "id, type, collection, status, error, received, indexed, failed, pending,"
    " enqueued_at, started_at, finished_at"
)
SELECT_TASK = _q(f"SELECT {TASK_COLUMNS} FROM tasks WHERE id = :id")
LIST_TASKS = _q(
    f"SELECT {TASK_COLUMNS} FROM tasks"
    " WHERE (CAST(:status AS text) IS NULL OR status = :status)"
    " AND (CAST(:collection AS text) IS NULL OR collection = :collection)"
    " AND (CAST(:collections AS text[]) IS NULL OR collection = ANY(CAST(:collections AS text[])))"
    " AND (CAST(:before AS bigint) IS NULL OR id < :before)"
    " ORDER BY id DESC LIMIT :limit"
)
FAIL_PENDING_TASKS_OF_COLLECTION = _q(
    "UPDATE tasks SET status = 'failed', error = 'collection deleted', finished_at = now()"
    " WHERE collection = :name AND status IN ('enqueued', 'processing')"
)

# -- outbox (the queue) ----------------------------------------------------------------------
# A worker claims rows through a cursor: FOR UPDATE locks a row when it is fetched, so the
# worker fetches only as many chunks as its batch has room for (worker.py).
DECLARE_CLAIM = _q(
    """
    DECLARE outbox_claim NO SCROLL CURSOR FOR
    SELECT o.id, o.collection_id, o.doc_ids, o.versions, o.op, o.task_id, o.attempts
    FROM outbox o
    WHERE o.available_at <= now()
    ORDER BY o.available_at, o.id
    FOR UPDATE SKIP LOCKED
    """
)


def fetch_claim(rows: int) -> TextClause:
    return _q(f"FETCH {int(rows)} FROM outbox_claim")  # FETCH takes no parameter


CLOSE_CLAIM = _q("CLOSE outbox_claim")
# Wakes idle workers; PostgreSQL delivers it when (and only if) the write commits.
OUTBOX_CHANNEL = "docuseek_outbox"
NOTIFY_OUTBOX = _q(f"SELECT pg_notify('{OUTBOX_CHANNEL}', '')")
ASYNC_COMMIT = _q("SET LOCAL synchronous_commit = off")
MARK_TASKS_PROCESSING = _q(
    "UPDATE tasks SET status = 'processing', started_at = coalesce(started_at, clock_timestamp())"
    " WHERE id = ANY(CAST(:ids AS bigint[])) AND status = 'enqueued'"
)
# One key lookup per document of the batch, as a LATERAL subquery with LIMIT 1 that the
# planner cannot flatten into a join of its choosing, which may be a scan of `documents` when
# its statistics are stale (see bench/notes.md, 'Design decisions: worker lookups by key').
_CURRENT_ROWS = (
    " FROM unnest(CAST(:cids AS bigint[]), CAST(:ids AS text[])) AS k(collection_id, id)"
    " CROSS JOIN LATERAL (SELECT d.version, d.body FROM documents d"
    " WHERE d.collection_id = k.collection_id AND d.id = k.id LIMIT 1) AS d"
)
SELECT_CURRENT_DOCUMENTS = _q("SELECT k.collection_id, k.id, d.version, d.body" + _CURRENT_ROWS)
# The same rows without their bodies, for a backend that reads them itself.
SELECT_CURRENT_VERSIONS = _q("SELECT k.collection_id, k.id, d.version, NULL" + _CURRENT_ROWS)
DELETE_OUTBOX_ROWS = _q("DELETE FROM outbox WHERE id = ANY(CAST(:ids AS bigint[]))")
RETRY_OUTBOX_ROWS = _q(
    "UPDATE outbox SET attempts = attempts + :increment, last_error = :error,"
    " available_at = now() + make_interval(secs => :delay)"
    " WHERE id = ANY(CAST(:ids AS bigint[]))"
)
# Settle tasks after a batch: per task, how many rows landed and how many failed.
SETTLE_TASKS = _q(
    """
    UPDATE tasks t SET
        pending = t.pending - s.done - s.failed,
        indexed = t.indexed + s.done,
        failed = t.failed + s.failed,
        error = coalesce(t.error, s.error),
        status = CASE
            WHEN t.pending - s.done - s.failed > 0 THEN t.status
            WHEN t.failed + s.failed > 0 THEN 'failed'
            ELSE 'succeeded' END,
        finished_at = CASE WHEN t.pending - s.done - s.failed > 0 THEN NULL
            ELSE clock_timestamp() END
    FROM unnest(CAST(:task_ids AS bigint[]), CAST(:done AS int[]), CAST(:failed AS int[]),
                CAST(:errors AS text[])) AS s(task_id, done, failed, error)
    WHERE t.id = s.task_id
    """
)
# Documents waiting (not rows: a row is a chunk), and the oldest one's age.
QUEUE_STATS = _q(
    "SELECT coalesce(sum(cardinality(doc_ids)), 0),"
    " coalesce(extract(epoch FROM now() - min(enqueued_at)), 0) FROM outbox"
)

# -- reconcile ------------------------------------------------------------------------------
PENDING_DOC_IDS = _q("SELECT DISTINCT unnest(doc_ids) FROM outbox WHERE collection_id = :cid")
SELECT_DOCUMENTS_BY_IDS = _q(
    "SELECT id, version, body FROM documents"
    " WHERE collection_id = :cid AND id = ANY(CAST(:ids AS text[]))"
)
QUEUE_REPAIR_UPSERTS = _q(
    _queue_chunks(
        "documents AS s WHERE s.collection_id = :cid AND s.id = ANY(CAST(:ids AS text[]))",
        "upsert",
        "NULL::bigint",
    )
)
# A fresh version outranks whatever the index holds; ids re-created meanwhile are skipped.
QUEUE_REPAIR_DELETES = _q(
    _queue_chunks(
        "(SELECT x.id, nextval('document_version_seq') AS version"
        " FROM unnest(CAST(:ids AS text[])) AS x(id) WHERE NOT EXISTS"
        " (SELECT 1 FROM documents d WHERE d.collection_id = :cid AND d.id = x.id)) AS s",
        "delete",
        "NULL::bigint",
    )
)

# -- reindex as a task (POST /collections/{name}/reindex) ------------------------------------
# A collection's reindex lock, held by a session for the whole run (reindex.ReindexLock).
TRY_REINDEX_LOCK = _q("SELECT pg_try_advisory_lock(:k)")
RELEASE_REINDEX_LOCK = _q("SELECT pg_advisory_unlock(:k)")
# Reindex tasks left unfinished by an api process that stopped: none runs (we hold its lock).
FAIL_INTERRUPTED_REINDEX_TASKS = _q(
    "UPDATE tasks SET status = 'failed', error = 'interrupted: the api process stopped',"
    " finished_at = clock_timestamp()"
    " WHERE type = 'reindex' AND collection = :name AND status = 'processing'"
)
START_REINDEX_TASK = _q(
    "UPDATE tasks SET status = 'processing', started_at = clock_timestamp() WHERE id = :id"
)
# received: the documents to copy; indexed: copied so far; pending: the rest.
REINDEX_TASK_PROGRESS = _q(
    "UPDATE tasks SET received = :total, indexed = :copied,"
    " pending = greatest(:total - :copied, 0) WHERE id = :id"
)
FINISH_REINDEX_TASK = _q(
    "UPDATE tasks SET status = :status, error = :error, pending = 0,"
    " finished_at = clock_timestamp() WHERE id = :id"
)

# -- partial updates (PATCH, POST documents?merge=true) --------------------------------------
# The stored rows a merge reads, locked in id order (as every write locks documents).
LOCK_DOCUMENTS_FOR_MERGE = _q(
    "SELECT id FROM documents WHERE collection_id = :cid AND id = ANY(CAST(:ids AS text[]))"
    " ORDER BY id FOR UPDATE"
)
# Each patch merged into its stored document (top-level fields replaced), or the patch
# alone when there is none; `existed` says which.
MERGE_DOCUMENTS = _q(
    """
    SELECT p.ord, p.id, coalesce(d.body, '{}'::jsonb) || p.patch AS body,
           d.id IS NOT NULL AS existed
    FROM jsonb_to_recordset(CAST(:patches AS jsonb)) AS p(ord int, id text, patch jsonb)
    LEFT JOIN documents d ON d.collection_id = :cid AND d.id = p.id
    ORDER BY p.ord
    """
)

# -- facet value search (GET /collections/{name}/facets/{field}?q=) --------------------------
# A field holds one value or a list of them; values are matched as text, case-insensitively,
# counted once per document, and equal counts ordered by the values' bytes, as on any
# database collation.
FACET_VALUES = _q(
    """
    SELECT v.value, count(DISTINCT d.id) AS n
    FROM documents d,
         jsonb_array_elements_text(CASE jsonb_typeof(d.body -> :field)
             WHEN 'array' THEN d.body -> :field
             ELSE jsonb_build_array(d.body -> :field) END) AS v(value)
    WHERE d.collection_id = :cid AND d.body ? :field AND d.body -> :field <> 'null'::jsonb
      AND starts_with(lower(v.value), lower(:prefix))
    GROUP BY v.value ORDER BY n DESC, v.value COLLATE "C" LIMIT :limit
    """
)
