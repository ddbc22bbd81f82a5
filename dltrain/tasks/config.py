"""`dltrain config [overrides]`: the resolved, validated config, without training.
`dltrain config --groups`: every config group and its options."""

from __future__ import annotations

from omegaconf import OmegaConf
from rich.table import Table

from dltrain.config.compose import NOT_STARTED, compose_fit, group_options
from dltrain.config.search_path import split_config_dirs, user_config_dirs
from dltrain.config.validate import validate
from dltrain.console import console, show_config


def show_groups(config_dirs) -> None:
    """A table of groups, their options and the default choice."""
    choices = compose_fit([], config_dirs, hydra_node=True).hydra.runtime.choices
    table = Table(title="config groups (choose with group=option)")
    table.add_column("group", style="bold")
    table.add_column("options")
    for group, options in group_options(config_dirs).items():
        default = choices.get(group)
        shown = [f"[green]{o}[/green] (default)" if o == default else o for o in options]
        table.add_row(group, ", ".join(shown))
    console.print(table)


def main(args: list[str]) -> int:
    """Print the config (or the groups); exit 2 on a config error like `fit` would."""
    args, dirs = split_config_dirs(args)
    config_dirs = user_config_dirs(dirs)
    if "--groups" in args:
        show_groups(config_dirs)
        return 0
    cfg = compose_fit([*args, f"paths.run_dir='{NOT_STARTED}'"], config_dirs)
    validate(cfg)
    show_config(
        OmegaConf.to_container(cfg, resolve=True), title="dltrain fit config (resolved, valid)"
    )
    return 0
