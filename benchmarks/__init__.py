"""Benchmark scripts (run with ``python -m benchmarks.<name>``); never imported by recgym."""
