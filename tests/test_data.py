"""The in-memory data pieces: splits, normalization, batches, the digits module."""

import torch

from dltrain.data.base import EpochPermutation, TensorBatches, normalization_stats, stratified_split
from dltrain.data.digits import DigitsDataModule
from dltrain.module import Normalize


def test_stratified_split_is_disjoint_complete_and_keeps_class_proportions():
    y = torch.arange(10).repeat_interleave(40)  # 10 balanced classes
    split = stratified_split(y, val_fraction=0.2, test_fraction=0.2, seed=0)
    all_ids = torch.cat(list(split.values()))
    assert len(all_ids) == len(y) and len(set(all_ids.tolist())) == len(y)
    for ids in split.values():
        counts = torch.bincount(y[ids], minlength=10)
        assert counts.max() - counts.min() <= 1
    assert split["test"].tolist() == stratified_split(y, 0.2, 0.2, seed=0)["test"].tolist()
    assert split["test"].tolist() != stratified_split(y, 0.2, 0.2, seed=1)["test"].tolist()


def test_normalization_stats_are_per_channel_for_images_and_per_feature_otherwise():
    images = torch.randn(50, 3, 4, 4) * torch.tensor([1.0, 2.0, 3.0]).view(1, 3, 1, 1) + 5
    mean, std = normalization_stats(images)
    assert mean.shape == (3, 1, 1) and torch.allclose(mean.flatten(), images.mean((0, 2, 3)))
    table = torch.randn(50, 7)
    mean, std = normalization_stats(table)
    assert mean.shape == (7,) and torch.allclose(mean, table.mean(0))
    sequences = torch.randn(50, 8, 6)
    assert normalization_stats(sequences)[0].shape == (1, 6)


def test_tensor_batches_slice_every_sample_once_per_epoch_in_a_seeded_order():
    x, y = torch.arange(10).float().unsqueeze(1), torch.arange(10)
    sampler = EpochPermutation(10, seed=3)
    batches = TensorBatches(x, y, batch_size=4, sampler=sampler, drop_last=True)
    assert len(batches) == 2
    first = torch.cat([b[1] for b in batches])
    assert len(first) == 8 and len(set(first.tolist())) == 8
    sampler.set_epoch(1)
    second = torch.cat([b[1] for b in batches])
    assert first.tolist() != second.tolist()
    sampler.set_epoch(0)
    assert torch.cat([b[1] for b in batches]).tolist() == first.tolist()
    plain = TensorBatches(x, y, batch_size=4)
    assert len(plain) == 3 and torch.cat([b[1] for b in plain]).tolist() == list(range(10))


def test_digits_module_keeps_training_statistics_only():
    data = DigitsDataModule(batch_size=32, val_fraction=0.15, test_fraction=0.15, seed=0)
    data.setup("fit")
    assert data.input_shape == (1, 8, 8) and data.num_classes == 10
    assert data.class_names == [str(d) for d in range(10)]
    sizes = {name: len(split[1]) for name, split in data.splits.items()}
    assert sum(sizes.values()) == 1797 and sizes["test"] == 270
    train_x, test_x = data.splits["train"][0], data.splits["test"][0]
    assert train_x.max() == 16  # batches stay in the raw scale; the model normalizes
    assert torch.allclose(data.mean, train_x.mean(), atol=1e-4)
    normalize = Normalize(data.mean, data.std)
    assert abs(normalize(train_x).mean()) < 1e-4 and abs(normalize(train_x).std() - 1) < 1e-2
    # the test split is normalized with the training statistics, not its own
    assert abs(normalize(test_x).mean()) > 1e-4
    assert set(data.state_dict()) == {"mean", "std", "class_names"}


def test_rank_shards_are_disjoint_and_equal_in_size():
    from dltrain.data.base import RankShard

    base = EpochPermutation(11, seed=0)
    shards = [RankShard(base, rank, 2) for rank in range(2)]
    first, second = (set(s.indices().tolist()) for s in shards)
    assert len(first) == len(second) == 5 and not first & second


def test_a_small_split_makes_several_passes_per_epoch_each_a_permutation():
    sampler = EpochPermutation(10, seed=0, passes=3)
    order = sampler.indices()
    assert len(sampler) == 30 and len(order) == 30
    for p in range(3):
        assert sorted(order[10 * p : 10 * (p + 1)].tolist()) == list(range(10))
    assert order[:10].tolist() != order[10:20].tolist()
    x, y = torch.arange(10).float().unsqueeze(1), torch.arange(10)
    assert len(TensorBatches(x, y, batch_size=4, sampler=sampler, drop_last=True)) == 7


