"""Clean: an image folder of JPEGs (Pillow), decoded per sample into float32 tensors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from doctor_data._paths import scratch


def _make_images(folder: Path, n: int = 48) -> None:
    rng = np.random.default_rng(0)
    for i in range(n):
        path = folder / f"img_{i:03d}.jpg"
        if not path.exists():
            pixels = rng.integers(0, 255, size=(24, 32, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(path, quality=90)


class ImageFolder(Dataset):
    def __init__(self, root: Path):
        self.paths = sorted(str(p) for p in root.glob("*.jpg"))

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        with Image.open(self.paths[i]) as img:
            arr = np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0
        return torch.from_numpy(arr).permute(2, 0, 1), i % 4


def make_dataset() -> ImageFolder:
    folder = scratch("images")
    _make_images(folder)
    return ImageFolder(folder)
