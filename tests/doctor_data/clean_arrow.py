"""Clean: an Arrow-backed Hugging Face dataset (saved and memory-mapped from disk)."""

from __future__ import annotations

import os
import shutil

import datasets
import numpy as np
from torch.utils.data import Dataset

from doctor_data._paths import scratch


def _load() -> datasets.Dataset:
    folder = scratch("arrow") / "ds"
    if not folder.exists():
        rng = np.random.default_rng(0)
        ds = datasets.Dataset.from_dict(
            {
                "x": rng.standard_normal((20_000, 8)).astype(np.float32).tolist(),
                "label": (np.arange(20_000) % 5).tolist(),
                "text": [f"sample {i}" for i in range(20_000)],
            }
        )
        tmp = folder.with_name(f"ds.{os.getpid()}.tmp")
        ds.save_to_disk(str(tmp))
        try:
            tmp.rename(folder)
        except OSError:  # another process won the race
            shutil.rmtree(tmp, ignore_errors=True)
    return datasets.load_from_disk(str(folder))


def make_hf() -> datasets.Dataset:
    """The HF dataset itself, formatted as torch tensors."""
    return _load().with_format("torch", columns=["x", "label"])


class ArrowWrapped(Dataset):
    """A torch Dataset around the Arrow table (the common way to add transforms)."""

    def __init__(self) -> None:
        self.table = _load()

    def __len__(self) -> int:
        return len(self.table)

    def __getitem__(self, i: int):
        row = self.table[i]
        return np.asarray(row["x"], dtype=np.float32), row["label"]


def make_wrapped() -> ArrowWrapped:
    return ArrowWrapped()
