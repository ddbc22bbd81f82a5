"""Augmentation, schedules, class weights, resampling and the sequence/residual nets."""

import functools
from types import SimpleNamespace

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from dltrain.augment import build_augmentation
from dltrain.callbacks import BestCheckpoint
from dltrain.data.base import WeightedEpochSampler, keep_fraction_of_classes
from dltrain.errors import ConfigError
from dltrain.models.mlp import MLP
from dltrain.models.resnet import ResNet
from dltrain.models.rnn import RNN
from dltrain.module import Learner
from dltrain.schedules import make_scheduler
from dltrain.tasks.build import class_weights


def test_augmentation_keeps_shapes_and_labels_and_changes_pixels():
    augment = build_augmentation(
        (3, 12, 12), rotation=20, translate=0.1, scale=[0.9, 1.1], hflip=0.5
    )
    x = torch.randn(16, 3, 12, 12)
    assert augment(x).shape == x.shape and not torch.equal(augment(x), x)
    assert build_augmentation((3, 12, 12)) is None


def test_augmentation_applies_in_training_only():
    net = MLP((1, 6, 6), 3, hidden=[4])
    module = Learner(net, 3, optimizer=functools.partial(torch.optim.SGD, lr=0.1),
                        augmentation=build_augmentation((1, 6, 6), rotation=30, translate=0.2))  # fmt: skip
    batch = (torch.randn(8, 1, 6, 6), torch.arange(8) % 3)
    module._trainer = SimpleNamespace(training=True)
    x, y = module.on_after_batch_transfer(batch, 0)
    assert x.shape == batch[0].shape and torch.equal(y, batch[1]) and not torch.equal(x, batch[0])
    module._trainer = SimpleNamespace(training=False)
    x, y = module.on_after_batch_transfer(batch, 0)
    assert torch.equal(x, batch[0])


def lrs(scheduler, optimizer, steps):
    seen = []
    for _ in range(steps):
        seen.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return seen


def test_schedule_receives_the_run_length_after_warmup():
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    factory = functools.partial(torch.optim.lr_scheduler.CosineAnnealingLR)
    scheduler = make_scheduler(
        optimizer, total=12, factory=factory, total_steps_arg="T_max", warmup=2
    )
    seen = lrs(scheduler, optimizer, 12)
    assert seen[0] == pytest.approx(0.1) and seen[1] < seen[2] == pytest.approx(1.0)
    assert seen[-1] < 0.05  # annealed to ~0 by the end of the 10 cosine steps


def test_onecycle_gets_total_steps():
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    factory = functools.partial(torch.optim.lr_scheduler.OneCycleLR, max_lr=1.0)
    scheduler = make_scheduler(optimizer, total=20, factory=factory, total_steps_arg="total_steps")
    assert scheduler.total_steps == 20


def test_balanced_class_weights_follow_scikit_learn():
    counts = torch.tensor([10, 30, 60])
    weights = class_weights("balanced", counts)
    assert torch.allclose(weights, torch.tensor([100 / 30, 100 / 90, 100 / 180]))
    assert class_weights(None, counts) is None
    assert torch.equal(class_weights([1, 2, 3], counts), torch.tensor([1.0, 2.0, 3.0]))
    with pytest.raises(ConfigError, match="3 classes"):
        class_weights([1, 2], counts)


def test_class_weights_reach_the_loss():
    weights = torch.tensor([1.0, 5.0, 1.0])
    module = Learner(MLP((4,), 3, hidden=[4]), 3, optimizer=torch.optim.SGD, class_weights=weights)
    assert torch.equal(module.criterion.weight, weights)


def test_weighted_sampler_draws_every_class_about_equally():
    labels = torch.tensor([0] * 900 + [1] * 90 + [2] * 10)
    sampler = WeightedEpochSampler(labels, seed=0)
    drawn = torch.bincount(labels[sampler.indices()], minlength=3).float() / len(labels)
    assert torch.allclose(drawn, torch.full((3,), 1 / 3), atol=0.05)


def test_imbalance_keeps_a_fraction_of_the_listed_classes():
    y = torch.arange(10).repeat_interleave(50)
    kept = keep_fraction_of_classes(torch.arange(500), y, classes=[0, 1], keep=0.1, seed=0)
    counts = torch.bincount(y[kept], minlength=10)
    assert counts[:2].tolist() == [5, 5] and counts[2:].eq(50).all()


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_rnn_classifies_sequences(cell, bidirectional):
    net = RNN((8, 5), 4, cell=cell, hidden=16, layers=2, bidirectional=bidirectional, dropout=0.1)
    assert net(torch.randn(3, 8, 5)).shape == (3, 4)
    with pytest.raises(ConfigError, match=r"sequences \[T, F\]"):
        RNN((1, 8, 8), 4)


