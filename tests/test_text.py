"""Text: a vocabulary learned from the training split only, travelling in a weights-only
checkpoint; fit/test/predict on raw text with model=rnn and model=tcn; bad tables refused."""

from __future__ import annotations

import csv
import json
import random

import pytest

from dltrain.checkpoints import load_checkpoint
from tests.conftest import read_metrics, run_dltrain

GOOD = "great wonderful superb lovely enjoyable brilliant".split()
BAD = "awful boring terrible dull poor dreadful".split()
FILLER = "the movie plot actors scenes was and a with quite really film story".split()


def write_reviews(path, rows: int = 240, seed: int = 0) -> None:
    """Sentences of filler words with two words that carry the label."""
    rng = random.Random(seed)
    with path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["review", "sentiment"])
        for i in range(rows):
            label = "pos" if i % 2 else "neg"
            words = rng.choices(FILLER, k=rng.randint(4, 14)) + rng.choices(
                GOOD if label == "pos" else BAD, k=2
            )
            rng.shuffle(words)
            writer.writerow([" ".join(words), label])


@pytest.fixture(scope="module")
def text_runs(tmp_path_factory):
    cwd = tmp_path_factory.mktemp("text")
    write_reviews(cwd / "reviews.csv")
    runs = {}
    for model in ("rnn", "tcn"):
        result = run_dltrain("fit", "data=text", "data.path=reviews.csv", "data.text_column=review",
                             "data.label_column=sentiment", f"model={model}", "trainer.max_epochs=6",
                             f"hydra.run.dir={model}", cwd=cwd)  # fmt: skip
        assert result.returncode == 0, result.stderr[-3000:]
        runs[model] = result.stdout
    return cwd, runs


@pytest.mark.parametrize("model", ["rnn", "tcn"])
def test_a_text_model_learns_and_the_profile_shows_the_vocabulary(text_runs, model):
    cwd, runs = text_runs
    metrics = read_metrics(cwd / model)
    assert metrics["test/acc"] > 0.9 and metrics["class_names"] == ["neg", "pos"]
    profile = json.loads((cwd / model / "data_profile.json").read_text())
    assert profile["vocabulary"] == 2 + len(set(GOOD + BAD + FILLER))  # [PAD], [UNK], words
    assert profile["unknown_tokens"]["test"] == 0.0 and profile["lengths"]["train"]["min"] >= 6
    assert "vocabulary 27 tokens" in runs[model] and metrics["baseline/test_acc"] > 0.9


def test_the_vocabulary_travels_as_plain_data_and_comes_from_training_texts_only(text_runs):
    cwd, _ = text_runs
    checkpoint = load_checkpoint(cwd / "rnn" / "checkpoints" / "best.ckpt")
    data = checkpoint["dltrain"]["data"]
    assert data["kind"] == "text" and isinstance(data["tokenizer"], str)
    vocabulary = json.loads(data["tokenizer"])["model"]["vocab"]
    assert vocabulary["[PAD]"] == 0 and vocabulary["[UNK]"] == 1 and "wonderful" in vocabulary


@pytest.mark.parametrize("model", ["rnn", "tcn"])
def test_predict_takes_raw_text_from_a_table_or_a_text_file(text_runs, model):
    cwd, _ = text_runs
    (cwd / "new.txt").write_text("a wonderful and superb film\n\nthe plot was dull and awful\n")
    result = run_dltrain("predict", f"run={model}", "input=new.txt",
                         f"hydra.run.dir={model}_txt", cwd=cwd)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    with (cwd / f"{model}_txt" / "predictions.csv").open() as file:
        assert [row["predicted"] for row in csv.DictReader(file)] == ["pos", "neg"]
    result = run_dltrain("predict", f"run={model}", "input=reviews.csv",
                         f"hydra.run.dir={model}_csv", cwd=cwd)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    with (cwd / f"{model}_csv" / "predictions.csv").open() as file:
        rows = list(csv.DictReader(file))
    with (cwd / "reviews.csv").open() as file:
        truth = [row["sentiment"] for row in csv.DictReader(file)]
    assert sum(r["predicted"] == t for r, t in zip(rows, truth, strict=True)) / len(truth) > 0.9


