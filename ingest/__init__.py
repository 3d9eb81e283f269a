"""Command-line layer: the `cardrag` CLI (ingest, serve, search, ask, eval, models)."""
