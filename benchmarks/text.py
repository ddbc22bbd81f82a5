"""dltrain's default text recipe beside TF-IDF + logistic regression, on the same split.

    python benchmarks/text.py --csv texts.csv [--seeds 0 1 2 3 4] [--models rnn tcn] [overrides ...]

The CSV has `text` and `label` columns. For each seed, `dltrain fit data=text
model=<model>` trains with the shipped defaults; scikit-learn's TfidfVectorizer +
LogisticRegression is fitted on exactly dltrain's training rows (its own stratified
split, same seed) and scored on its test rows. Prints test accuracy per seed and the mean.

A real labelled-sentence set that needs no download: the 200 Pang & Lee movie-review
sentences that gensim ships for its tests:

    pip download gensim==4.4.0 --no-deps -d /tmp/gensim
    unzip -p /tmp/gensim/gensim-*.whl gensim/test/test_data/pang_lee_polarity.cor > pang_lee.cor
    python benchmarks/text.py --pang-lee pang_lee.cor
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from dltrain.data.base import stratified_split
from dltrain.problems import Classification


def pang_lee_csv(corpus: Path, out: Path) -> Path:
    """gensim's fastText-style corpus ('__label__pos text') as a text,label CSV."""
    with out.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["text", "label"])
        for line in corpus.read_text(encoding="utf-8", errors="replace").splitlines():
            label, _, text = line.partition(" ")
            writer.writerow([text.strip(), label.removeprefix("__label__")])
    return out


def dltrain_accuracy(table: Path, model: str, seed: int, workdir: Path, extra: list[str]) -> float:
    run = workdir / f"{model}_{seed}"
    command = [str(Path(sys.executable).parent / "dltrain"), "fit", "data=text",
               f"data.path={table}", f"model={model}", f"seed={seed}", f"hydra.run.dir={run}",
               *extra]  # fmt: skip
    subprocess.run(command, check=True, capture_output=True, cwd=workdir)
    return json.loads((run / "metrics.json").read_text())["test/acc"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", type=Path)
    parser.add_argument("--pang-lee", type=Path, help="gensim's pang_lee_polarity.cor")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--models", nargs="+", default=["rnn", "tcn"])
    args, extra = parser.parse_known_args()
    with tempfile.TemporaryDirectory() as tmp:
        table = args.csv or pang_lee_csv(args.pang_lee, Path(tmp) / "pang_lee.csv")
        frame = pd.read_csv(table)
        y, names = Classification().encode_targets(frame["label"].tolist(), "label", table)
        texts = frame["text"].astype(str).to_numpy()
        scores: dict[str, list[float]] = {m: [] for m in [*args.models, "tfidf+logreg"]}
        for seed in args.seeds:
            split = stratified_split(y, 0.15, 0.15, seed)
            train, test = split["train"].numpy(), split["test"].numpy()
            for model in args.models:
                scores[model].append(dltrain_accuracy(table, model, seed, Path(tmp), extra))
            linear = make_pipeline(TfidfVectorizer(), LogisticRegression(max_iter=1000))
            linear.fit(texts[train], y.numpy()[train])
            scores["tfidf+logreg"].append(linear.score(texts[test], y.numpy()[test]))
            print(f"seed {seed}: " + ", ".join(f"{k} {v[-1]:.3f}" for k, v in scores.items()))
        print(f"{len(frame)} texts, test accuracy, mean over seeds {args.seeds}: "
              + ", ".join(f"{k} {statistics.mean(v):.3f}" for k, v in scores.items()))  # fmt: skip


if __name__ == "__main__":
    main()
