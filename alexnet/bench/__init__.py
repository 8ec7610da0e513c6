"""Benchmarks that time the project against a plain reference in the same run (`alexnet bench ...`)."""
