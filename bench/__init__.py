"""Benchmarks through the real local Kafka; results in bench/RESULTS.md."""
