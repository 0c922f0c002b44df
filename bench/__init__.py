"""Benchmarks: `make bench` (throughput and p99), `python -m bench.memory`, `python -m bench.mail`."""
