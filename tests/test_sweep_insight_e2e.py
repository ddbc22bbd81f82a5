"""Multi-objective sweeps, conditional search spaces, enqueued trials, seeds inside the
search, and the report's importances and optuna plots (issue 17), via the real command."""

from __future__ import annotations

import csv
from pathlib import Path

import optuna
import pytest
import yaml

from dltrain.sweep.insight import FANOVA_MIN_TRIALS, dominates, pareto_front, study_insight
from dltrain.sweep.optuna_search import holds, search_space
from dltrain.sweep.storage import default_storage, open_storage
from tests.conftest import REPO, read_metrics, run_dltrain

ENQUEUED = {"model": "cnn", "model.channels": "[32,64]", "optim": "adam", "optim.lr": 0.003}


def study_of(sweep: Path, name: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=open_storage(default_storage(sweep)))


def overrides(run: Path) -> dict[str, str]:
    lines = yaml.safe_load((run / ".hydra" / "overrides.yaml").read_text())
    return dict(line.split("=", 1) for line in lines)


@pytest.fixture(scope="module")
def pareto(tmp_path_factory):
    """sweep=pareto (NSGA-II, val/acc vs latency, conditional params, an enqueued default):
    7 smoke trials, shared by the tests below."""
    cwd = tmp_path_factory.mktemp("pareto")
    result = run_dltrain("fit", "-m", "sweep=pareto", "hydra.sweeper.n_trials=7",
                         "trainer=smoke", "hydra.sweep.dir=s", cwd=cwd)  # fmt: skip
    assert result.returncode == 0, result.stderr
    return cwd / "s", result.stdout


def test_two_objectives_give_a_pareto_front_and_a_config_per_front_trial(pareto):
    sweep, stdout = pareto
    study = study_of(sweep, "pareto")
    assert [d.name for d in study.directions] == ["MAXIMIZE", "MINIMIZE"]
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(complete) == 7
    with (sweep / "sweep_results.csv").open() as file:
        rows = list(csv.DictReader(file))
    front = [r for r in rows if r["pareto"] == "True"]
    values = {r["number"]: [float(r["val/acc"]), float(r["cost/latency_ms"])] for r in rows}
    # The study got what each run measured: its best val/acc and its costs.json latency.
    for trial in complete:
        run = sweep / str(trial.number)
        latency = yaml.safe_load((run / "costs.json").read_text())["cost/latency_ms"]
        assert trial.values == pytest.approx([read_metrics(run)["val/acc"], latency])
    # Front trials do not dominate each other; every other trial is dominated by one.
    for a in front:
        assert not any(dominates(values[b["number"]], values[a["number"]], [True, False])
                       for b in front)  # fmt: skip
    for r in rows:
        if r["pareto"] != "True":
            assert any(dominates(values[f["number"]], values[r["number"]], [True, False])
                       for f in front)  # fmt: skip
    configs = sorted(p.name for p in (sweep / "best_configs").glob("*.yaml"))
    assert configs == sorted(f"trial_{r['number']}.yaml" for r in front)
    assert "Pareto front (val/acc vs cost/latency_ms)" in stdout
    assert (sweep / "plots" / "pareto_front.png").stat().st_size > 10_000
    # A front trial's config re-runs as a plain fit with that trial's values.
    chosen = front[0]["number"]
    rerun = run_dltrain("fit", "--config-dir", str(sweep / "best_configs"), "--config-name",
                        f"trial_{chosen}", "hydra.run.dir=rerun", cwd=sweep.parent)  # fmt: skip
    assert rerun.returncode == 0, rerun.stderr
    again = yaml.safe_load((sweep.parent / "rerun" / "config.yaml").read_text())
    original = yaml.safe_load((sweep / chosen / "config.yaml").read_text())
    assert again["model"] == original["model"] and again["optim"] == original["optim"]


def test_conditional_parameters_exist_only_where_their_condition_holds(pareto):
    sweep, _ = pareto
    study = study_of(sweep, "pareto")
    models = set()
    for trial in study.trials:
        params, given = trial.params, overrides(sweep / str(trial.number))
        models.add(params["model"])
        for key, condition in (("model.channels", params["model"] == "cnn"),
                               ("model.hidden", params["model"] == "mlp"),
                               ("optim.momentum", params["optim"] == "sgd")):  # fmt: skip
            assert (key in params) == condition, (trial.number, params)
            assert (key in given) == condition, (trial.number, given)
            assert (key in trial.distributions) == condition
    assert models == {"cnn", "mlp"}  # both branches were searched


def test_enqueued_configuration_runs_first_with_exactly_its_values(pareto):
    sweep, _ = pareto
    first = study_of(sweep, "pareto").trials[0]
    assert first.params == ENQUEUED
    given = overrides(sweep / "0")
    assert {k: given[k] for k in ENQUEUED} == {k: str(v) for k, v in ENQUEUED.items()}


