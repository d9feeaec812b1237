"""A factory that records each call (one line per call) in $DLCHECK_TEST_CALLS."""

from __future__ import annotations

import os

import torch
from torch.utils.data import TensorDataset


def counted_dataset() -> TensorDataset:
    with open(os.environ["DLCHECK_TEST_CALLS"], "a") as f:
        f.write(f"{os.getpid()}\n")
    return TensorDataset(torch.arange(4096).float().unsqueeze(1))


def cuda_dataset() -> TensorDataset:
    """Stands in for a factory that touches CUDA: forking from its build would be unsafe."""
    torch.cuda.is_initialized = lambda: True  # what a real CUDA call would leave behind
    return counted_dataset()
