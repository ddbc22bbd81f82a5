"""Subcommands: each module here holds one task's `main(cfg)`, run by Hydra via the runner."""
