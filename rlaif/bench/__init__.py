"""Benchmarks: generation against raw vLLM, judging cost, trainers against plain TRL."""