def test_an_epoch_of_few_batches_is_stretched_to_the_minimum_and_says_so():
    data = DigitsDataModule(batch_size=512, seed=0, min_batches_per_epoch=16)
    data.setup("fit")
    assert data.passes() == 8  # 1257 samples: 2 batches of 512 per pass
    assert len(data.train_dataloader()) == 1257 * 8 // 512
    assert "each epoch makes 8 passes" in data.epoch_notes()[0]
    data.batch_size = 64  # 19 batches per pass: nothing to stretch
    assert data.passes() == 1 and data.epoch_notes() == []
    assert len(data.train_dataloader()) == 1257 // 64


def test_a_training_split_smaller_than_a_batch_trains_in_one_smaller_batch():
    data = DigitsDataModule(batch_size=4096, seed=0)
    data.setup("fit")
    assert data.batch_size == 1257 and "fewer than data.batch_size=4096" in data.notes[0]
    assert [len(b[1]) for b in data.train_dataloader()] == [1257] * 16


def _digits_learner(channels_last: bool = False, augmentation=None):
    """Digits with a small CNN Learner, as `dltrain fit` builds them, seeded."""
    import functools

    from dltrain.models.cnn import CNN
    from dltrain.module import Learner

    data = DigitsDataModule(batch_size=64)
    data.setup()
    torch.manual_seed(0)
    net = CNN((1, 8, 8), 10, channels=[4, 8], kernel_size=3, batchnorm=True, dropout=0.0)
    learner = Learner(net, 10, optimizer=functools.partial(torch.optim.Adam, lr=1e-2),
                      normalize=data.preprocess(), channels_last=channels_last,
                      augmentation=augmentation)  # fmt: skip
    return data, learner


def test_prepared_splits_give_the_batches_the_model_would_prepare_itself():
    """prepare_inputs: each split goes through the model's preparation once; its batches
    (PreparedBatch) equal the raw batches prepared one by one, channels-last kept."""
    from dltrain.data.base import PreparedBatch

    raw, learner = _digits_learner(channels_last=True)
    prepared, _ = _digits_learner(channels_last=True)
    prepared.prepare_inputs(learner.preparation_ahead())
    assert prepared.prepares(torch.device("cpu")) and not raw.prepares(torch.device("cpu"))
    for split in ("train", "val", "test"):
        ours = list(prepared.train_dataloader() if split == "train" else prepared._loader(split))
        theirs = list(raw.train_dataloader() if split == "train" else raw._loader(split))
        assert len(ours) == len(theirs) > 0
        for batch, (x, y) in zip(ours, theirs, strict=True):
            assert isinstance(batch, PreparedBatch) and not isinstance((x, y), PreparedBatch)
            assert torch.equal(batch.x, learner.prepare(x)) and torch.equal(batch.y, y)
            assert batch.x.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(raw.splits["train"][0], prepared.splits["train"][0])  # raw data kept


def test_a_fit_on_prepared_splits_gives_exactly_the_figures_of_a_fit_on_raw_batches():
    import lightning as L

    figures = []
    for prepare in (False, True):
        data, learner = _digits_learner()
        if prepare:
            data.prepare_inputs(learner.preparation_ahead())
        trainer = L.Trainer(max_epochs=2, logger=False, enable_progress_bar=False,
                            enable_model_summary=False, enable_checkpointing=False)  # fmt: skip
        trainer.fit(learner, datamodule=data)
        figures.append({k: float(v) for k, v in trainer.callback_metrics.items()})
    assert figures[0] == figures[1] and "val/acc" in figures[0]


def test_inputs_are_not_prepared_ahead_when_augmentation_needs_them_raw_or_memory_is_short(
    monkeypatch,
):
    import os

    from dltrain.augment import build_augmentation
    from dltrain.data.base import PreparedBatch

    augment = build_augmentation((1, 8, 8), hflip=0.5)
    assert _digits_learner(augmentation=augment)[1].preparation_ahead() is None
    data, learner = _digits_learner()
    data.prepare_inputs(learner.preparation_ahead())
    cpu = torch.device("cpu")
    assert data.prepares(cpu)
    size = sum(x.nbytes for x, _ in data.splits.values())
    monkeypatch.setattr(os, "sysconf", lambda name: 1 if name == "SC_PAGE_SIZE" else 3 * size)
    assert not data.prepares(cpu)  # a second copy would take over a quarter of memory
    assert not isinstance(next(iter(data.train_dataloader())), PreparedBatch)
