"""Document files: upload and durable originals (storage), detection by content (detect),
extraction (extract) in a limited child process (sandbox), run by the worker (process),
and the pages of a hit that matched (pages)."""
