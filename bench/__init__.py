"""Benchmarks; speed lives here, never in tests (see README.md)."""
