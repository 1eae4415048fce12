"""OpenAPI entries for the routes of the client, browser and completeness work (reindex as
a task, partial updates, delete by filter, facet values, multi-search), in the fields of
the API reference's `Operation` (summary, description, errors, request and response
examples), ready to be added to its table of operations."""

from __future__ import annotations

from typing import Any

_AUTH = (401, 403, 429)
_ACCEPTED = {"task_id": 7, "status": "enqueued", "received": 1}
_HIT = {
    "id": "1",
    "score": 0.61,
    "document": {"id": "1", "title": "The lazy fox", "section": "animals"},
    "highlights": {"title": ["The <mark>lazy</mark> fox"]},
}
_PAGE = {
    "hits": [_HIT],
    "total": 1,
    "total_relation": "eq",
    "ranking": "exact",
    "facets": {},
    "next_cursor": None,
    "took_ms": 1.2,
}

_SETTINGS = {
    "synonyms": [["laptop", "notebook"]],
    "one_way_synonyms": {"nyc": ["new york"]},
    "stop_words": ["please"],
    "typo_tolerance": {
        "enabled": True,
        "min_word_size_one_typo": 5,
        "min_word_size_two_typos": 9,
        "disable_on_fields": [],
        "disable_on_words": [],
    },
}

EXTRA_OPERATIONS: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/collections/{name}/reindex"): {
        "summary": "Rebuild a collection's index",
        "description": "Admin scope. Rebuilds the index from PostgreSQL into a new generation"
        " and switches to it; searches keep working throughout. 202 with a task: its"
        " `details.received` is the number of documents to copy, `details.indexed` how many"
        " are copied so far. 409 while a reindex of the collection runs.",
        "errors": (*_AUTH, 404, 409, 422),
        "response": {**_ACCEPTED, "received": 0},
    },
    ("PATCH", "/collections/{name}/documents/{doc_id}"): {
        "summary": "Update some fields of a document",
        "description": "Write scope. Merges the body's fields into the stored document"
        " (top-level fields are replaced; `null` clears one) under the document's lock,"
        " validates the result like a full write and queues it like one. 202 with a task;"
        " 404 when the document does not exist.",
        "errors": (400, *_AUTH, 404, 413, 422),
        "request": {"year": 2002},
        "response": _ACCEPTED,
    },
    ("PATCH", "/collections/{name}/documents"): {
        "summary": "Update some fields of many documents",
        "description": "Write scope. A JSON array (or NDJSON) of partial documents, each with"
        " its `id`: each is merged into its stored document, or stored as it is when there is"
        " none. All or nothing, one task. The body may be compressed as for a write.",
        "errors": (400, *_AUTH, 404, 413, 415, 422),
        "request": [{"id": "1", "year": 2002}, {"id": "2", "section": "plants"}],
        "response": {**_ACCEPTED, "received": 2},
    },
    ("POST", "/collections/{name}/documents/delete"): {
        "summary": "Delete the documents a filter matches",
        "description": "Write scope. `filter` in the search's JSON form or its query-string"
        " form; the documents it matches in searches now are deleted, as one task. An empty"
        " filter is refused (delete the collection instead).",
        "errors": (400, *_AUTH, 404, 413, 422, 503),
        "request": {"filter": {"section": ["animals"], "year": {"lt": 2000}}},
        "response": {**_ACCEPTED, "received": 12},
    },
    ("GET", "/collections/{name}/facets/{field}"): {
        "summary": "Look up facet values by prefix",
        "description": "Search scope. The values of a facet field that start with `q`"
        " (case-insensitive), most frequent first, each with the number of documents that"
        " hold it; for a filter box over a facet with many values.",
        "errors": (*_AUTH, 404, 422),
        "response": {"field": "section", "values": [{"value": "animals", "count": 42}]},
    },
    ("POST", "/multi-search"): {
        "summary": "Run several searches at once",
        "description": "Search scope. Up to 20 searches, possibly on different collections;"
        " each is checked against the key's collections on its own. `results` holds, in"
        ' order, a search response or `{"status", "error"}` for a query that failed alone.',
        "errors": (400, 401, 403, 413, 422),
        "request": {
            "queries": [
                {"collection": "books", "q": "lazy", "limit": 5},
                {"collection": "authors", "q": "lazy", "limit": 5},
            ]
        },
        "response": {
            "results": [
                _PAGE,
                {
                    "status": 403,
                    "error": {
                        "code": "forbidden",
                        "message": "this key may not use collection 'authors'",
                        "details": None,
                    },
                },
            ]
        },
    },
    ("POST", "/collections/{name}/files"): {
        "summary": "Upload document files",
        "description": "Write scope. Multipart: one or more parts named `file` (PDF, DOCX, ODT,"
        " EPUB, HTML, Markdown or text, recognised from their bytes) and an optional part"
        " `fields`, a JSON array with one object per file (its `id`, default the file's SHA-256,"
        " and the user's fields). 202 once the originals are stored with their documents, task"
        " and outbox rows; the worker extracts each file in a child process with limits, and a"
        " file that cannot be extracted fails alone in the task. A file over"
        " DOCUSEEK_MAX_FILE_BYTES is a 413 and nothing is stored.",
        "errors": (400, *_AUTH, 404, 413, 422, 503),
        "request": {"file": "(binary)", "fields": '[{"id": "report-2026", "section": "finance"}]'},
        "response": _ACCEPTED,
    },
    ("GET", "/collections/{name}/files/failed"): {
        "summary": "List files that could not be extracted",
        "description": "Write scope. Documents whose file could not be extracted, by id, each"
        " with the reason for a person and the extractor version that tried; such a document"
        " stays stored and searchable by its file fields until a new upload replaces it.",
        "errors": (*_AUTH, 404, 422, 503),
        "response": [
            {
                "id": "scan.pdf",
                "filename": "scan.pdf",
                "content_type": "application/pdf",
                "error": "encrypted PDF: supply a password-free copy",
                "extractor": "1",
            }
        ],
    },
    ("GET", "/collections/{name}/documents/{doc_id}/file"): {
        "summary": "Download a document's original file",
        "description": "Search scope. The original bytes of a document uploaded as a file,"
        " byte for byte, with its detected content type (and its file name in"
        " Content-Disposition). 404 when the document does not exist or was not uploaded as a"
        " file (or a JSON write replaced it).",
        "errors": (*_AUTH, 404, 422, 503),
    },
    ("GET", "/collections/{name}/settings"): {
        "summary": "Read a collection's search settings",
        "description": "Any key that may use the collection. Its query-time settings: synonyms"
        " (multi-way groups and one-way), extra stop words and typo tolerance.",
        "errors": (*_AUTH, 404, 422, 503),
        "response": _SETTINGS,
    },
    ("PUT", "/collections/{name}/settings"): {
        "summary": "Change a collection's search settings",
        "description": "Admin scope. Replaces the collection's query-time settings; they apply"
        " to the next search at once (within 2 s in other api processes), with no reindex,"
        " because they change how queries are read, not what is indexed.",
        "errors": (400, *_AUTH, 404, 413, 422, 503),
        "request": _SETTINGS,
        "response": _SETTINGS,
    },
}