def test_resnet_depth_and_width():
    net = ResNet((3, 32, 32), 10, depth=8, width=8)
    assert net(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    assert sum(1 for m in net.modules() if m.__class__.__name__ == "BasicBlock") == 3
    with pytest.raises(ConfigError, match="6n"):
        ResNet((3, 32, 32), 10, depth=9)


def test_lightnings_own_sigterm_stop_still_saves_and_exits_143(tmp_path):
    # Lightning's SIGTERM handler runs before ours and can stop the loop before our check.
    import lightning as L
    from lightning.pytorch.demos.boring_classes import BoringModel
    from lightning.pytorch.utilities.exceptions import SIGTERMException

    from dltrain.callbacks import SaveOnInterrupt
    from dltrain.errors import Interrupted

    class StoppedBySigterm(BoringModel):
        def training_step(self, batch, batch_idx):
            if batch_idx == 2:
                raise SIGTERMException
            return super().training_step(batch, batch_idx)

    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    trainer = L.Trainer(max_epochs=1, callbacks=[SaveOnInterrupt(str(last))], logger=False,
                        enable_checkpointing=False, enable_progress_bar=False,
                        default_root_dir=tmp_path)  # fmt: skip
    with pytest.raises(Interrupted) as stopped:
        trainer.fit(StoppedBySigterm())
    assert stopped.value.exit_code == 143 and stopped.value.run_dir == str(tmp_path / "run")
    assert torch.load(last, weights_only=False)["global_step"] == 2


class OneWeight(L.LightningModule):
    """One weight trained towards 1; `figures(epoch)` gives what validation logs."""

    def __init__(self, figures=None):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))
        self.figures = figures

    def training_step(self, batch, batch_idx):
        return (self.w - 1).pow(2).sum()

    def validation_step(self, batch, batch_idx):
        self.log_dict(self.figures(self.current_epoch))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def fit_three_epochs(module, folder, checkpoint_class, **checkpoint_options):
    """Three epochs of `module` with a checkpoint callback on val/acc into `folder`."""
    from dltrain.checkpoints import load_checkpoint

    data = torch.utils.data.DataLoader(torch.zeros(4, 1), batch_size=2)
    checkpoint = checkpoint_class(dirpath=folder, filename="best", monitor="val/acc", mode="max",
                                  **checkpoint_options)  # fmt: skip
    trainer = L.Trainer(max_epochs=3, callbacks=[checkpoint], logger=False,
                        enable_progress_bar=False, enable_model_summary=False)  # fmt: skip
    trainer.fit(module, data, data)
    return lambda name: load_checkpoint(folder / name)["epoch"]


def test_a_tie_on_the_monitored_metric_keeps_the_epoch_with_the_lower_val_loss(tmp_path):
    def saturated(epoch):  # val/acc is 1.0 from the first epoch on; val/loss keeps falling
        return {"val/acc": 1.0, "val/loss": 1.0 / (epoch + 1)}

    for kind, expected in ((BestCheckpoint, 2), (ModelCheckpoint, 0)):
        epoch_of = fit_three_epochs(OneWeight(saturated), tmp_path / kind.__name__, kind)
        assert epoch_of("best.ckpt") == expected, kind.__name__


def test_last_checkpoint_is_the_latest_epoch_even_when_the_best_is_older(tmp_path):
    """Lightning 2.6 writes last.ckpt only in epochs that improve; resume needs the latest."""

    def worsening(epoch):  # the best val/acc is the first epoch's
        return {"val/acc": 1.0 / (epoch + 1), "val/loss": 1.0}

    for kind, expected_last in ((BestCheckpoint, 2), (ModelCheckpoint, 0)):
        epoch_of = fit_three_epochs(OneWeight(worsening), tmp_path / kind.__name__, kind,
                                    save_last=True)  # fmt: skip
        assert epoch_of("best.ckpt") == 0, kind.__name__
        assert epoch_of("last.ckpt") == expected_last, kind.__name__


