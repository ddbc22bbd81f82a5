"""The GPU path: in-memory data on the training device, trainer=gpu, speed.compile.

On a CPU machine these check correctness (the same results with the data "on the device",
a compiled net matching the plain one); the tests marked `cuda` run where a GPU is visible
(see the README's "Training on a GPU" for the figures measured on one)."""

from __future__ import annotations

import pytest
import torch

from dltrain.data.base import InMemoryDataModule
from dltrain.data.digits import DigitsDataModule
from dltrain.data.synthetic import SyntheticDataModule
from tests.conftest import read_metrics, run_dirs

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
# Small, dropout-free runs: a compiled net draws dropout masks differently from eager mode.
QUICK = ("model=mlp", "model.hidden=[32]", "regularization=none", "trainer.max_epochs=2",
         "baseline=none")  # fmt: skip


def batches(data: InMemoryDataModule, split: str) -> list[tuple[torch.Tensor, torch.Tensor]]:
    loader = data.train_dataloader() if split == "train" else data._loader(split)
    return [(x.cpu(), y.cpu()) for x, y in loader]


def test_data_on_the_device_gives_the_same_batches(monkeypatch):
    """on_device=true cuts the same batches, in the same order, from the device's copy."""
    host, placed = (DigitsDataModule(on_device=flag) for flag in (False, True))
    for data in (host, placed):
        data.setup()
    device = torch.device("cuda", 0) if torch.cuda.is_available() else torch.device("cpu")
    monkeypatch.setattr(InMemoryDataModule, "_device", lambda self: device)
    assert placed.placement(device)[0] and not host.placement(device)[0]
    for split in ("train", "val", "test"):
        ours, theirs = batches(placed, split), batches(host, split)
        assert len(ours) == len(theirs) > 0
        for (x1, y1), (x2, y2) in zip(ours, theirs, strict=True):
            assert torch.equal(x1, x2) and torch.equal(y1, y2)
    # One copy per split, reused by every later loader.
    assert placed._placed["train"][0].device.type == device.type
    first = placed._placed["train"][0]
    placed.train_dataloader()
    assert placed._placed["train"][0] is first


def test_auto_placement_follows_the_memory_share(monkeypatch):
    """auto: on a GPU when the splits fit in data.device_memory_share of its memory."""
    data = SyntheticDataModule(num_samples=1000, shape=[1, 8, 8], device_memory_share=0.5)
    data.setup()
    size = sum(t.nbytes for x, y in data.splits.values() for t in (x, y))

    class Properties:
        total_memory = 0

    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda device: Properties)
    gpu = torch.device("cuda", 0)
    Properties.total_memory = 4 * size
    placed, why = data.placement(gpu)
    assert placed and "copied to cuda:0 once (data.on_device=auto)" in why
    Properties.total_memory = size
    placed, why = data.placement(gpu)
    assert not placed and "data.device_memory_share=0.5" in why
    assert data.placement(torch.device("cpu")) == (False, "0.3 MiB in host memory")
    data.on_device = False
    Properties.total_memory = 4 * size
    assert not data.placement(gpu)[0]


def test_amp_precision_resolver():
    from dltrain.config.resolvers import amp_precision

    if not torch.cuda.is_available():
        assert amp_precision() == "32-true"
    else:
        expected = "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
        assert amp_precision() == expected


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a CPU machine")
def test_trainer_gpu_without_a_gpu_is_a_config_error(dltrain):
    result = dltrain("fit", "trainer=gpu")
    assert result.returncode == 2, result.stderr
    assert "trainer.accelerator=gpu needs a CUDA GPU" in result.stderr
    assert "trainer=default" in result.stderr
    assert not run_dirs(dltrain.cwd / "runs")


@pytest.mark.slow
def test_compiled_net_trains_like_the_plain_one(dltrain):
    """speed.compile=true: the summary says so, the figures match eager mode, and the
    checkpoint holds the plain net's parameter names (test/predict rebuild it uncompiled)."""
    results = {}
    for flag in ("false", "true"):
        result = dltrain("fit", *QUICK, f"speed.compile={flag}", f"hydra.run.dir=run_{flag}")
        assert result.returncode == 0, result.stderr
        results[flag] = read_metrics(dltrain.cwd / f"run_{flag}")
    assert "compiled with torch.compile" in result.stdout
    assert "No CUDA runtime" not in result.stderr
    assert results["true"]["val/loss"] == pytest.approx(results["false"]["val/loss"], abs=2e-3)
    assert results["true"]["test/acc"] == pytest.approx(results["false"]["test/acc"], abs=0.01)
    checkpoint = torch.load(dltrain.cwd / "run_true/checkpoints/best.ckpt", weights_only=True)
    assert not any("_orig_mod" in key for key in checkpoint["state_dict"])
    test = dltrain("test", "run=run_true")
    assert test.returncode == 0, test.stderr


@cuda
@pytest.mark.slow
def test_fit_on_the_gpu(dltrain):
    """trainer=gpu: mixed precision, data on the GPU once, the same quality as on the CPU."""
    result = dltrain("fit", "trainer=gpu", "trainer.max_epochs=5", "hydra.run.dir=run")
    assert result.returncode == 0, result.stderr
    assert "cuda:0, precision bf16-mixed" in result.stdout.replace("\n", " ")
    assert "copied to cuda:0 once" in result.stdout
    assert read_metrics(dltrain.cwd / "run")["test/acc"] > 0.9
    compiled = dltrain("fit", "trainer=gpu", "speed.compile=true", *QUICK, "hydra.run.dir=c")
    assert compiled.returncode == 0, compiled.stderr
    assert "compiled with torch.compile" in compiled.stdout
    test = dltrain("test", "run=c")
    assert test.returncode == 0, test.stderr


def test_compile_net_really_compiles():
    """compile_net runs the net's forward under torch.compile (the e2e test above only
    compares figures, which an uncompiled net would match too)."""
    from torch import nn

    from dltrain.module import Learner

    class Recording(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.linear, self.compiled = nn.Linear(4, 3), []

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            self.compiled.append(torch.compiler.is_compiling())
            return self.linear(x)

    net = Recording()
    learner = Learner(net, 3, optimizer=lambda groups: torch.optim.SGD(groups, lr=0.1))
    learner.compile_net()
    learner(torch.randn(2, 4))
    assert net.compiled and all(net.compiled)
    assert set(learner.state_dict()) >= {"net.linear.weight", "net.linear.bias"}
