"""Retrieval evaluation: eval sets (evals/data/*.jsonl), metrics and the `cardrag eval` runner."""
