"""Transfer learning with timm: weights from a file, a frozen backbone, its own learning
rate, weight averaging, test-time augmentation, and the errors of each.

No download is possible here: weights are a timm model's own, saved to a file by the test.
"""

import csv

import numpy as np
import pytest
import torch

from tests.conftest import read_metrics, run_dltrain
from tests.datasets import write_image_folder

timm = pytest.importorskip("timm")
safetensors_torch = pytest.importorskip("safetensors.torch")

NAME = "test_resnet"  # timm's own tiny ResNet for tests (3-channel, 1000 classes)
PHOTOS = ["data=image_folder", "data.path=photos", "data.num_workers=0", "data.hflip=0.5"]
SMALL = ["model=timm", f"model.name={NAME}", "model.image_size=32"]


def save_weights(path, name=NAME, seed=0, **kwargs):
    """A timm model's state dict (its own 1000-class head) in a weights file."""
    torch.manual_seed(seed)
    state = timm.create_model(name, **kwargs).state_dict()
    if path.suffix == ".safetensors":
        safetensors_torch.save_file(state, str(path))
    else:
        torch.save(state, path)
    return state


def backbone_differences(state, weights):
    """Backbone tensors (weights and batch-norm buffers) of a checkpoint that differ from the file's."""
    return [k for k, v in weights.items()
            if not k.startswith("fc.") and not torch.equal(state[f"net.model.{k}"], v)]  # fmt: skip


@pytest.fixture(scope="module")
def finetuned(tmp_path_factory):
    """Two epochs with the backbone frozen, loaded from a file (photos of 24x20 pixels)."""
    cwd = tmp_path_factory.mktemp("finetuned")
    write_image_folder(cwd / "photos", per_class=12, size=(24, 20))
    weights = save_weights(cwd / "backbone.safetensors")
    result = run_dltrain("fit", *PHOTOS, *SMALL, "model.weights=backbone.safetensors",
                         "model.freeze_epochs=2", "model.backbone_lr_scale=0.1",
                         "sched=none", "trainer.max_epochs=2", "hydra.run.dir=run", cwd=cwd)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return cwd, cwd / "run", weights, result.stdout


def test_weights_from_a_file_are_reported_and_the_head_is_new(finetuned):
    _, run, weights, stdout = finetuned
    line = " ".join(stdout.split())  # rich wraps long lines
    loaded = len(weights) - 2
    assert (
        f"model.weights=backbone.safetensors: {loaded} tensors loaded, 0 missing, 0 unexpected"
        in line
    )
    assert "new head for this data: fc.bias, fc.weight" in line  # the file's (sorted) order
    state = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    assert state["net.model.fc.weight"].shape == (3, weights["fc.weight"].shape[1])
    # Pretrained weights bring the backbone's pretrained normalization, on the 0-255 scale.
    mean = timm.create_model(NAME).pretrained_cfg["mean"]
    assert torch.allclose(state["normalize.mean"].flatten(), torch.tensor(mean) * 255)


def test_a_frozen_backbone_is_the_file_exactly_then_trains_after_unfreezing(finetuned):
    cwd, run, weights, _ = finetuned
    last = run / "checkpoints" / "last.ckpt"
    frozen = torch.load(last, weights_only=True)
    assert frozen["epoch"] == 1
    assert backbone_differences(frozen["state_dict"], weights) == []
    # Resumed past freeze_epochs: everything trains, batch-norm statistics included.
    result = run_dltrain("fit", "resume=run", "trainer.max_epochs=3", cwd=cwd)
    assert result.returncode == 0, result.stderr[-3000:]
    thawed = torch.load(last, weights_only=True)
    assert thawed["epoch"] == 2
    changed = backbone_differences(thawed["state_dict"], weights)
    assert "conv1.0.weight" in changed and "bn1.running_mean" in changed


def test_the_backbone_learns_at_its_own_rate(finetuned):
    _, run, _, _ = finetuned
    with (run / "metrics.csv").open() as file:
        rows = list(csv.DictReader(file))
    assert rows and all(
        float(row["lr/backbone"]) == pytest.approx(0.1 * float(row["lr"])) for row in rows
    )
    groups = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    names = [g["name"] for g in groups["optimizer_states"][0]["param_groups"]]
    assert names == ["head", "head/no_decay", "backbone", "backbone/no_decay"]


def test_predict_export_and_flip_tta_take_the_photos_as_they_are(finetuned):
    cwd, run, _, _ = finetuned
    result = run_dltrain("predict", "run=run", "input=photos/dog", "tta=flip",
                         "hydra.run.dir=predicted", cwd=cwd)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    with (cwd / "predicted" / "predictions.csv").open() as file:
        assert len(list(csv.DictReader(file))) == 12
    tested = run_dltrain("test", "run=run", "tta=flip", "hydra.run.dir=tested", cwd=cwd)
    assert tested.returncode == 0, tested.stderr[-3000:]
    assert read_metrics(cwd / "tested")["tta"] == "flip"
    exported = run_dltrain("export", "run=run", "hydra.run.dir=exported", cwd=cwd)
    assert exported.returncode == 0, exported.stderr[-3000:]
    onnxruntime = pytest.importorskip("onnxruntime")
    from omegaconf import OmegaConf

    from dltrain.tasks.saved_run import load_model

    model = load_model(
        OmegaConf.load(run / ".hydra" / "config.yaml"), run / "checkpoints" / "best.ckpt"
    )
    session = onnxruntime.InferenceSession(str(cwd / "exported" / "model.onnx"))
    x = torch.rand(4, 3, 24, 20) * 255  # the photos' own size: the model resizes them itself
    [onnx_out] = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    with torch.no_grad():
        assert np.allclose(onnx_out, model(x).numpy(), atol=1e-4)


