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
