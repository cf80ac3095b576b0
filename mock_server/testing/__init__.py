"""Helpers for the mock's tests and benchmarks (not used by the server itself)."""
