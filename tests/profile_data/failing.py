"""Datasets that fail the ways issue 3 item 10 lists (TARGETs for the end-to-end tests)."""

import os
import signal
import sys
import tempfile
import time

import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset, get_worker_info


class Shapes(Dataset):
    def __init__(self, n=200, bad=None, fail=None):
        self.n, self.bad, self.fail = n, bad, fail

    def __len__(self):
        return self.n

    def __getitem__(self, idx):
        if self.fail is not None:
            self.fail(idx)
        h = 30 if idx == self.bad else 32
        return torch.zeros(3, h, 32), idx % 10


def _truncated(idx):
    if idx == 37:
        raise ValueError(f"cannot decode sample {idx}: truncated file")


def _hang(idx):
    if idx >= 20:
        time.sleep(3600)


def _kill_in_worker(idx):
    if get_worker_info() is not None:
        os.kill(os.getpid(), signal.SIGKILL)


def _exit_in_worker(idx):
    if get_worker_info() is not None:
        os._exit(3)


def _print(idx):
    print(f"user print for sample {idx}")


bad_sample = DataLoader(Shapes(fail=_truncated), batch_size=8)  # sequential: hits index 37
hang = DataLoader(Shapes(fail=_hang), batch_size=8)
killed_worker = DataLoader(Shapes(fail=_kill_in_worker), batch_size=8)
exiting_worker = DataLoader(Shapes(fail=_exit_in_worker), batch_size=8)
bad_collate = DataLoader(Shapes(bad=5), batch_size=8)
noisy = DataLoader(Shapes(fail=_print), batch_size=8)


class Empty(Dataset):
    def __len__(self):
        return 0

    def __getitem__(self, idx):
        raise IndexError(idx)


empty = Empty()


class EmptyStream(IterableDataset):
    def __iter__(self):
        return iter(())


empty_stream = EmptyStream()


def _chatty(idx):
    import warnings

    print("decoding with the slow path", file=sys.stderr)  # the same line for every sample
    warnings.warn("chatty dataset: a user warning", stacklevel=1)
    if idx == 37:
        print("about to fail on sample 37")
        raise ValueError("sample 37 is broken")


def chatty_factory():
    print("building the index: 200 files", file=sys.stderr)
    return DataLoader(Shapes(fail=_chatty), batch_size=8)


def broken_factory():
    raise RuntimeError("cannot find the data directory /data/imagenet")


def needs_args(root):
    return Shapes()


not_a_dataset = 42


# LMDB opened before the fork, with its only reader slot held by the parent.
def lmdb_before_fork():
    import lmdb

    path = tempfile.mkdtemp(prefix="dlcheck-test-lmdb-")
    env = lmdb.open(path, max_readers=1, map_size=1 << 20)
    with env.begin(write=True) as txn:
        for i in range(64):
            txn.put(str(i).encode(), b"x" * 16)
    held = env.begin()

    class LmdbDataset(Dataset):
        def __len__(self):
            return 64

        def __getitem__(self, idx):
            with env.begin() as txn:
                return len(txn.get(str(idx).encode())) + 0 * id(held)

    return DataLoader(LmdbDataset(), batch_size=8)


print("failing.py imported", file=sys.stderr)
