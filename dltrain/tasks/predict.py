"""`dltrain predict run=<run dir> input=<path>`: predictions for new inputs, with the run's model."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from dltrain.console import console
from dltrain.data.image_folder import EXTENSIONS, ImageFiles
from dltrain.errors import DataError
from dltrain.tasks.saved_run import (
    checkpoint_path,
    find_run,
    load_model,
    run_config,
    test_time_augmentation,
)


def read_images(paths: list[Path], input_shape: tuple[int, ...]) -> torch.Tensor:
    """Image files as the model's raw inputs: its channels and its size."""
    if len(input_shape) != 3:
        raise DataError(f"this model takes inputs of shape {list(input_shape)}, not images.")
    channels, height, width = input_shape
    images = ImageFiles(paths, "L" if channels == 1 else "RGB", (height, width))
    try:
        return torch.stack([images[i] for i in range(len(images))])
    except OSError as error:
        raise DataError(f"cannot read an input image: {error}") from error


def read_table_rows(path: Path, description: dict) -> torch.Tensor:
    """A table's rows as the model's raw rows, its columns found by name (any order)."""
    from dltrain.data.table import TableSchema, read_table

    if description.get("kind") != "table":
        raise DataError(
            f"input={path}: this model was not trained on a table; give"
            " images, a folder of images or a .npy array."
        )
    schema = TableSchema.from_state(description["schema"])
    table = read_table(path, "input")
    used = {*schema.numeric, *schema.categories}
    extra = [c for c in table.columns if c not in used and c != description.get("label_column")]
    if extra:
        console.print(f"input: ignoring columns the model does not use: {', '.join(extra)}")
    return schema.encode(table, f"input={path}")


def read_series(path: Path, description: dict) -> tuple[list[str], torch.Tensor]:
    """Series from a .ts, .npz or long .csv file (labels, if any, ignored), padded as in
    training."""
    from dltrain.data.timeseries import TimeSeriesDataModule

    reader = TimeSeriesDataModule(
        id_column=description["id_column"], time_column=description["time_column"],
        label_column=description["label_column"], max_length=description["max_length"],
    )  # fmt: skip
    reader.channels = description["channels"]
    found = reader.read_file(str(path), "input")
    return [f"{path}[{i}]" for i in range(len(found.series))], reader.series_tensor(
        found, f"input={path}"
    )


def read_text_inputs(path: Path, description: dict) -> tuple[list[str], torch.Tensor]:
    """Texts from a table's text column or a .txt file (one per line), as token ids."""
    from tokenizers import Tokenizer

    from dltrain.data.text import encode, read_texts

    _, texts = read_texts(path, description["text_column"], "input")
    ids, _ = encode(Tokenizer.from_str(description["tokenizer"]), texts, description["max_length"])
    return [f"{path}:{i + 1}" for i in range(len(texts))], ids


def read_inputs(
    path: Path, description: dict, input_shape: tuple[int, ...]
) -> tuple[list[str], torch.Tensor]:
    """(source of each sample, raw inputs) from an image, a folder of images, a table or a .npy."""
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.suffix.lower() in EXTENSIONS)
        if not files:
            raise DataError(f"input={path} holds no images ({', '.join(sorted(EXTENSIONS))}).")
        return [str(f) for f in files], read_images(files, input_shape)
    if not path.is_file():
        raise DataError(f"input={path}: no such file or folder.")
    if description.get("kind") == "timeseries":
        return read_series(path, description)
    if description.get("kind") == "text":
        return read_text_inputs(path, description)
    suffix = path.suffix.lower()
    if suffix in EXTENSIONS:
        return [str(path)], read_images([path], input_shape)
    if suffix in (".csv", ".parquet", ".pq"):
        x = read_table_rows(path, description)
        return [f"{path}:row{i + 1}" for i in range(len(x))], x
    if suffix == ".npy":
        try:
            array = np.load(path, allow_pickle=False)
        except (ValueError, OSError, EOFError) as error:
            raise DataError(f"input={path} is not a readable .npy array ({error}).") from None
        one_channel_image = len(input_shape) == 3 and input_shape[0] == 1
        if (
            one_channel_image
            and array.ndim in (2, 3)
            and tuple(array.shape[-2:]) == tuple(input_shape[1:])
        ):
            array = array[:, None] if array.ndim == 3 else array[None, None]  # [N, H, W], [H, W]
        if tuple(array.shape) == tuple(input_shape):
            array = array[None]
        if tuple(array.shape[1:]) != tuple(input_shape):
            raise DataError(
                f"{path} holds an array of shape {list(array.shape)}; the model takes"
                f" [N, {', '.join(map(str, input_shape))}] (or one sample) in the data's raw scale."
            )
        return [f"{path}[{i}]" for i in range(len(array))], torch.as_tensor(
            array, dtype=torch.float32
        )
    raise DataError(
        f"input={path}: give an image, a folder of images, a table (.csv, .parquet) or a .npy file."
    )


def main(cfg: DictConfig) -> int:
    """Write predictions.csv in this command's run directory; return the number of samples."""
    run = find_run(cfg.run)
    config = run_config(run, cfg, list(HydraConfig.get().overrides.task))
    model = load_model(config, checkpoint_path(run, cfg.ckpt_path))
    model.tta = test_time_augmentation(cfg.tta, config, model.input_shape)
    sources, x = read_inputs(Path(cfg.input), model.data_description, model.input_shape)
    with torch.no_grad():
        batches = torch.split(
            x, int(config.data.batch_size) if config.data.batch_size != "auto" else 256
        )
        outputs = torch.cat([model(batch) for batch in batches])
    columns, rows = model.problem.predictions(outputs, model.class_names)
    out = Path(cfg.paths.run_dir) / "predictions.csv"
    with out.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["id", "source", *columns])
        for i, (source, row) in enumerate(zip(sources, rows, strict=True)):
            writer.writerow([i, source, *row])
    console.print(f"{len(sources)} predictions → {out}")
    return len(sources)
