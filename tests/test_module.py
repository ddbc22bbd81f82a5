"""The LightningModule: loss, L1 penalty, weight-decay groups, metric reports."""

import functools
from types import SimpleNamespace

import torch

from dltrain.models.mlp import MLP
from dltrain.module import Learner


def make_module(**kwargs):
    torch.manual_seed(0)
    net = MLP((4,), num_classes=3, hidden=[8], batchnorm=True)
    optimizer = functools.partial(torch.optim.AdamW, lr=1e-2, weight_decay=0.1)
    return Learner(net, num_classes=3, optimizer=optimizer, **kwargs)


def test_l1_adds_exactly_its_penalty_on_weights_to_the_training_loss():
    batch = (torch.randn(6, 4), torch.tensor([0, 1, 2, 0, 1, 2]))
    plain, penalized = make_module(), make_module(l1=0.01)
    plain.eval()
    penalized.eval()
    weights = sum(w.abs().sum() for w in penalized.weights())
    difference = penalized.training_step(batch, 0) - plain.training_step(batch, 0)
    assert torch.isclose(difference, 0.01 * weights)
    assert all(w.ndim > 1 for w in penalized.weights())


def test_weight_decay_skips_biases_and_norm_parameters():
    module = make_module()
    optimizer = module.configure_optimizers()
    decayed, exempt = optimizer.param_groups
    assert decayed["weight_decay"] == 0.1 and exempt["weight_decay"] == 0.0
    assert all(p.ndim > 1 for p in decayed["params"])
    assert all(p.ndim == 1 for p in exempt["params"]) and exempt["params"]


def test_scheduler_gets_the_run_length_in_its_interval_and_reaches_lightning():
    def step_lr(optimizer, total):
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=total)

    for interval, expected in (("step", 120), ("epoch", 6)):
        module = make_module(scheduler=step_lr, scheduler_interval=interval)
        module._trainer = SimpleNamespace(estimated_stepping_batches=120, max_epochs=6)
        config = module.configure_optimizers()
        assert config["lr_scheduler"]["interval"] == interval
        assert config["lr_scheduler"]["scheduler"].step_size == expected


def test_test_report_holds_confusion_matrix_and_per_class_scores():
    module = make_module()
    module.log_dict = lambda *args, **kwargs: None  # no Trainer attached
    y = torch.tensor([0, 1, 2, 2])
    logits = torch.nn.functional.one_hot(torch.tensor([0, 1, 2, 1]), 3).float()
    module._net_outputs = lambda x, prepared=False: (
        logits
    )  # the net's outputs, before the problem's head
    module.test_step((torch.zeros(4, 4), y), 0)
    module.on_test_epoch_end()
    assert module.test_report["confusion_matrix"] == [[1, 0, 0], [0, 1, 0], [0, 1, 1]]
    assert module.test_report["per_class"]["recall"] == [1.0, 1.0, 0.5]


def test_logged_figures_stay_in_their_range():
    from dltrain.problems import Classification, Regression

    rounded = {"f1": torch.tensor(1.0000001), "acc": torch.tensor(-1e-8)}
    assert {k: float(v) for k, v in Classification().bounded(rounded).items()} == {
        "f1": 1.0,
        "acc": 0.0,
    }
    figures = Regression().bounded({"r2": torch.tensor(1.0000001), "rmse": torch.tensor(-1e-9)})
    assert float(figures["r2"]) == 1.0 and float(figures["rmse"]) == 0.0
    # The module logs what the problem bounds: a metric computing 1.0000001 is logged as 1.
    module = make_module()
    logged = {}
    module.log_dict = lambda values, **kwargs: logged.update(values)
    module.metrics["val_scores"].compute = lambda: {"val/f1": torch.tensor(1.0000001)}
    module.metrics["val_loss"].update(torch.tensor(0.5))
    module._log_epoch("val")
    assert float(logged["val/f1"]) == 1.0


def test_flip_tta_averages_the_outputs_of_the_image_and_its_mirror():
    from dltrain.models.cnn import CNN

    torch.manual_seed(0)
    module = Learner(CNN((1, 6, 6), 3), num_classes=3, optimizer=None).eval()
    x = torch.randn(4, 1, 6, 6)
    with torch.no_grad():
        plain, mirrored = module(x), module(x.flip(-1))
        module.tta = "flip"
        assert torch.allclose(module(x), (plain + mirrored) / 2, atol=1e-6)
        assert not torch.allclose(plain, mirrored)
        module.train()  # training batches are never averaged
        assert torch.allclose(module._net_outputs(x), module.net(x))


def test_outputs_wait_for_one_update_unless_cuda_graphs_would_overwrite_them():
    module = make_module()
    module.log_dict = lambda *args, **kwargs: None  # no Trainer attached
    batch = (torch.randn(8, 4), torch.tensor([0, 1, 2, 0, 1, 2, 0, 1]))
    for _ in range(3):
        module.validation_step(batch, 0)
    assert len(module.pending["val"]) == 3  # one metric update for the three, at epoch end
    module.on_validation_epoch_end()
    assert module.pending["val"] == []
    module.compile_net(mode="reduce-overhead")  # compiles lazily, at the first call
    assert module.pending_values == 0