def test_report_writes_importances_and_optunas_plots(pareto):
    sweep, _ = pareto
    for name in ("param_importances.png", "parallel_coordinate.png", "contour.png"):
        assert (sweep / "plots" / name).stat().st_size > 10_000, name
    importances = yaml.safe_load((sweep / "importances.json").read_text())
    assert set(importances) == {"val/acc", "cost/latency_ms"}
    found = importances["val/acc"]
    assert found["method"] == "mean decrease in impurity"  # 7 trials: below fANOVA's minimum
    assert sum(found["importances"].values()) == pytest.approx(1.0)
    (sweep / "importances.json").unlink()
    report = run_dltrain("report", str(sweep), cwd=sweep.parent)
    assert report.returncode == 0, report.stderr
    assert "most important for val/acc" in report.stdout
    top = next(iter(found["importances"]))
    assert top in report.stdout.replace("\n", " ")
    assert (sweep / "importances.json").is_file()


def test_pruning_a_multi_objective_study_is_refused(dltrain):
    result = dltrain("fit", "-m", "sweep=pareto", "trainer=smoke",
                     "+hydra.sweeper.pruner._target_=optuna.pruners.MedianPruner")  # fmt: skip
    assert result.returncode == 2
    assert "optuna cannot prune a multi-objective study" in result.stderr
    assert "hydra.sweeper.pruner=null" in result.stderr


def test_seeds_per_trial_and_a_custom_search_space(dltrain):
    """Each configuration runs under seeds 0 and 1, the study gets their mean; a function
    given as custom_search_space suggests SGD's momentum only where optim=sgd."""
    result = dltrain("fit", "-m", "sweep=random", "hydra.sweeper.n_trials=3",
                     "hydra.sweeper.seeds_per_trial=2", "trainer=smoke",
                     "optim=choice(adam,sgd)",
                     "hydra.sweeper.custom_search_space=tests.search_spaces.sgd_momentum",
                     "hydra.sweep.dir=s", env={"PYTHONPATH": str(REPO)})  # fmt: skip
    assert result.returncode == 0, result.stderr
    sweep = dltrain.cwd / "s"
    study = study_of(sweep, "random")
    assert len(study.trials) == 3
    for trial in study.trials:
        runs = [sweep / str(2 * trial.number + k) for k in range(2)]
        assert [overrides(run)["seed"] for run in runs] == ["0", "1"]
        values = [read_metrics(run)["val/acc"] for run in runs]
        assert trial.value == pytest.approx(sum(values) / 2)
        assert trial.user_attrs["seed_values"] == [[v] for v in values]
        assert ("optim.momentum" in trial.params) == (trial.params["optim"] == "sgd")
        assert all(("optim.momentum" in overrides(r)) == (trial.params["optim"] == "sgd")
                   for r in runs)  # fmt: skip


def test_seeds_per_trial_with_a_pruner_is_refused(dltrain):
    result = dltrain("fit", "-m", "sweep=tpe", "hydra.sweeper.seeds_per_trial=2", "trainer=smoke")
    assert result.returncode == 2
    assert "hydra.sweeper.pruner=null" in result.stderr


def test_enqueue_outside_the_space_is_a_config_error(dltrain):
    result = dltrain("fit", "-m", "sweep=random", "trainer=smoke",
                     "+hydra.sweeper.enqueue=[{optim.lr:0.5}]")  # fmt: skip
    assert result.returncode == 2
    assert "optim.lr=0.5 lies outside its search space" in result.stderr


def test_search_space_parses_conditions_and_the_command_line_wins():
    params = {"optim": "choice(adam, sgd)",
              "optim.momentum": {"values": "interval(0.5, 0.9)", "when": {"optim": "sgd"}}}  # fmt: skip
    space, conditional, fixed = search_space(params, ["trainer=smoke"])
    assert set(space) == {"optim"} and set(conditional) == {"optim.momentum"}
    assert fixed == ["trainer=smoke"]
    assert conditional["optim.momentum"][1] == {"optim": "sgd"}
    assert holds({"optim": "sgd"}, {"optim": "sgd"}.get)
    assert holds({"optim": ["sgd", "rmsprop"]}, {"optim": "rmsprop"}.get)
    assert not holds({"optim": "sgd"}, {"optim": "adam"}.get)
    space, conditional, _ = search_space(params, ["optim.momentum=0.8"])
    assert not conditional  # a value on the command line is no longer conditional


def test_pareto_front_of_points():
    points = {"a": [0.9, 5.0], "b": [0.8, 1.0], "c": [0.7, 2.0], "d": [0.9, 6.0]}
    assert pareto_front(points, [True, False]) == ["a", "b"]


def test_fanova_for_larger_studies(tmp_path):
    """Past FANOVA_MIN_TRIALS complete trials the importances are optuna's fANOVA; the
    parameter that drives the objective ranks first."""
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(0))
    study.optimize(
        lambda t: t.suggest_float("lr", 0, 1) * 10 + t.suggest_float("noise", 0, 1) * 0.1,
        n_trials=FANOVA_MIN_TRIALS + 5,
    )
    insight = study_insight(study, ["val/acc"], tmp_path)
    found = insight["importances"]["val/acc"]
    assert found["method"] == "fANOVA"
    assert next(iter(found["importances"])) == "lr"
    assert (tmp_path / "contour.png").is_file()