def test_last_checkpoint_links_to_a_best_one_written_at_the_same_step(tmp_path):
    """An improving epoch writes best.ckpt once; last.ckpt is a hard link to it. The next
    epoch that does not improve gives last.ckpt its own file and leaves best.ckpt as it was."""

    def improves_then_worsens(epoch):
        return {"val/acc": [0.5, 0.9, 0.1][epoch], "val/loss": 1.0}

    folder = tmp_path / "checkpoints"
    inodes = []

    def record():
        inodes.append({name: (folder / name).stat().st_ino for name in ("best.ckpt", "last.ckpt")})

    class Inodes(L.Callback):
        def on_train_epoch_start(self, trainer, pl_module):  # the files of the epoch before
            if trainer.current_epoch:
                record()

    from dltrain.checkpoints import load_checkpoint

    checkpoint = BestCheckpoint(dirpath=folder, filename="best", monitor="val/acc", mode="max",
                                save_last=True)  # fmt: skip
    trainer = L.Trainer(max_epochs=3, callbacks=[checkpoint, Inodes()], logger=False,
                        enable_progress_bar=False, enable_model_summary=False)  # fmt: skip
    data = torch.utils.data.DataLoader(torch.zeros(4, 1), batch_size=2)
    trainer.fit(OneWeight(improves_then_worsens), data, data)
    record()
    assert [i["best.ckpt"] == i["last.ckpt"] for i in inodes] == [True, True, False]
    assert inodes[2]["best.ckpt"] == inodes[1]["best.ckpt"]
    best, last = load_checkpoint(folder / "best.ckpt"), load_checkpoint(folder / "last.ckpt")
    assert (best["epoch"], last["epoch"]) == (1, 2)
    assert not any(p.name.endswith(".partial") for p in folder.iterdir())


def test_a_checkpoint_write_that_fails_midway_leaves_the_previous_one_whole(tmp_path, monkeypatch):
    import errno

    from dltrain.callbacks import AtomicCheckpointIO
    from dltrain.checkpoints import load_checkpoint

    writer, target = AtomicCheckpointIO(), tmp_path / "last.ckpt"
    writer.save_checkpoint({"epoch": 1, "state_dict": {"w": torch.ones(3)}}, target)
    before = target.read_bytes()

    def half_written(checkpoint, path, *args, **kwargs):
        with open(path, "wb") as file:  # the first bytes reach the disk, then it is full
            file.write(before[: len(before) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", half_written)
    with pytest.raises(OSError, match="No space left"):
        writer.save_checkpoint({"epoch": 2, "state_dict": {"w": torch.zeros(3)}}, target)
    assert target.read_bytes() == before and load_checkpoint(target)["epoch"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]  # no partial file left


def test_epoch_seconds_include_the_checkpoint_writes(tmp_path):
    import time

    from dltrain.callbacks import EpochHistory

    class SlowCheckpoint(ModelCheckpoint):
        def _save_checkpoint(self, trainer, filepath):
            time.sleep(0.3)  # a slow disk
            super()._save_checkpoint(trainer, filepath)

    history = EpochHistory(str(tmp_path / "metrics.csv"))
    trainer = L.Trainer(max_epochs=2, logger=False, enable_progress_bar=False, enable_model_summary=False,
                        callbacks=[history, SlowCheckpoint(dirpath=tmp_path, save_last=True)])  # fmt: skip
    trainer.fit(OneWeight(), torch.utils.data.DataLoader(torch.zeros(4, 1), batch_size=2))
    assert [row["epoch_seconds"] >= 0.3 for row in history.rows] == [True, True]
    assert (tmp_path / "metrics.csv").read_text().count("\n") == 3


def test_callbacks_without_a_batch_hook_are_not_called_for_it_but_overrides_are():
    from lightning.pytorch.demos.boring_classes import BoringModel

    from dltrain.callbacks import BATCH_HOOKS, EpochHistory, skip_unused_batch_hooks

    calls = []

    @skip_unused_batch_hooks
    class AfterBackward(L.Callback):
        def on_after_backward(self, trainer, pl_module):
            calls.append(trainer.global_step)

    skipped = [name for name in BATCH_HOOKS if getattr(AfterBackward, name) is None]
    assert "on_after_backward" not in skipped and len(skipped) == len(BATCH_HOOKS) - 1
    assert all(getattr(EpochHistory, name) is None for name in BATCH_HOOKS)
    trainer = L.Trainer(max_steps=3, callbacks=[AfterBackward()], logger=False,
                        enable_progress_bar=False, enable_model_summary=False,
                        enable_checkpointing=False, limit_val_batches=0)  # fmt: skip
    trainer.fit(BoringModel())
    assert calls == [0, 1, 2]


def test_a_subclass_of_the_best_checkpoint_keeps_its_own_batch_hook():
    calls = []

    class EveryBatch(BestCheckpoint):
        def on_train_batch_end(self, trainer, pl_module, *args):
            calls.append(trainer.global_step)

    assert BestCheckpoint(monitor="val/acc").on_train_batch_end is None
    assert EveryBatch(monitor="val/acc").on_train_batch_end is not None
