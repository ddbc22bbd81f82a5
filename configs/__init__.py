"""dltrain's built-in config tree, read by Hydra as pkg://dltrain.configs."""
