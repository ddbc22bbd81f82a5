"""Labelled texts: a table (CSV, or Parquet with pyarrow) with a text column and a label
column, tokenized with Hugging Face `tokenizers`.

By default a word-level vocabulary is trained on the training split only
(`data.vocab_size`, `data.lowercase`; words seen fewer than `data.min_frequency` times are
unknown); `data.tokenizer=<tokenizer.json>` uses an existing tokenizer instead. A sample
is the token ids [max_length] (0 is padding, never truncated silently: the profile says
how many texts were cut). The tokenizer travels in the checkpoint as its JSON text, so
`predict` takes raw text; the nets embed the ids (the vocabulary size comes from here).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from dltrain.data.base import InMemoryDataModule, Samples
from dltrain.data.table import encode_label_column, read_table
from dltrain.errors import ConfigError, DataError, did_you_mean

PAD, UNK = "[PAD]", "[UNK]"


def require_tokenizers() -> None:
    """Exit 2 with the pip command when Hugging Face tokenizers is not installed."""
    from importlib.util import find_spec

    if find_spec("tokenizers") is None:
        raise ConfigError(
            "data=text needs Hugging Face tokenizers, which is not installed:"
            " pip install 'dltrain[text]'."
        )


def train_tokenizer(texts: list[str], vocab_size: int, lowercase: bool, min_frequency: int) -> Any:
    """A word-level tokenizer whose vocabulary is learned from `texts` ([PAD] = 0, [UNK] = 1)."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.WordLevel(unk_token=UNK))
    steps = [normalizers.NFKC(), *([normalizers.Lowercase()] if lowercase else [])]
    tokenizer.normalizer = normalizers.Sequence(steps)
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = trainers.WordLevelTrainer(
        vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=[PAD, UNK]
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    return tokenizer


def encode(tokenizer: Any, texts: list[str], max_length: int) -> tuple[Tensor, int]:
    """(token ids [N, max_length] padded with 0, how many texts were cut at max_length)."""
    ids = torch.zeros(len(texts), max_length, dtype=torch.long)
    cut = 0
    for i, encoding in enumerate(tokenizer.encode_batch(texts)):
        tokens = encoding.ids
        cut += len(tokens) > max_length
        tokens = tokens[:max_length]
        ids[i, : len(tokens)] = torch.tensor(tokens, dtype=torch.long)
    return ids, cut


def read_texts(path: str | Path, column: str, key: str) -> tuple[Any, list[str]]:
    """(the table, its texts) from a CSV/Parquet table, or one text per line of a .txt file."""
    file = Path(path)
    if file.suffix.lower() == ".txt":
        if not file.is_file():
            raise DataError(f"{key}={path}: no such file.")
        lines = file.read_text(encoding="utf-8", errors="replace").splitlines()
        return None, [line for line in lines if line.strip()]
    table = read_table(file, key)
    if column not in table.columns:
        columns = list(table.columns)
        raise DataError(
            f"{path} has no text column '{column}'.{did_you_mean(column, columns)}"
            f" Columns: {', '.join(columns)}. Set data.text_column."
        )
    texts = table[column]
    if texts.isna().any() or (texts.astype(str).str.strip() == "").any():
        empty = texts.isna() | (texts.astype(str).str.strip() == "")
        row = int(empty.to_numpy().argmax()) + 2
        raise DataError(f"{path}, line {row}: the text column '{column}' is empty.")
    return table, texts.astype(str).tolist()


class TextDataModule(InMemoryDataModule):
    """`path`: a table with `text_column` and `label_column`; `test_path` your held-out one."""

    # Token ids are not normalized: the nets embed them.
    allows_missing = True
    baseline_inputs = " on bag-of-words"

    def __init__(
        self,
        path: str | None = None,
        text_column: str = "text",
        label_column: str = "label",
        tokenizer: str | None = None,
        vocab_size: int = 20000,
        min_frequency: int = 2,
        lowercase: bool = True,
        max_length: int = 128,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.path, self.text_column, self.label_column = path, text_column, label_column
        self.tokenizer_path, self.vocab_size, self.min_frequency = (
            tokenizer,
            vocab_size,
            min_frequency,
        )
        self.lowercase, self.max_length = lowercase, max_length
        self.tokenizer: Any = None
        self.texts_cut = 0

    def read(self, path: str) -> Samples:
        require_tokenizers()
        key = self.path_key(path)
        table, texts = read_texts(path, self.text_column, key)
        if table is None or self.label_column not in table.columns:
            raise DataError(
                f"{key}={path} has no label column '{self.label_column}': training texts need"
                " labels (set data.label_column)."
            )
        y, class_names = encode_label_column(table, self.label_column, self.problem, path)
        return Samples(texts, y, class_names)

    def load(self) -> Samples:
        if not self.path:
            raise DataError("data=text needs a table: set data.path=path/to/texts.csv.")
        return self.read(self.path)

    def prepare(self, samples: Samples, train: Tensor) -> Samples:
        """The tokenizer (trained on the training texts only, or the given one) and ids."""
        if self.tokenizer_path:
            from tokenizers import Tokenizer

            if not Path(self.tokenizer_path).is_file():
                raise DataError(f"data.tokenizer={self.tokenizer_path}: no such file.")
            try:
                self.tokenizer = Tokenizer.from_file(str(self.tokenizer_path))
            except Exception as error:  # tokenizers raises its own exception type
                raise DataError(
                    f"data.tokenizer={self.tokenizer_path} is not a tokenizer.json ({error})."
                ) from None
        else:
            training = [samples.x[i] for i in train.tolist()]
            self.tokenizer = train_tokenizer(
                training, self.vocab_size, self.lowercase, self.min_frequency
            )
        x, self.texts_cut = encode(self.tokenizer, samples.x, self.max_length)
        test = samples.test
        if test is not None:
            test_ids, cut = encode(self.tokenizer, test[0], self.max_length)
            self.texts_cut += cut
            test = (test_ids, test[1])
        return Samples(x, samples.y, samples.class_names, test)

    def setup(self, stage: str | None = None) -> None:
        super().setup(stage)
        if self.texts_cut and not any("max_length" in n for n in self.notes):
            self.notes.append(
                f"{self.texts_cut} texts are longer than data.max_length={self.max_length}"
                " tokens and were cut there."
            )

    def preprocess(self) -> nn.Module:
        return nn.Identity()

    def net_inputs(self) -> dict[str, Any]:
        return {"input_shape": (self.max_length,), "vocab_size": self.tokenizer.get_vocab_size()}

    def sequence_lengths(self, split: str) -> Tensor:
        """Tokens per text."""
        return (self.splits[split][0] > 0).sum(1)

    def unknown_share(self, split: str) -> float:
        """The share of a split's tokens that are unknown to the vocabulary."""
        ids = self.splits[split][0]
        real = ids > 0
        return float((ids[real] == 1).float().mean()) if real.any() else 0.0

    def profile_extras(self) -> dict[str, Any]:
        return {"vocabulary": self.tokenizer.get_vocab_size(),
                "unknown_tokens": {s: round(self.unknown_share(s), 4) for s in ("val", "test")}}  # fmt: skip

    def drift_features(self, x: Tensor) -> dict[str, Tensor]:
        """Per text: its length and its share of unknown tokens."""
        real = (x > 0).sum(1).float()
        return {"length": real, "unknown share": (x == 1).sum(1) / real.clamp_min(1)}

    def baseline_features(self, x: Tensor) -> Tensor:
        """Bag of words: log(1 + count) of the most frequent words, each text L2-normalized
        (the first 5000 ids; the word-level vocabulary is ordered by frequency)."""
        width = min(self.tokenizer.get_vocab_size(), 5000)
        counts = torch.zeros(len(x), width)
        kept = x.clamp_max(width - 1) * (x < width)  # rarer words count as padding: dropped
        counts.scatter_add_(1, kept, torch.ones_like(kept, dtype=torch.float32))
        counts[:, 0] = 0.0
        features = counts.log1p()
        return features / features.norm(dim=1, keepdim=True).clamp_min(1e-6)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "kind": "text", "tokenizer": self.tokenizer.to_str(),
                "max_length": self.max_length, "text_column": self.text_column,
                "label_column": self.label_column}  # fmt: skip
