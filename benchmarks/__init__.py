"""Benchmarks of the course's serving stack (`make bench`): importable as `benchmarks.serving` by the tests.

Each module also runs as a script (`python benchmarks/serving.py`); see benchmarks/README.md.
"""
