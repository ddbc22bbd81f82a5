"""A folder of images, one sub-folder per class, read with Pillow as training needs them."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from dltrain.data.base import InMemoryDataModule, Samples
from dltrain.errors import DataError

EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
GRAYSCALE_MODES = {"1", "L", "LA", "I", "I;16", "F"}
# Images of mixed sizes are resized to their median size, at most this many pixels a side.
MAX_DEFAULT_SIDE = 256


class ImageFiles(Dataset):
    """Image files decoded on access to float tensors [C, H, W] in the 0-255 range."""

    def __init__(self, paths: Sequence[Path], mode: str, size: tuple[int, int] | None) -> None:
        self.paths, self.mode, self.size = list(paths), mode, size

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> Tensor:
        from PIL import Image

        with Image.open(self.paths[i]) as image:
            image = image.convert(self.mode)
            if self.size is not None:
                image = image.resize((self.size[1], self.size[0]), Image.BILINEAR)
            array = np.asarray(image, dtype=np.float32)
        tensor = torch.from_numpy(array.copy())
        return tensor.unsqueeze(0) if tensor.ndim == 2 else tensor.permute(2, 0, 1)


def common_size(sizes: Sequence[tuple[int, int]]) -> tuple[int, int]:
    """The median height and width of images of mixed sizes, each at most MAX_DEFAULT_SIDE."""
    heights, widths = sorted(h for h, _ in sizes), sorted(w for _, w in sizes)
    middle = len(sizes) // 2
    return min(heights[middle], MAX_DEFAULT_SIDE), min(widths[middle], MAX_DEFAULT_SIDE)


class ImageFolderDataModule(InMemoryDataModule):
    """`path`/<class name>/<image files>; grayscale or RGB and the size are read from the files."""

    pixel_max = 255.0

    def __init__(
        self, path: str | None = None, image_size: int | Sequence[int] | None = None, **kwargs
    ) -> None:
        super().__init__(**kwargs)
        self.path = path
        if isinstance(image_size, int):
            image_size = (image_size, image_size)
        self.image_size = tuple(image_size) if image_size is not None else None

    def load(self) -> Samples:
        if not self.path:
            raise DataError("data=image_folder needs a folder: set data.path=path/to/images.")
        return self.read(self.path)

    def read(self, path: str) -> Samples:
        from PIL import Image, UnidentifiedImageError

        root = self._root(path)
        class_dirs = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
        if not class_dirs:
            raise DataError(
                f"data.path={root} has no class sub-folders: put each class's images in {root}/<class>/."
            )
        paths, labels, modes, sizes = [], [], set(), []
        for label, class_dir in enumerate(class_dirs):
            files = sorted(p for p in class_dir.rglob("*") if p.suffix.lower() in EXTENSIONS)
            if not files:
                raise DataError(f"{class_dir}/ holds no images ({', '.join(sorted(EXTENSIONS))}).")
            for file in files:
                try:
                    with Image.open(file) as image:  # reads the header only
                        modes.add(image.mode)
                        sizes.append((image.height, image.width))
                except (UnidentifiedImageError, OSError) as error:
                    raise DataError(f"{file} is not a readable image: {error}") from error
            paths += files
            labels += [label] * len(files)
        if self.image_size is None and len(set(sizes)) > 1:
            self.image_size = common_size(sizes)
            shown = ", ".join(f"{h}x{w}" for h, w in sorted(set(sizes))[:3])
            self.notes.append(
                f"the images have different sizes ({shown}, ...): all are resized to"
                f" {self.image_size[0]}x{self.image_size[1]} (their median, at most"
                f" {MAX_DEFAULT_SIDE} a side); set data.image_size=[H, W] to choose."
            )
        mode = "L" if modes <= GRAYSCALE_MODES else "RGB"
        images = ImageFiles(paths, mode, self.image_size)
        return Samples(images, torch.tensor(labels), [d.name for d in class_dirs])

    def _root(self, path: str) -> Path:
        root = Path(path)
        if not root.is_dir():
            raise DataError(f"{self.path_key(path)}={path}: no such folder.")
        return root
