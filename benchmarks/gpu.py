"""Training throughput on one CUDA GPU: `dltrain fit trainer=gpu` beside the fastest plain
PyTorch loop on the same GPU, in the same run.

    python benchmarks/gpu.py [--models mlp cnn] [--epochs 11] [--batch-size 512] [--rounds 2]

Data: synthetic [1, 28, 28] images, 100,000 samples (70,000 for training), dltrain's split;
nets as in benchmarks/overhead.py (dropout 0, regularization=none on dltrain's side).
Arms, each a fresh process timed from outside ((an --epochs run - a 1-epoch run) /
(epochs - 1), so start-up, compilation and the final test cancel out; every arm runs
once untimed first, so no arm pays for reading the CUDA libraries from disk):

  plain           the data on the GPU once, index slicing there, bf16 autocast, fused Adam,
                  set_to_none, channels-last for the CNN, one validation pass per epoch
  plain+compile   the same with torch.compile(net)
  lightning       the plain loop as a bare LightningModule (bf16-mixed, the data on the GPU)
  dltrain         dltrain fit trainer=gpu (bf16-mixed; data.on_device=auto puts the data
                  on the GPU), every default on: progress bar, metrics, checkpoints
  dltrain host    the same with data.on_device=false: batches copied from host memory
  dltrain+compile trainer=gpu speed.compile=true

A compiled arm's 1-epoch run varies by its compile time (seconds): give it more epochs
(--epochs 41) when its difference is within that noise.
Printed: training samples per second of each arm, and its ratio to the plain loop; the
cold compile cost (the 1-epoch run with compile minus without). Without CUDA it says so
and exits 0.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from overhead import COMMON, MODELS, build, lightning_loop, seconds  # noqa: E402

NUM_SAMPLES = 100_000
TRAIN_SAMPLES = 70_000  # dltrain's split: 15% validation, 15% test
ARMS = ("plain", "lightning", "dltrain", "dltrain host", "plain+compile", "dltrain+compile")


def plain_loop(model: str, epochs: int, batch_size: int, compile_net: bool) -> None:
    """The fastest plain GPU loop: everything on the device, bf16 autocast, fused Adam."""
    import torch

    net, x, y, xv, yv = build(model, NUM_SAMPLES)
    device = torch.device("cuda")
    net = net.to(device)
    x, y, xv, yv = (t.to(device) for t in (x, y, xv, yv))
    step_net = torch.compile(net) if compile_net else net
    optimizer = torch.optim.Adam(net.parameters(), lr=3e-3, fused=True)
    loss_fn = torch.nn.CrossEntropyLoss()
    for _ in range(epochs):
        net.train()
        order = torch.randperm(len(y), device=device)
        for i in range(0, len(y) - batch_size + 1, batch_size):
            index = order[i : i + batch_size]
            with torch.autocast("cuda", dtype=torch.bfloat16):
                loss = loss_fn(step_net(x[index]), y[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        net.eval()
        with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16):
            correct = sum(
                (step_net(xv[i : i + batch_size]).argmax(1) == yv[i : i + batch_size]).sum()
                for i in range(0, len(yv), batch_size)
            )
        float(correct)  # waits for the GPU, as dltrain's epoch-end metrics do
    torch.cuda.synchronize()


def arm_command(arm: str, model: str, epochs: int, batch_size: int, workdir: Path) -> list[str]:
    if arm.startswith("plain") or arm == "lightning":
        return [sys.executable, __file__, "--worker", arm, "--models", model,
                "--epochs", str(epochs), "--batch-size", str(batch_size)]  # fmt: skip
    common = [o for o in COMMON if not o.startswith(("data.num_samples", "data.batch_size"))]
    extra = {"dltrain": [], "dltrain host": ["data.on_device=false"],
             "dltrain+compile": ["speed.compile=true"]}[arm]  # fmt: skip
    run_dir = workdir / f"{arm.replace(' ', '_').replace('+', '_')}_{epochs}"
    return [str(Path(sys.executable).parent / "dltrain"), "fit", "trainer=gpu", *common,
            *MODELS[model], f"data.num_samples={NUM_SAMPLES}", f"data.batch_size={batch_size}",
            *extra, f"trainer.max_epochs={epochs}", f"hydra.run.dir={run_dir}"]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["mlp", "cnn"], choices=list(MODELS))
    parser.add_argument("--epochs", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--arms", nargs="+", default=list(ARMS), choices=ARMS)
    parser.add_argument("--worker", choices=["plain", "plain+compile", "lightning"],
                        help=argparse.SUPPRESS)  # fmt: skip
    args = parser.parse_args()
    if args.worker == "lightning":
        lightning_loop(args.models[0], args.epochs, args.batch_size, NUM_SAMPLES, "gpu",
                       "bf16-mixed")  # fmt: skip
        return
    if args.worker:
        plain_loop(args.models[0], args.epochs, args.batch_size, args.worker == "plain+compile")
        return
    import torch

    if not torch.cuda.is_available():
        print("no CUDA GPU visible: nothing to measure (run this on a GPU machine).")
        return
    print(f"{torch.cuda.get_device_name()}, torch {torch.__version__}; {NUM_SAMPLES} samples"
          f" [1,28,28], batch {args.batch_size}; per-epoch time from {args.epochs}- minus"
          " 1-epoch runs")  # fmt: skip
    with tempfile.TemporaryDirectory() as folder:
        workdir = Path(folder)
        for model in args.models:
            per_epoch: dict[str, list[float]] = {arm: [] for arm in args.arms}
            cold: dict[str, list[float]] = {arm: [] for arm in args.arms}
            first: dict[str, float] = {}
            for arm in args.arms:  # warm-up: libraries read from disk, kernels cached
                first[arm] = seconds(arm_command(arm, model, 1, args.batch_size, workdir), workdir)
            for _ in range(args.rounds):
                for arm in args.arms:
                    cmd = [arm_command(arm, model, n, args.batch_size, workdir)
                           for n in (args.epochs, 1)]  # fmt: skip
                    long, short = seconds(cmd[0], workdir), seconds(cmd[1], workdir)
                    per_epoch[arm].append((long - short) / (args.epochs - 1))
                    cold[arm].append(short)
            median = {arm: statistics.median(t) for arm, t in per_epoch.items()}
            for arm in args.arms:
                if median[arm] <= 0:  # compile times vary more than the epochs took
                    print(f"{model} {arm:16s} n/a: timing noise; give more --epochs")
                    continue
                line = f"{model} {arm:16s} {TRAIN_SAMPLES / median[arm]:>10,.0f} samples/s"
                if "plain" in median:
                    line += f"  ({median[arm] / median['plain']:.2f}x the plain loop's time)"
                print(line)
            for base, compiled in (("plain", "plain+compile"), ("dltrain", "dltrain+compile")):
                if base in cold and compiled in cold:
                    # The first compile fills inductor's cache; later processes reuse it.
                    fresh = first[compiled] - statistics.median(cold[base])
                    cached = statistics.median(cold[compiled]) - statistics.median(cold[base])
                    print(f"{model} compile cost ({compiled}): {fresh:.1f} s the first time,"
                          f" {cached:.1f} s with inductor's cache")  # fmt: skip


if __name__ == "__main__":
    started = time.perf_counter()
    main()
    print(f"({time.perf_counter() - started:.0f} s)")
