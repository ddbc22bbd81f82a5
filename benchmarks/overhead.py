"""Per-epoch cost of `dltrain fit` against a plain PyTorch loop, measured in the same run.

    python benchmarks/overhead.py [--models mlp cnn] [--epochs 4]

(a) a plain loop: the same net, data split and optimizer; batches sliced from
    in-memory tensors; one validation pass per epoch, as any real loop has.
(b) `dltrain fit` with all its defaults (progress bar, metrics, checkpoints, epoch
    history, validation every epoch), its epoch times read from metrics.csv.
Each is run `--rounds` times, alternating, and the fastest epoch (after the first,
a warm-up) of each counts: timings on a small shared machine vary by +-10% run to run.
Prints the ratio b/a.
Targets (issue 6): <= 1.3 for the MLP, <= 1.05 for the default CNN.
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

COMMON = [
    "data=synthetic",
    "data.shape=[1,28,28]",
    "data.num_samples=50000",
    "data.batch_size=128",
    "optim=adam",
    "sched=none",
    "augment=none",
    "regularization=none",
]
MODELS = {
    "mlp": ["model=mlp", "model.hidden=[512,256]", "model.dropout=0", "model.batchnorm=false"],
    "cnn": ["model=cnn"],
}


def dltrain_epoch_seconds(model: str, epochs: int, workdir: Path) -> list[float]:
    """Epoch wall times of a real `dltrain fit` run (train + validation + callbacks)."""
    run = workdir / f"run_{model}"
    command = [str(Path(sys.executable).parent / "dltrain"), "fit", *COMMON, *MODELS[model],
               f"trainer.max_epochs={epochs}", f"hydra.run.dir={run}"]  # fmt: skip
    subprocess.run(command, check=True, capture_output=True, cwd=workdir)
    with (run / "metrics.csv").open() as file:
        return [float(row["epoch_seconds"]) for row in csv.DictReader(file)]


def plain_epoch_seconds(model: str, epochs: int) -> list[float]:
    """Epoch wall times of a hand-written loop over the same data and net."""
    from omegaconf import OmegaConf

    from dltrain.data.synthetic import SyntheticDataModule
    from dltrain.models.cnn import CNN
    from dltrain.models.mlp import MLP

    data = SyntheticDataModule(num_samples=50000, shape=[1, 28, 28], num_classes=10, batch_size=128)
    data.setup()
    (x, y), (xv, yv) = data.splits["train"], data.splits["val"]
    x, xv = (x - data.mean) / data.std, (xv - data.mean) / data.std
    torch.manual_seed(0)
    if model == "mlp":
        net = MLP((1, 28, 28), 10, hidden=[512, 256], dropout=0.0, batchnorm=False)
    else:
        cnn = OmegaConf.load(Path(__file__).parents[1] / "configs/model/cnn.yaml")
        net = CNN((1, 28, 28), 10, channels=list(cnn.channels), kernel_size=cnn.kernel_size,
                  batchnorm=cnn.batchnorm, dropout=0.1, pool=cnn.pool)  # fmt: skip
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    times = []
    for _ in range(epochs):
        started = time.perf_counter()
        net.train()
        order = torch.randperm(len(y))
        for i in range(0, len(y) - 127, 128):
            index = order[i : i + 128]
            loss = loss_fn(net(x[index]), y[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        net.eval()
        with torch.no_grad():
            for i in range(0, len(yv), 128):
                net(xv[i : i + 128]).argmax(1)
        times.append(time.perf_counter() - started)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["mlp", "cnn"], choices=list(MODELS))
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; 50000 samples [1,28,28], batch 128"
    )
    with tempfile.TemporaryDirectory() as workdir:
        for model in args.models:
            plain, ours = [], []
            for _ in range(args.rounds):
                plain += plain_epoch_seconds(model, args.epochs)[1:]
                ours += dltrain_epoch_seconds(model, args.epochs, Path(workdir))[1:]
            a, b = min(plain), min(ours)
            target = 1.3 if model == "mlp" else 1.05
            verdict = "ok" if b / a <= target else "ABOVE TARGET"
            print(f"{model}: plain loop {a:.3f} s/epoch, dltrain fit {b:.3f} s/epoch,"
                  f" ratio {b / a:.3f} (target <= {target}: {verdict})")  # fmt: skip


if __name__ == "__main__":
    main()
