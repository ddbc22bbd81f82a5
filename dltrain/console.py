"""What dltrain shows in the terminal, with rich."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.panel import Panel
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


def show_summary(lines: dict[str, str]) -> None:
    """A short labelled summary, one line per entry (the start of a fit)."""
    width = max(map(len, lines))
    for label, text in lines.items():
        console.print(f"  [bold]{label:<{width}}[/bold]  {text}", highlight=False)


def show_metrics(
    metrics: dict[str, Any], title: str, baseline: dict[str, Any] | None = None
) -> None:
    """Print the scalar metrics as a table, one row per metric, with the classical
    baseline's figure beside each one it has (`baseline/val_acc` beside `val/acc`)."""
    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    shown = {k: v for k, v in (baseline or {}).items() if isinstance(v, float)}
    if any(k.startswith("baseline/val_") for k in shown):
        table.add_column("baseline", justify="right")
        table.caption = f"baseline: {baseline['baseline/name']}"
    for name, value in metrics.items():
        if isinstance(value, float):
            theirs = shown.get("baseline/" + name.replace("/", "_", 1))
            row = [name, f"{value:.4f}"] + ([] if table.caption is None else
                                             ["" if theirs is None else f"{theirs:.4f}"])  # fmt: skip
            table.add_row(*row)
    console.print(table)


def show_profile(report: dict[str, Any], warnings: list[str]) -> None:
    """The data profile as a compact table, then its warnings."""
    table = Table(title="data profile")
    table.add_column("split")
    table.add_column("samples", justify="right")
    table.add_column(report["targets_title"])
    for split, count in report["samples"].items():
        table.add_row(split, str(count), report["targets_shown"][split])
    console.print(table)
    facts = [
        f"input shape {report['input_shape']}",
        f"imbalance ratio {report['imbalance_ratio']:.1f}",
    ]
    if report.get("train_min") is not None:
        facts.append(f"training values {report['train_min']:.3g} .. {report['train_max']:.3g}")
    console.print("  " + " · ".join(facts))
    if report.get("lengths"):
        shown = ", ".join(f"{split} {v['min']}..{v['max']} (median {v['median']})"
                          for split, v in report["lengths"].items())  # fmt: skip
        console.print(f"  sequence lengths: {shown}")
    if report.get("vocabulary"):
        unknown = report["unknown_tokens"]
        console.print(
            f"  vocabulary {report['vocabulary']} tokens; unknown tokens: val {unknown['val']:.1%},"
            f" test {unknown['test']:.1%}"
        )
    if report.get("baseline"):
        console.print(f"  baseline: {report['baseline']}")
    if report.get("columns"):
        shown = []
        for name, column in report["columns"].items():
            kind = (
                "numeric" if column["kind"] == "numeric" else f"{column['categories']} categories"
            )
            gaps = f", {column['missing']} missing" if column["missing"] else ""
            shown.append(f"{name} ({kind}{gaps})")
        console.print("  columns: " + ", ".join(shown))
    for note in report.get("notes", []):
        console.print(f"  note: {note}")
    for warning in warnings:
        console.print(f"[yellow]warning:[/yellow] {warning}")


def show_diagnosis(findings: list[dict[str, str]]) -> None:
    """The diagnosis after a fit, one line per finding."""
    healthy = findings[0]["code"] == "healthy"
    lines = [f"[bold]{f['code']}[/bold]: {f['message']}" for f in findings]
    console.print(
        Panel("\n".join(lines), title="diagnosis", border_style="green" if healthy else "yellow")
    )
