"""Failures during training: a clear message, the right exit code, nothing good lost."""

import signal
import time

import pytest
import torch

from tests.conftest import run_dltrain


def test_divergence_stops_naming_epoch_and_step_and_keeps_the_last_good_checkpoint(dltrain):
    # epoch 0 trains normally; the schedule then multiplies the rate by 10000
    result = dltrain("fit", "model=mlp", "model.batchnorm=false", "optim=sgd", "optim.lr=0.05",
                     "sched=exponential", "sched.scheduler.gamma=10000", "regularization=none",
                     "trainer.max_epochs=3", "hydra.run.dir=run")  # fmt: skip
    assert result.returncode == 1
    assert "training diverged" in result.stderr and "epoch 1" in result.stderr
    assert "lower the learning rate" in result.stderr.lower()
    assert "Traceback" not in result.stderr and "Error executing job" not in result.stderr
    run = dltrain.cwd / "run"
    last = torch.load(run / "checkpoints" / "last.ckpt", weights_only=False)
    assert last["epoch"] == 0 and not (run / "metrics.json").exists()
    assert all(
        torch.isfinite(v).all() for v in last["state_dict"].values() if v.is_floating_point()
    )


def start_fit(cwd, *args):
    """`dltrain fit` as a background process, one torch thread."""
    import os
    import subprocess

    from tests.conftest import dltrain_command

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([*dltrain_command(), "fit", *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip


def wait_for(path, process, seconds=90):
    import time

    deadline = time.time() + seconds
    while not path.exists():
        assert process.poll() is None, process.communicate()
        assert time.time() < deadline, f"{path} never appeared"
        time.sleep(0.2)


SLOW_FIT = ["data=synthetic", "data.shape=[1,28,28]", "data.num_samples=6000", "model=cnn",
            "trainer.max_epochs=50", "regularization=none", "sched=none", "hydra.run.dir=run"]  # fmt: skip


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_saves_a_resumable_checkpoint_and_prints_the_resume_command(tmp_path, sig, code):
    process = start_fit(tmp_path, *SLOW_FIT)
    run = tmp_path / "run"
    wait_for(run / "checkpoints" / "last.ckpt", process)  # after the first epoch ...
    time.sleep(1.0)  # ... and into the second one
    process.send_signal(sig)
    out, err = process.communicate(timeout=120)
    assert process.returncode == code, err[-2000:]
    assert f"dltrain fit resume={run}" in err
    saved = torch.load(run / "checkpoints" / "last.ckpt", weights_only=False)
    assert saved["epoch"] >= 1 and not list((run / "checkpoints").glob(".*partial"))
    resumed = run_dltrain(
        "fit", "resume=run", "trainer.max_epochs=2", "data.num_samples=6000", cwd=tmp_path
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert (run / "metrics.json").is_file()


def test_kill_9_leaves_the_last_checkpoint_whole(tmp_path):
    process = start_fit(tmp_path, *SLOW_FIT)
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    wait_for(last, process)
    time.sleep(1.5)
    process.kill()
    process.communicate(timeout=60)
    torch.load(last, weights_only=False)  # loads: never a half-written file
    resumed = run_dltrain("fit", "resume=run", "trainer.max_epochs=2", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]


def test_an_unwritable_output_location_is_refused_before_training(dltrain):
    (dltrain.cwd / "a_file").write_text("not a directory")
    for place in ("a_file/run", "/proc/dltrain_cannot_write_here"):
        for setting in (f"hydra.run.dir={place}", f"paths.root={place}"):
            result = dltrain("fit", setting)
            assert result.returncode == 2, result.stderr
            assert "cannot write" in result.stderr and setting.split("=")[0] in result.stderr
            assert "Traceback" not in result.stderr and "interpolation" not in result.stderr


def test_a_nearly_full_disk_is_refused_before_training_and_keeps_earlier_runs(dltrain):
    """A real small filesystem (tmpfs): too little room for checkpoints and plots."""
    import subprocess

    disk = dltrain.cwd / "small_disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(disk)],
                      capture_output=True).returncode != 0:  # fmt: skip
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        (disk / "earlier.txt").write_text("an earlier result")
        result = dltrain("fit", "trainer=smoke", f"paths.root={disk}")
        assert result.returncode == 2, result.stderr
        assert "cannot write" in result.stderr and "MB are free" in result.stderr
        assert (disk / "earlier.txt").read_text() == "an earlier result"
    finally:
        subprocess.run(["umount", str(disk)], check=False)


@pytest.mark.parametrize(
    "files, args, message",
    [
        ({}, ["data=csv", "data.path=missing.csv"], "no such file"),
        ({"empty/": ""}, ["data=image_folder", "data.path=empty"], "no class sub-folders"),
        (
            {"pics/cat/1.png": "png", "pics/dog/1.png": b"not an image"},
            ["data=image_folder", "data.path=pics"],
            "not a readable image",
        ),
        ({"t.csv": "a,b\n1,2\n"}, ["data=csv", "data.path=t.csv"], "no label column 'label'"),
        ({"t.csv": "a,label\n" + "1,x\n" * 30}, ["data=csv", "data.path=t.csv"], "one class only"),
        (
            {"t.csv": "a,b,label\n" + "".join(f"{i},,{i % 2}\n" for i in range(60))},
            ["data=csv", "data.path=t.csv"],
            "empty in every training row",
        ),
        ({"data/mnist/bad": "idx"}, ["data=mnist"], "not an IDX file"),
        ({"data/mnist/labels": "idx-labels-12"}, ["data=mnist"], "label 12"),
        ({"rare.csv": "rare"}, ["data=csv", "data.path=rare.csv"], "has no samples of class"),
        (  # non-finite inputs: inf in a table, inf in a series (NaN there means missing)
            {
                "t.csv": "a,label\n"
                + "".join(f"{'inf' if i == 7 else i},{i % 2}\n" for i in range(60))
            },
            ["data=csv", "data.path=t.csv"],
            "infinite value",
        ),
        ({"s.npz": "series_with_inf"}, ["data=timeseries", "data.path=s.npz"], "non-finite input"),
    ],
)
def test_bad_data_exits_2_with_a_message_and_touches_no_earlier_run(dltrain, files, args, message):
    earlier = dltrain("fit", "trainer=smoke", "hydra.run.dir=earlier")
    assert earlier.returncode == 0
    before = {p: p.stat().st_mtime_ns for p in (dltrain.cwd / "earlier").rglob("*") if p.is_file()}
    write_bad_files(dltrain.cwd, files)
    result = dltrain("fit", "trainer=smoke", *args)
    assert result.returncode == 2, result.stderr[-2000:]
    assert message in result.stderr and "Traceback" not in result.stderr
    assert {
        p: p.stat().st_mtime_ns for p in (dltrain.cwd / "earlier").rglob("*") if p.is_file()
    } == before


def write_bad_files(root, files):
    """Materialize the named bad inputs in their real formats."""
    import gzip

    import numpy as np

    from tests.datasets import idx_bytes, write_image_folder, write_mnist

    for name, content in files.items():
        path = root / name
        if name.endswith("/"):
            path.mkdir(parents=True)
        elif content == "png":
            write_image_folder(root / "pics", classes=("cat",), per_class=3)
        elif content == "idx":
            write_mnist(path.parent)
            (path.parent / "train-images-idx3-ubyte.gz").write_bytes(
                gzip.compress(b"\x00\x01\x08\x03" + bytes(16))
            )
        elif content == "idx-labels-12":
            write_mnist(path.parent)
            labels = np.full(100, 12, dtype=np.uint8)
            (path.parent / "train-labels-idx1-ubyte.gz").write_bytes(
                gzip.compress(idx_bytes(labels))
            )
        elif content == "small":  # 40 rows: a training split below the batch size of 64
            path.write_text("a,label\n" + "".join(f"{i},{i % 2}\n" for i in range(40)))
        elif content == "series_with_inf":  # 40 series of 20 steps, one value infinite
            x = np.random.default_rng(0).normal(size=(40, 20)).astype(np.float32)
            x[3, 5] = np.inf
            np.savez(path, x=x, y=np.arange(40) % 2)
        elif content == "rare":  # class 'z' has 2 samples: one split goes without it
            rows = [f"{i},{'xy'[i % 2]}" for i in range(200)] + ["1,z", "2,z"]
            path.write_text("a,label\n" + "\n".join(rows) + "\n")
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content) if isinstance(content, bytes) else path.write_text(content)
