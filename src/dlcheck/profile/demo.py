"""The built-in demo: the seed's ``CustomImageDataset`` (annotations CSV + a folder of JPEGs).

The images are generated once into ``$XDG_CACHE_HOME/dlcheck/demo`` (or ``~/.cache/...``) and
decoded per sample with torchvision's ``decode_jpeg`` when it is importable, else Pillow.
"""

from __future__ import annotations

import csv
import os
import random
from pathlib import Path
from typing import Any

N_IMAGES = 4096
SIDE = 128
VERSION = "2"


def cache_dir() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(root) / "dlcheck" / "demo"


def ensure_demo(root: Path | None = None, n: int = N_IMAGES, side: int = SIDE) -> Path:
    """Write the demo's CSV and JPEGs once (atomically: a marker file is written last)."""
    from PIL import Image

    root = root or cache_dir()
    marker = root / f".complete-v{VERSION}-{n}-{side}"
    if marker.exists():
        return root
    img_dir = root / "images"
    img_dir.mkdir(parents=True, exist_ok=True)
    rng = random.Random(0)
    rows = []
    for i in range(n):
        name = f"img_{i:05d}.jpg"
        # Smooth gradients plus noise: JPEGs of realistic size, cheap to generate.
        base = Image.linear_gradient("L").resize((side, side)).rotate(rng.randrange(360))
        noise = Image.effect_noise((side, side), rng.uniform(20, 60))
        rgb = Image.merge("RGB", (base, noise, base.transpose(Image.Transpose.FLIP_LEFT_RIGHT)))
        rgb.save(img_dir / name, quality=90)
        rows.append((name, i % 10))
    tmp = root / "annotations.csv.tmp"
    with tmp.open("w", newline="") as f:
        csv.writer(f).writerows(rows)
    tmp.replace(root / "annotations.csv")
    marker.write_text("ok\n")
    return root


def _decoder() -> Any:
    try:  # torchvision's decoder is faster when it is installed (and importable)
        from torchvision.io import ImageReadMode, decode_jpeg, read_file

        def decode(path: str) -> Any:
            return decode_jpeg(read_file(path), mode=ImageReadMode.RGB)

        return decode
    except Exception:
        # Pillow + torch only: numpy is not a dependency (torch does not pull it in either), and
        # README command 1 runs this in a bare environment.
        import torch
        from PIL import Image

        def decode(path: str) -> Any:
            with Image.open(path) as im:
                rgb = im.convert("RGB")
                raw = bytearray(rgb.tobytes())  # writable, so torch.frombuffer does not warn
                w, h = rgb.size
            return torch.frombuffer(raw, dtype=torch.uint8).view(h, w, 3).permute(2, 0, 1)

        return decode


class CustomImageDataset:
    """Map-style dataset over an annotations CSV (file name, label) and an image folder."""

    def __init__(self, annotations_file: str | Path, img_dir: str | Path, crop: int = 112):
        with open(annotations_file, newline="") as f:
            self.img_labels = [(row[0], int(row[1])) for row in csv.reader(f)]
        self.img_dir = str(img_dir)
        self.crop = crop
        self._decode: Any = None

    def __len__(self) -> int:
        return len(self.img_labels)

    def __getstate__(self) -> dict[str, Any]:
        # The decoder is a closure: rebuild it in each (spawned) worker instead of pickling it.
        return {**self.__dict__, "_decode": None}

    def __getitem__(self, idx: int) -> tuple[Any, int]:
        import torch

        if self._decode is None:
            self._decode = _decoder()
        name, label = self.img_labels[idx]
        image = self._decode(os.path.join(self.img_dir, name))
        # A typical training transform: random crop, flip, scale to float.
        _, h, w = image.shape
        top = random.randrange(h - self.crop + 1)
        left = random.randrange(w - self.crop + 1)
        image = image[:, top : top + self.crop, left : left + self.crop]
        if random.random() < 0.5:
            image = image.flip(-1)
        return image.to(torch.float32).div_(255), label


def demo_dataset() -> Any:
    """Zero-argument factory used as the default TARGET."""
    root = ensure_demo()
    return CustomImageDataset(root / "annotations.csv", root / "images")
