"""A slow, endless dataset for the Ctrl-C test."""

import time

import torch
from torch.utils.data import Dataset


class Slow(Dataset):
    def __len__(self):
        return 10_000

    def __getitem__(self, idx):
        time.sleep(0.002)
        return torch.zeros(4)


dataset = Slow()
