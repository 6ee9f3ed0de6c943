"""Probe sets: the model, loading from YAML, version hashing and in-place editing."""
