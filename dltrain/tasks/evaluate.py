"""What fit and test share: evaluating a checkpoint on held-out data and writing metrics.json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def test_report(metrics: dict[str, float], report: dict[str, Any], class_names: list[str]) -> dict:
    """metrics.json: the flat val/test metrics, the confusion matrix and per-class figures."""
    confusion = report["confusion_matrix"]
    per_class = {
        name: {
            "precision": report["per_class"]["precision"][i],
            "recall": report["per_class"]["recall"][i],
            "f1": report["per_class"]["f1"][i],
            "support": int(sum(confusion[i])),
        }
        for i, name in enumerate(class_names)
    }
    return {
        **metrics,
        "test/confusion_matrix": confusion,
        "test/per_class": per_class,
        "class_names": class_names,
    }


def write_json(path: Path, content: dict) -> None:
    """Write a JSON file whole: to a temporary name first, then renamed into place."""
    partial = path.with_suffix(path.suffix + ".tmp")
    partial.write_text(json.dumps(content, indent=2) + "\n")
    partial.replace(path)
