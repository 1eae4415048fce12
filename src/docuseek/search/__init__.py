"""Search backends: the interface (`base.SearchBackend`) and its PostgreSQL and OpenSearch
implementations; `factory.make_backend` picks one from the settings."""
