"""Helpers shared by tests, vm-tests and benchmarks: real peers (tgtd) and small socket tools."""
