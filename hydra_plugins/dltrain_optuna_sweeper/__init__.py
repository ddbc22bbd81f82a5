"""dltrain's Hydra sweeper for optuna 4/5 (Hydra imports every hydra_plugins module at start)."""
