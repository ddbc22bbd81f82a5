"""What dltrain shows in the terminal, with rich."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table
from rich.tree import Tree

console = Console()


def _add_branch(tree: Tree, node: Any) -> None:
    for key, value in node.items():
        if isinstance(value, dict) and value:
            _add_branch(tree.add(f"[bold]{key}[/bold]"), value)
        else:
            tree.add(
                f"[bold]{key}[/bold]: [cyan]{value!r}[/cyan]"
                if not isinstance(value, str)
                else f"[bold]{key}[/bold]: [green]{value}[/green]"
            )


def show_config(config: dict[str, Any], title: str = "config") -> None:
    """Print a resolved config as a tree."""
    tree = Tree(f"[bold magenta]{title}[/bold magenta]")
    _add_branch(tree, config)
    console.print(tree)


def show_metrics(metrics: dict[str, Any], title: str) -> None:
    """Print the scalar metrics as a table, one row per metric."""
    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, value in metrics.items():
        if isinstance(value, float):
            table.add_row(name, f"{value:.4f}")
    console.print(table)
