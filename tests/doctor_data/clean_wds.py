"""Clean: a WebDataset pipeline over tar shards (split by worker by WebDataset itself)."""

from __future__ import annotations

import os

import numpy as np
import webdataset as wds

from doctor_data._paths import scratch


def _shards(n_shards: int = 4, per_shard: int = 25) -> list[str]:
    folder = scratch("wds")
    urls = []
    for s in range(n_shards):
        path = folder / f"shard-{s:04d}.tar"
        if not path.exists():
            tmp = folder / f"shard-{s:04d}.{os.getpid()}.tmp"
            with wds.TarWriter(str(tmp)) as sink:
                for i in range(per_shard):
                    k = s * per_shard + i
                    x = np.full((4,), k, dtype=np.float32)
                    sink.write({"__key__": f"s{k:05d}", "x.npy": x, "cls": k % 3})
            tmp.rename(path)
        urls.append(str(path))
    return urls


def make_pipeline() -> wds.WebDataset:
    return wds.WebDataset(_shards(), shardshuffle=False).decode().to_tuple("x.npy", "cls")
