"""`python -m ingest` runs the cardrag CLI (the same as the `cardrag` script)."""

from ingest.cli import app

app()
