"""An image backbone from timm (model=timm), its head replaced for the data's classes.

timm is an optional extra (`pip install 'dltrain[timm]'`); it is imported only when a timm
net is checked or built. Weights come from timm's pretrained configs (the Hugging Face
hub cache) or from a local file (`model.weights`: .safetensors, or .pth/.bin read with
`torch.load(weights_only=True)`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from dltrain.errors import ConfigError, did_you_mean

WEIGHT_SUFFIXES = (".safetensors", ".pth", ".pt", ".bin")
# Keys that wrap a state dict in files saved by training scripts.
WRAPPERS = ("state_dict", "model", "model_state_dict", "module")


def import_timm() -> Any:
    """timm, or exit 2 with the command that installs it."""
    try:
        import timm
    except ImportError as error:
        raise ConfigError(
            f"model=timm needs timm, which is not importable ({error}). Install it beside a"
            " torchvision built for your torch: pip install 'dltrain[timm]'."
        ) from None
    return timm


def check_config(name: str, weights: str | None) -> None:
    """Exit 2 before any data is loaded: an unknown model name, a missing weights file."""
    timm = import_timm()
    known = timm.list_models()
    if name.split(".")[0] not in known:  # resnet18.a1_in1k names a pretrained tag
        raise ConfigError(
            f"model.name={name} is not a timm model.{did_you_mean(name, known)}"
            f" timm {timm.__version__} has {len(known)} architectures; list them with:"
            " python -c \"import timm; print(timm.list_models('resnet*'))\"."
        )
    if weights is not None:
        path = Path(weights).expanduser()
        if not path.is_file():
            raise ConfigError(f"model.weights={weights}: no such file.")
        if path.suffix.lower() not in WEIGHT_SUFFIXES:
            raise ConfigError(
                f"model.weights={weights}: give a {', '.join(WEIGHT_SUFFIXES)} file of weights."
            )


def read_weights(path: Path) -> dict[str, Tensor]:
    """A state dict from a .safetensors file, or a .pth/.bin file holding tensors only."""
    if path.suffix.lower() == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except (SafetensorError, OSError) as error:
            raise ConfigError(
                f"model.weights={path} is not a readable .safetensors file: {error}"
            ) from None
    from dltrain.checkpoints import load_checkpoint

    # The project's one reader of pickled files: weights only, code refused (exit 2).
    state = load_checkpoint(
        path,
        hint=" dltrain reads weight files with torch.load(weights_only=True) only; save them"
        " as .safetensors.",
    )
    for key in WRAPPERS:
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise ConfigError(f"model.weights={path} does not hold a state dict of tensors.")
    return {k.removeprefix("module."): v for k, v in state.items()}


class TimmNet(nn.Module):
    """A timm model for images [C, H, W]: inputs resized to `image_size`, one channel
    repeated to the backbone's channels, the classifier sized for `num_classes`."""

    def __init__(
        self,
        input_shape: Sequence[int],
        num_classes: int,
        name: str,
        pretrained: bool = False,
        weights: str | None = None,
        image_size: int | Sequence[int] | None = None,
        drop_rate: float = 0.0,
        drop_path_rate: float | None = None,
        freeze_epochs: int = 0,
        backbone_lr_scale: float = 1.0,
        normalization: str = "auto",
    ) -> None:
        super().__init__()
        if len(input_shape) != 3:
            raise ConfigError(
                f"model=timm needs images [C, H, W], got input shape {list(input_shape)}:"
                " for a table use model=tabular; for sequences model=tcn or model=rnn."
            )
        timm = import_timm()
        check_config(name, weights)
        self.name, self.freeze_epochs, self.backbone_lr_scale = (
            name,
            freeze_epochs,
            backbone_lr_scale,
        )
        # A weights file replaces the download (model.pretrained may stay true in a recipe).
        pretrained = pretrained and weights is None
        self.model = self._create(timm, name, pretrained, num_classes, drop_rate, drop_path_rate)
        # What the backbone's pretrained weights expect (timm's data config).
        config = timm.data.resolve_data_config({}, model=self.model)
        self.in_chans = int(config["input_size"][0])
        if image_size is None:
            image_size = tuple(config["input_size"][1:])
        elif isinstance(image_size, int):
            image_size = (image_size, image_size)
        self.image_size = tuple(int(s) for s in image_size)
        self.channels = int(input_shape[0])
        self.resize = tuple(int(s) for s in input_shape[1:]) != self.image_size
        if self.channels not in (1, self.in_chans):
            raise ConfigError(
                f"{name} takes {self.in_chans}-channel images; the data has {self.channels}"
                " channels (only 1-channel images are expanded)."
            )
        self.load_report = self._load(Path(weights).expanduser()) if weights else None
        uses_pretrained = pretrained or weights is not None
        if normalization not in ("auto", "pretrained", "data"):
            raise ConfigError(f"model.normalization={normalization}: use auto, pretrained or data.")
        self.pretrained_stats = (
            (torch.tensor(config["mean"]), torch.tensor(config["std"]))
            if normalization == "pretrained" or (normalization == "auto" and uses_pretrained)
            else None
        )

    @staticmethod
    def _create(
        timm: Any,
        name: str,
        pretrained: bool,
        num_classes: int,
        drop_rate: float,
        drop_path_rate: float | None,
    ) -> nn.Module:
        arguments = {"num_classes": num_classes, "drop_rate": drop_rate}
        if drop_path_rate is not None:
            arguments["drop_path_rate"] = drop_path_rate
        try:
            return timm.create_model(name, pretrained=pretrained, **arguments)
        except Exception as error:
            if not pretrained or not _is_download_error(error):
                raise
            from huggingface_hub.constants import HF_HUB_CACHE

            raise ConfigError(
                f"model.pretrained=true: timm could not fetch {name}'s weights"
                f" ({type(error).__name__}): they are looked for in the Hugging Face cache"
                f" {HF_HUB_CACHE} (HF_HOME / HF_HUB_CACHE move it) and on the hub. Offline,"
                " copy the cache from a machine that has it, or give a file:"
                " model.pretrained=false model.weights=path/to/weights.safetensors."
            ) from None

    def _load(self, path: Path) -> str:
        """Load a weights file into the backbone; the one-line report of what was loaded."""
        state = read_weights(path)
        own = self.model.state_dict()
        head = self.head_prefixes()
        dropped = []
        for key, value in list(state.items()):
            if key in own and own[key].shape != value.shape:
                if key.startswith(head):  # another class count: the head starts anew
                    dropped.append(key)
                    del state[key]
                    continue
                raise ConfigError(
                    f"model.weights={path} does not fit {self.name}: {key} is"
                    f" {list(value.shape)} in the file and {list(own[key].shape)} in the model."
                    " Is it a file of another architecture (model.name)?"
                )
        result = self.model.load_state_dict(state, strict=False)
        loaded = len(state) - len(result.unexpected_keys)
        if loaded == 0:
            raise ConfigError(
                f"model.weights={path} shares no key with {self.name} (its first key:"
                f" {next(iter(state), 'none')}): is it a file of another architecture?"
            )
        missing = [key for key in result.missing_keys if key not in dropped]
        unexpected = result.unexpected_keys
        return (
            f"model.weights={path.name}: {loaded} tensors loaded, {len(missing)} missing"
            f"{_first(missing)}, {len(unexpected)} unexpected{_first(unexpected)}"
            + (f"; new head for this data: {', '.join(dropped)}" if dropped else "")
            + "."
        )

    def head_prefixes(self) -> tuple[str, ...]:
        """State-dict prefixes of the classifier (timm's pretrained config names it)."""
        names = self.model.pretrained_cfg.get("classifier") or ()
        names = (names,) if isinstance(names, str) else tuple(names)
        return tuple(f"{name}." for name in names)

    def head_modules(self) -> list[nn.Module]:
        """The classifier: what trains while the backbone is frozen."""
        classifier = self.model.get_classifier()
        return [classifier] if isinstance(classifier, nn.Module) else list(classifier)

    def backbone_modules(self) -> list[nn.Module]:
        """Every leaf module outside the classifier (BaseFinetuning freezes these)."""
        head = {id(m) for module in self.head_modules() for m in module.modules()}
        return [m for m in self.model.modules() if not list(m.children()) and id(m) not in head]

    def param_groups(self) -> list[tuple[str, list[nn.Parameter], float]]:
        """(name, parameters, learning-rate scale): the head, and the backbone at its own rate."""
        head = {id(p) for module in self.head_modules() for p in module.parameters()}
        return [
            ("head", [p for p in self.parameters() if id(p) in head], 1.0),
            (
                "backbone",
                [p for p in self.parameters() if id(p) not in head],
                self.backbone_lr_scale,
            ),
        ]

    def forward(self, x: Tensor) -> Tensor:
        # Decided from the data's input shape, not per batch: exported graphs stay static.
        if self.resize:
            x = F.interpolate(x, size=self.image_size, mode="bilinear", align_corners=False)
        if self.channels != self.in_chans:
            x = x.expand(-1, self.in_chans, -1, -1)
        return self.model(x)


def _first(keys: list[str]) -> str:
    return f" ({keys[0]}{', ...' if len(keys) > 1 else ''})" if keys else ""


def _is_download_error(error: Exception) -> bool:
    """Whether timm failed to fetch pretrained weights (offline, not cached, no access)."""
    names = {cls.__name__ for cls in type(error).__mro__}
    return bool(
        names
        & {
            "LocalEntryNotFoundError",
            "OfflineModeIsEnabled",
            "HfHubHTTPError",
            "ConnectionError",
            "RepositoryNotFoundError",
            "GatedRepoError",
            "HTTPError",
            "URLError",
            "TimeoutError",
            "OSError",
        }
    )