def test_tta_needs_data_that_may_be_flipped(tmp_path):
    result = run_dltrain("fit", "trainer=smoke", "hydra.run.dir=run", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    refused = run_dltrain("test", "run=run", "tta=flip", cwd=tmp_path)
    assert refused.returncode == 2 and "data.hflip=0" in refused.stderr


@pytest.mark.parametrize("average", ["regularization.ema=0.9", "regularization.swa=0.5"])
def test_weight_averages_are_what_is_evaluated_and_saved(tmp_path, average):
    """Grayscale digits in memory, expanded to the backbone's three channels."""
    result = run_dltrain("fit", *SMALL, "model.image_size=16", average, "trainer.max_epochs=3",
                         "hydra.run.dir=run", cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    last = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)
    averaged, raw = last["state_dict"], last["current_model_state"]
    assert any(not torch.equal(averaged[k], raw[k]) for k in averaged if k.startswith("net."))
    assert int(last["averaging_state"]["n_averaged"]) >= 2
    # `dltrain test` evaluates the checkpoint's state_dict: the same figure as the fit's.
    tested = run_dltrain("test", "run=run", "hydra.run.dir=tested", cwd=tmp_path)
    assert tested.returncode == 0, tested.stderr[-3000:]
    fitted = read_metrics(tmp_path / "run")
    assert read_metrics(tmp_path / "tested")["test/acc"] == pytest.approx(fitted["test/acc"])
    assert fitted["test/acc"] > 0.5  # the average is a working model, not the initial copy


def test_errors_exit_2_before_any_data_is_loaded(tmp_path):
    typo = run_dltrain("fit", "model=timm", "model.name=resnt18", cwd=tmp_path)
    assert typo.returncode == 2 and "Did you mean 'resnet18'" in typo.stderr
    missing = run_dltrain("fit", "model=timm", "model.weights=absent.safetensors", cwd=tmp_path)
    assert missing.returncode == 2 and "absent.safetensors: no such file" in missing.stderr


def test_a_file_of_another_shape_names_the_first_bad_key(tmp_path):
    state = save_weights(tmp_path / "ok.pth")
    state["conv1.0.weight"] = torch.zeros(5, 3, 3, 3)
    torch.save(state, tmp_path / "bad.pth")
    result = run_dltrain("fit", *SMALL, "model.weights=bad.pth", "trainer=smoke", cwd=tmp_path)
    assert result.returncode == 2
    assert "conv1.0.weight is [5, 3, 3, 3] in the file" in result.stderr
    other = save_weights(tmp_path / "other.safetensors", name="test_vit")
    assert other
    result = run_dltrain("fit", *SMALL, "model.weights=other.safetensors", "trainer=smoke",
                         cwd=tmp_path)  # fmt: skip
    assert result.returncode == 2 and "another architecture" in result.stderr


def test_a_pth_file_with_code_in_it_is_refused(tmp_path):
    import os

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'owned'}",))

    torch.save({"conv1.0.weight": Payload()}, tmp_path / "evil.pth")
    result = run_dltrain("fit", *SMALL, "model.weights=evil.pth", "trainer=smoke", cwd=tmp_path)
    assert result.returncode == 2 and "weights_only=True" in result.stderr
    assert not (tmp_path / "owned").exists()


def test_pretrained_weights_offline_say_where_they_are_looked_for(tmp_path):
    result = run_dltrain("fit", *SMALL, "model.name=resnet18", "model.pretrained=true",
                         "trainer=smoke", cwd=tmp_path,
                         env={"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")})  # fmt: skip
    assert result.returncode == 2, result.stderr[-2000:]
    assert str(tmp_path / "hf") in result.stderr and "model.weights=" in result.stderr


def test_sweeps_over_backbones_find_lr_and_torchscript(tmp_path):
    sweep = run_dltrain("fit", "-m", *SMALL, "model.image_size=16", "trainer=smoke",
                        f"model.name={NAME},test_efficientnet", "model.freeze_epochs=0,1",
                        "hydra.sweep.dir=sweep", cwd=tmp_path)  # fmt: skip
    assert sweep.returncode == 0, sweep.stderr[-3000:]
    with (tmp_path / "sweep" / "sweep_results.csv").open() as file:
        rows = list(csv.DictReader(file))
    names = {r["overrides"].split("model.name=")[1].split()[0] for r in rows}
    assert len(rows) == 4 and names == {NAME, "test_efficientnet"}
    assert all(r["status"] == "complete" for r in rows), rows
    found = run_dltrain("find-lr", *SMALL, "model.image_size=16", "lr_finder.num_training=20",
                        cwd=tmp_path)  # fmt: skip
    assert found.returncode == 0 and "optim.lr=" in found.stdout, found.stderr[-3000:]
    scripted = run_dltrain("export", "run=sweep/0", "format=torchscript", "hydra.run.dir=ts",
                           cwd=tmp_path)  # fmt: skip
    assert scripted.returncode == 0, scripted.stderr[-3000:]
    model = torch.jit.load(str(tmp_path / "ts" / "model.pt"))
    assert model(torch.rand(2, 1, 8, 8) * 16).shape == (2, 10)
