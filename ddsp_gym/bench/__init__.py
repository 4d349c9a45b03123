"""Benchmarks: ``ddsp-gym bench --perf`` (speed of plants, losses and envs)."""