def test_an_existing_tokenizer_file_is_used_as_it_is(text_runs, tmp_path):
    cwd, _ = text_runs
    checkpoint = load_checkpoint(cwd / "tcn" / "checkpoints" / "best.ckpt")
    (cwd / "tokenizer.json").write_text(checkpoint["dltrain"]["data"]["tokenizer"])
    result = run_dltrain("fit", "data=text", "data.path=reviews.csv", "data.text_column=review",
                         "data.label_column=sentiment", "data.tokenizer=tokenizer.json", "model=tcn",
                         "trainer=smoke", "hydra.run.dir=given", cwd=cwd)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads((cwd / "given" / "data_profile.json").read_text())["vocabulary"] == 27


@pytest.mark.parametrize(
    "content, overrides, message",
    [
        (
            "review,sentiment\ngood film,pos\n,neg\n",
            [],
            "line 3: the text column 'review' is empty",
        ),
        ("text,sentiment\ngood,pos\n", [], "no text column 'review'"),
        ("review,mood\ngood,pos\n", [], "no label column 'sentiment'"),
    ],
)
def test_bad_text_tables_exit_2_with_one_line(dltrain, content, overrides, message):
    (dltrain.cwd / "t.csv").write_text(content)
    result = dltrain("fit", "data=text", "data.path=t.csv", "data.text_column=review",
                     "data.label_column=sentiment", "model=rnn", "trainer=smoke", *overrides)  # fmt: skip
    assert result.returncode == 2, result.stderr[-2000:]
    assert message in result.stderr and "Traceback" not in result.stderr


def test_text_without_tokenizers_installed_exits_2_with_the_pip_command(monkeypatch):
    import importlib.util

    from dltrain.data.text import require_tokenizers
    from dltrain.errors import ConfigError

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "tokenizers" else real(name, *a))  # fmt: skip
    with pytest.raises(ConfigError, match=r"pip install 'dltrain\[text\]'"):
        require_tokenizers()


def test_a_text_tcn_exports_to_onnx_and_matches(text_runs):
    import onnxruntime
    from tokenizers import Tokenizer

    from dltrain.data.text import encode, read_texts

    cwd, _ = text_runs
    result = run_dltrain("export", "run=tcn", "format=onnx", "hydra.run.dir=tcn_onnx", cwd=cwd)
    assert result.returncode == 0, result.stderr[-3000:]
    # Read back independently: the checkpoint's tokenizer turns raw reviews into ids, the
    # ONNX model classifies them, at two batch sizes.
    data = load_checkpoint(cwd / "tcn" / "checkpoints" / "best.ckpt")["dltrain"]["data"]
    table, texts = read_texts(cwd / "reviews.csv", "review", "input")
    ids, _ = encode(Tokenizer.from_str(data["tokenizer"]), texts, data["max_length"])
    session = onnxruntime.InferenceSession(str(cwd / "tcn_onnx" / "model.onnx"))
    logits = session.run(None, {"input": ids.numpy()})[0]
    assert abs(session.run(None, {"input": ids[:3].numpy()})[0] - logits[:3]).max() < 1e-4
    names = ["neg", "pos"]
    right = sum(names[i] == t for i, t in zip(logits.argmax(1), table["sentiment"], strict=True))
    assert right / len(texts) > 0.9


def test_the_vocabulary_holds_the_training_texts_words_only(tmp_path):
    from dltrain.data.text import TextDataModule

    rows = ["text,label"] + [f"common word{i},{'ab'[i % 2]}" for i in range(80)]
    (tmp_path / "t.csv").write_text("\n".join(rows) + "\n")
    data = TextDataModule(path=str(tmp_path / "t.csv"), min_frequency=1, batch_size=8)
    data.setup("fit")
    vocabulary = data.tokenizer.get_vocab()
    train_ids = data.splits["train"][0]
    for split in ("train", "val", "test"):
        for i in range(len(data.splits[split][0])):
            # Each row's own word: known in training rows, unknown ([UNK] = 1) elsewhere.
            own = data.splits[split][0][i][1].item()
            assert (own != 1) == (split == "train"), (split, i)
    assert "common" in vocabulary and len(vocabulary) == 2 + 1 + len(train_ids)
