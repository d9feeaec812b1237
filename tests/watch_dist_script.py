"""Run under torchrun (2 ranks): rank 1's loader is slower; rank 0 prints the gathered summary."""

from __future__ import annotations

import json
import sys
import time

import torch.distributed as dist

import dlcheck
from inputbound_loops import sleepy_loader


def main(out_dir: str) -> None:
    dist.init_process_group("gloo")
    rank = dist.get_rank()
    loader = sleepy_loader(0, batches=8, sample_s=0.002 if rank == 1 else 0.0)
    w = dlcheck.watch(loader, name="train", output=f"{out_dir}/watch.json", verdict=False)
    for _ in w:
        time.sleep(0.005)
    s = w.summary(gather=True)  # a collective: every rank calls it
    if rank == 0:
        print(json.dumps(s.to_dict()))
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1])
