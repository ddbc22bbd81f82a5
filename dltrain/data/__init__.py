"""Data modules: one per source, sharing the in-memory base in base.py."""
