"""A custom search space for hydra.sweeper.custom_search_space (tests/test_sweep_insight_e2e.py)."""

from __future__ import annotations

from typing import Any


def sgd_momentum(config: Any, trial: Any) -> None:
    """SGD's momentum, suggested only for trials that chose optim=sgd."""
    if trial.params.get("optim") == "sgd":
        trial.suggest_float("optim.momentum", 0.5, 0.99)
