"""What the tasks share for their JSON outputs: files written whole."""

from __future__ import annotations

import json
from pathlib import Path


def write_json(path: Path, content: dict) -> None:
    """Write a JSON file whole: to a temporary name first, then renamed into place."""
    partial = path.with_suffix(path.suffix + ".tmp")
    partial.write_text(json.dumps(content, indent=2) + "\n")
    partial.replace(path)
