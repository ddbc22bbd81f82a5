"""Sweeps: the results report built from a multirun's run directories."""
