"""Constructed runs that must each end with their diagnosis, through the real command."""

import json

import pytest

CASES = {
    "overfitting": ["data=synthetic", "data.num_samples=400", "data.noise=3", "model=mlp",
                    "model.hidden=[512,512]", "regularization=none", "sched=none", "trainer.max_epochs=20"],
    "underfitting": ["model=mlp", "model.hidden=[2]", "model.batchnorm=false", "regularization=strong",
                     "trainer.max_epochs=12"],
    "too_few_steps": ["model=mlp", "data.batch_size=512", "data.min_batches_per_epoch=1",
                      "trainer.max_epochs=8"],
    "below_baseline": ["model=mlp", "model.hidden=[8]", "regularization=none", "trainer.max_epochs=20"],
    "lr_too_high": ["model=mlp", "optim=sgd", "optim.lr=3", "sched=none", "regularization=none",
                    "trainer.max_epochs=6"],
    "imbalance_hurting": ["experiment=digits_imbalanced", "loss.class_weights=null",
                          "data.imbalance.keep=0.05", "trainer.max_epochs=15"],
    "healthy": ["trainer.max_epochs=15"],
}  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("expected", list(CASES))
def test_constructed_run_gets_its_diagnosis(dltrain, expected):
    result = dltrain("fit", *CASES[expected], "hydra.run.dir=run")
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((dltrain.cwd / "run" / "metrics.json").read_text())
    found = [finding["code"] for finding in metrics["diagnosis"]]
    assert found[0] == expected, metrics["diagnosis"]
    assert all(finding["message"] for finding in metrics["diagnosis"])
    assert "diagnosis" in result.stdout and expected in result.stdout
    profile = json.loads((dltrain.cwd / "run" / "data_profile.json").read_text())
    assert set(profile["samples"]) == {"train", "val", "test"}
    if expected == "imbalance_hurting":
        assert profile["imbalance_ratio"] > 10 and "loss.class_weights=balanced" in result.stdout
