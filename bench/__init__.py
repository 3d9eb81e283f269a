"""Benchmarks behind `make bench`; each writes its numbers into docs/BENCHMARKS.md."""
