"""Benchmarks: commands that print figures (not tests; run them by hand, once, short)."""
