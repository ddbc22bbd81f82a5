"""What a fit returns to a sweeper: the monitored metric, or several objectives (a
multi-objective sweep), each a figure of the run or a cost dltrain measures itself."""

from __future__ import annotations

import statistics
import time
from typing import Any

import torch

from dltrain.errors import did_you_mean

# Costs written to costs.json after every fit (they vary run to run, so metrics.json,
# which is identical for identical runs, does not hold them).
COSTS = {
    "cost/params": "parameters of the net",
    "cost/latency_ms": "milliseconds to predict one sample on the run's device (median)",
    "cost/epoch_seconds": "mean seconds per training epoch",
}


def latency_ms(module: Any, sample: torch.Tensor, repeats: int = 20) -> float:
    """Median wall time of the model's forward pass on one sample, in milliseconds."""
    module.eval()
    sample = sample.to(module.device)
    synchronize = torch.cuda.synchronize if sample.is_cuda else (lambda: None)
    times = []
    with torch.inference_mode():
        for i in range(repeats + 3):  # three warm-up passes
            started = time.perf_counter()
            module(sample)
            synchronize()
            if i >= 3:
                times.append(time.perf_counter() - started)
    return 1000 * statistics.median(times)


def parameter_count(module: Any) -> int:
    """Parameters of the model's net."""
    return sum(p.numel() for p in module.net.parameters())


def measure_costs(module: Any, datamodule: Any, history: list[dict]) -> dict[str, float]:
    """cost/params, cost/latency_ms and cost/epoch_seconds of a fitted run."""
    x = datamodule.splits["test"][0]
    # One test input, taken from the split itself: no loader (and no workers) for one sample.
    sample = x[:1] if isinstance(x, torch.Tensor) else x[0][0].unsqueeze(0)
    seconds = [float(row["epoch_seconds"]) for row in history if row.get("epoch_seconds")]
    return {
        "cost/params": float(parameter_count(module)),
        "cost/latency_ms": round(latency_ms(module, sample), 4),
        "cost/epoch_seconds": round(statistics.mean(seconds), 4) if seconds else float("nan"),
    }


def best_epoch_row(history: list[dict], metric: str, mode: str, best: float | None) -> dict:
    """The metrics.csv row of the best checkpoint's epoch (ties: the lower val/loss)."""
    rows = [r for r in history if r.get(metric) not in (None, "")]
    if not rows:
        return {}
    if best is not None:
        matching = [r for r in rows if abs(float(r[metric]) - best) < 1e-9]
        rows = matching or rows
    pick = max if mode == "max" else min
    top = pick(float(r[metric]) for r in rows)
    tied = [r for r in rows if float(r[metric]) == top]
    return min(tied, key=lambda r: float(r.get("val/loss") or 0.0))


def objective_values(names: list[str], metrics: dict, costs: dict, best_row: dict) -> list[float]:
    """The value of each objective: a figure of metrics.json (val/..., test/...), a cost, or a
    training figure at the best checkpoint's epoch (train/...)."""
    values = []
    for name in names:
        for source in (metrics, costs, best_row):
            if source.get(name) not in (None, ""):
                values.append(float(source[name]))
                break
        else:
            values.append(float("nan"))
    return values


def check_objectives(names: list[str], logged: tuple[str, ...]) -> str | None:
    """Why a list of monitor.metrics cannot be measured (None: it can): each is a logged
    metric, its test/ twin, or a cost."""
    known = [*logged, *(f"test/{n[4:]}" for n in logged if n.startswith("val/")), *COSTS]
    for name in names:
        if name not in known:
            return (
                f"monitor.metrics: {name} is neither a logged metric nor a cost.{did_you_mean(name, known)}"
                f" Choose from {', '.join(known)}."
            )
    return None
