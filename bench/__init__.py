"""Docuseek benchmark harness.

Run ``python -m bench --help`` (or ``make bench``). Modules, one job each:

- ``corpus``: Debian package records -> NDJSON.
- ``synth``: deterministic synthetic corpora that follow the real vocabulary.
- ``queries``: the fixed query set, drawn from the real corpus.
- ``servers``: starting/stopping PostgreSQL, osmem-server and Docuseek processes.
- ``raw_postgres`` / ``raw_opensearch``: the raw-engine baselines.
- ``peers``: SQLite FTS5 and Tantivy on the same documents.
- ``docuseek_http``: ingest, indexing lag and search over Docuseek's HTTP API.
- ``loadgen``: wrk (C, on loopback) and a closed-loop thread driver.
- ``report``: JSON result, RESULTS.md and the scaling plot.
- ``run``: the orchestration of one run.
"""
