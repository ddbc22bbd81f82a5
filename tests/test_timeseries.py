"""Time series: the archive's .ts format and its rules, .npz and long CSV files, padding
with a mask that the nets honour, series augmentation, and fit/test/predict/export end to end."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from dltrain.data.timeseries import SeriesPreprocess, pad, read_long_csv, read_npz, read_ts
from dltrain.errors import DataError
from tests.conftest import read_metrics, run_dltrain

HEADER = """# a comment
@problemName Toy
@timeStamps false
@missing true
@univariate {univariate}
@equalLength {equal}
@classLabel true up down
@data
"""


def series(label: str, length: int, rng, channels: int = 1) -> list[list[float]]:
    """A rising or falling ramp with noise, per channel."""
    slope = 1.0 if label == "up" else -1.0
    t = np.linspace(0, 1, length)
    return [(slope * t * (c + 1) + 0.1 * rng.standard_normal(length)).tolist()
            for c in range(channels)]  # fmt: skip


def write_ts(path: Path, n: int, seed: int, channels: int = 1, equal: bool = False,
             missing: bool = True) -> None:  # fmt: skip
    """n labelled series; unequal lengths unless `equal`; a '?' in every fifth."""
    rng = np.random.default_rng(seed)
    lines = [HEADER.format(univariate=str(channels == 1).lower(), equal=str(equal).lower())]
    for i in range(n):
        label = "up" if i % 2 else "down"
        dims = series(label, 30 if equal else int(rng.integers(20, 40)), rng, channels)
        texts = [",".join("?" if (missing and i % 5 == 0 and k == 3) else f"{v:.4f}"
                          for k, v in enumerate(d)) for d in dims]  # fmt: skip
        lines.append(":".join(texts) + f":{label}\n")
    path.write_text("".join(lines))


def test_a_ts_file_reads_exactly_with_gaps_unequal_lengths_and_labels(tmp_path):
    write_ts(tmp_path / "toy.ts", 10, seed=0, channels=2)
    found = read_ts(tmp_path / "toy.ts")
    assert len(found.series) == 10 and found.labels[:2] == ["down", "up"]
    assert found.series[0].shape[1] == 2 and len({len(s) for s in found.series}) > 1
    assert np.isnan(found.series[0][3, 0]) and not np.isnan(found.series[1]).any()
    x = pad(found.series)
    assert x.shape == (10, max(len(s) for s in found.series), 3)
    assert x[0, : len(found.series[0]), -1].all() and not x[0, len(found.series[0]) :, -1].any()


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda t: t.replace("@univariate true", "@univariate maybe"), "must be true or false"),
        (
            lambda t: t.replace("@problemName Toy", "@problemNme Toy"),
            "unknown header line @problemnme",
        ),
        (lambda t: t.replace("@data\n", ""), "expected a @-header line or @data"),
        (lambda t: t.split("@data")[0], "has no @data line"),
        (lambda t: t.replace(":up\n", ":sideways\n", 1), "class label 'sideways' is not among"),
        (lambda t: t.replace("@missing true", "@missing false"), "@missing false"),
        (lambda t: t.replace("@equalLength false", "@equalLength true"), "@equalLength true, but"),
        (
            lambda t: t.replace("@univariate true", "@univariate false\n@dimensions 3"),
            "@dimensions 3, but the series have 1",
        ),
        (lambda t: t + "1,2,3:4,5,6:up\n", "2 dimensions, but the first series has 1"),
        (lambda t: t + "1,2,x:up\n", "'x' is not a number"),
    ],
)
def test_ts_format_rules_are_enforced_with_the_line(tmp_path, change, message):
    write_ts(tmp_path / "toy.ts", 6, seed=0)
    (tmp_path / "bad.ts").write_text(change((tmp_path / "toy.ts").read_text()))
    with pytest.raises(DataError, match=message):
        read_ts(tmp_path / "bad.ts")


def test_npz_and_long_csv_files_read_as_series(tmp_path):
    np.savez(tmp_path / "s.npz", x=np.arange(24.0).reshape(4, 6), y=np.array(["a", "b", "a", "b"]))
    found = read_npz(tmp_path / "s.npz")
    assert len(found.series) == 4 and found.series[1][:, 0].tolist() == [6, 7, 8, 9, 10, 11]
    assert found.labels == ["a", "b", "a", "b"]
    with (tmp_path / "long.csv").open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["sid", "t", "v1", "v2", "label"])
        for sid, steps in (("s1", 3), ("s2", 5)):
            for t in reversed(range(steps)):  # out of order: sorted by t
                writer.writerow([sid, t, t * 10, -t, "up" if sid == "s1" else "down"])
    found = read_long_csv(tmp_path / "long.csv", "sid", "t", "label")
    assert [s.shape for s in found.series] == [(3, 2), (5, 2)]
    assert found.series[1][:, 0].tolist() == [0, 10, 20, 30, 40] and found.labels == ["up", "down"]


def test_preprocessing_standardizes_fills_gaps_and_zeroes_padding():
    x = pad([np.array([[1.0], [np.nan], [3.0]]), np.array([[5.0]])])
    out = SeriesPreprocess(torch.tensor([2.0]), torch.tensor([2.0]))(x)
    assert out[0, :, 0].tolist() == [-0.5, 0.0, 0.5]  # the gap sits at the mean
    assert out[1, :, 0].tolist() == [1.5, 0.0, 0.0] and out[1, :, 1].tolist() == [1, 0, 0]


@pytest.mark.parametrize("kind", ["tcn", "rnn"])
def test_padding_never_changes_a_series_output(kind):
    from dltrain.models.rnn import RNN
    from dltrain.models.tcn import TCN

    torch.manual_seed(0)
    net = (TCN((10, 3), 4, channels=[8, 8], masked=True) if kind == "tcn"
           else RNN((10, 3), 4, cell="gru", masked=True)).eval()  # fmt: skip
    short = pad([np.random.default_rng(0).standard_normal((6, 2))])
    longer = torch.cat([short, torch.zeros(1, 9, 3)], dim=1)  # the same series, more padding
    assert torch.allclose(net(short), net(longer), atol=1e-5)


def test_series_augmentation_keeps_the_mask_and_changes_only_real_steps():
    from dltrain.augment import SeriesAugment

    x = pad([np.sin(np.linspace(0, 6, 40))[:, None], np.cos(np.linspace(0, 6, 25))[:, None]])
    torch.manual_seed(0)
    out = SeriesAugment(jitter=0.05, scaling=0.1, window=0.9)(x)
    assert torch.equal(out[..., -1], x[..., -1])
    assert not torch.allclose(out[0, :, 0], x[0, :, 0]) and out[1, 25:, 0].abs().sum() == 0


@pytest.fixture(scope="module")
def series_runs(tmp_path_factory):
    cwd = tmp_path_factory.mktemp("series")
    write_ts(cwd / "Toy_TRAIN.ts", 80, seed=0, channels=2)
    write_ts(cwd / "Toy_TEST.ts", 40, seed=1, channels=2)
    runs = {}
    for model in ("tcn", "rnn"):
        result = run_dltrain("fit", "data=timeseries", "data.path=Toy_TRAIN.ts",
                             "data.test_path=Toy_TEST.ts", f"model={model}", "augment=series",
                             "trainer.max_epochs=4", f"hydra.run.dir={model}", cwd=cwd)  # fmt: skip
        assert result.returncode == 0, result.stderr[-3000:]
        runs[model] = result
    return cwd, runs


@pytest.mark.parametrize("model", ["tcn", "rnn"])
def test_fit_on_unequal_series_uses_the_archives_test_file_and_learns(series_runs, model):
    cwd, runs = series_runs
    metrics = read_metrics(cwd / model)
    assert metrics["test/acc"] > 0.85 and metrics["baseline/name"].startswith("1-nearest")
    profile = json.loads((cwd / model / "data_profile.json").read_text())
    assert profile["samples"]["test"] == 40 and profile["lengths"]["train"]["min"] >= 20
    assert profile["lengths"]["train"]["max"] < 40 and "test_vs_train" in profile
    assert "sequence lengths: train" in runs[model].stdout


@pytest.mark.parametrize("model", ["tcn", "rnn"])
def test_predict_takes_a_raw_ts_file_and_test_reproduces(series_runs, model):
    cwd, _ = series_runs
    result = run_dltrain("predict", f"run={model}", "input=Toy_TEST.ts",
                         f"hydra.run.dir={model}_predicted", cwd=cwd)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    with (cwd / f"{model}_predicted" / "predictions.csv").open() as file:
        rows = list(csv.DictReader(file))
    truth = read_ts(cwd / "Toy_TEST.ts").labels
    accuracy = sum(r["predicted"] == t for r, t in zip(rows, truth, strict=True)) / len(truth)
    assert accuracy == pytest.approx(read_metrics(cwd / model)["test/acc"], abs=1e-6)
    # The same series as a bare .npy array [N, T, F] (NaN for the gaps), no labels.
    found = read_ts(cwd / "Toy_TEST.ts")
    longest = max(len(s) for s in found.series)
    array = np.full((len(found.series), longest, 2), np.nan)
    for i, s in enumerate(found.series[:1]):
        array[i, : len(s)] = s
    np.save(cwd / "one.npy", array[:1, : len(found.series[0])])
    result = run_dltrain("predict", f"run={model}", "input=one.npy",
                         f"hydra.run.dir={model}_npy", cwd=cwd)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    with (cwd / f"{model}_npy" / "predictions.csv").open() as file:
        assert next(csv.DictReader(file))["predicted"] == rows[0]["predicted"]


def test_export_of_a_tcn_matches_its_checkpoint(series_runs):
    import onnxruntime

    cwd, _ = series_runs
    result = run_dltrain("export", "run=tcn", "format=onnx", "hydra.run.dir=tcn_export", cwd=cwd)
    assert result.returncode == 0, result.stderr[-3000:]
    # Read back independently: the raw test series, the same with more padding (the time
    # axis is dynamic) and a batch of one; the classes match the truth as often as the
    # checkpoint's own test accuracy says.
    session = onnxruntime.InferenceSession(str(cwd / "tcn_export" / "model.onnx"))
    found = read_ts(cwd / "Toy_TEST.ts")
    x = pad(found.series).numpy()
    logits = session.run(None, {"input": x})[0]
    longer = np.concatenate([x, np.zeros((len(x), 7, x.shape[2]), np.float32)], axis=1)
    assert np.allclose(session.run(None, {"input": longer})[0], logits, atol=1e-4)
    assert np.allclose(session.run(None, {"input": x[:1]})[0], logits[:1], atol=1e-4)
    names = read_metrics(cwd / "tcn")["class_names"]
    accuracy = np.mean([names[i] == t for i, t in zip(logits.argmax(1), found.labels, strict=True)])
    assert accuracy == pytest.approx(read_metrics(cwd / "tcn")["test/acc"], abs=1e-6)


@pytest.mark.parametrize(
    "files, overrides, message",
    [
        (
            {"a.ts": "@problemName x\n@wrong 1\n@data\n1,2:a\n"},
            ["data.path=a.ts"],
            "unknown header line",
        ),
        (
            {"a.ts": "@classLabel false\n@data\n1,2,3\n1,2,3\n"},
            ["data.path=a.ts"],
            "holds no labels",
        ),
        ({"a.npz": "npz2"}, ["data.path=a.ts", "data.test_path=a.npz"], "channels per time step"),
        ({}, ["data.path=missing.ts"], "no such file"),
        ({"a.txt": "x"}, ["data.path=a.txt"], "give a .ts, .npz, .npy or long-format .csv"),
        ({"a.npy": "npy"}, ["data.path=a.npy"], "holds no labels"),
    ],
)
def test_bad_series_files_exit_2_with_one_line(dltrain, files, overrides, message):
    write_ts(dltrain.cwd / "a.ts", 40, seed=0)
    for name, content in files.items():
        if content == "npy":
            np.save(dltrain.cwd / name, np.zeros((10, 30)))
        elif content == "npz2":
            np.savez(dltrain.cwd / name, x=np.zeros((10, 30, 2)), y=np.array(["up", "down"] * 5))
        else:
            (dltrain.cwd / name).write_text(content)
    result = dltrain("fit", "data=timeseries", "model=tcn", "trainer=smoke", *overrides)
    assert result.returncode == 2, result.stderr[-2000:]
    assert message in result.stderr and "Traceback" not in result.stderr
    assert not (dltrain.cwd / "runs").exists() or not list((dltrain.cwd / "runs").rglob("*.ckpt"))


def test_augmentation_that_does_not_fit_the_data_exits_2(dltrain):
    image_on_series = dltrain("fit", "trainer=smoke", "augment=series")  # digits images
    assert image_on_series.returncode == 2 and "for time series" in image_on_series.stderr


def test_an_rnn_on_series_exports_to_torchscript_and_says_why_not_onnx(series_runs):
    cwd, _ = series_runs
    onnx = run_dltrain("export", "run=rnn", "format=onnx", "hydra.run.dir=rnn_onnx", cwd=cwd)
    assert onnx.returncode == 2 and "use format=torchscript" in onnx.stderr
    script = run_dltrain("export", "run=rnn", "format=torchscript", "hydra.run.dir=rnn_ts", cwd=cwd)
    assert script.returncode == 0, script.stderr[-3000:]
