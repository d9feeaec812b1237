"""The Lightning callback against steps timed by hand (slow: it imports Lightning)."""

from __future__ import annotations

import itertools
import time

import pytest
import torch

pytest.importorskip("lightning")

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore")]


def test_callback_share_matches_hand_timed_steps() -> None:
    import lightning as L

    from dlcheck.watch.lightning import WatchCallback
    from inputbound_loops import sleepy_loader

    class Tiny(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = torch.nn.Sequential(
                torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1)
            )
            self.marks: list[tuple[int, int]] = []  # (step start, step end), timed by hand

        def training_step(self, batch: torch.Tensor, batch_idx: int) -> torch.Tensor:
            t0 = time.perf_counter_ns()
            loss = self.net(batch).pow(2).mean()
            time.sleep(0.020)
            self.marks.append((t0, time.perf_counter_ns()))
            return loss

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return torch.optim.SGD(self.parameters(), lr=0.01)

    model = Tiny()
    cb = WatchCallback(name="train", verdict=False)
    trainer = L.Trainer(
        max_epochs=1, accelerator="cpu", devices=1, logger=False, callbacks=[cb],
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
    )  # fmt: skip
    trainer.fit(model, sleepy_loader(0, batches=8))  # 16 x 4 ms a batch, 20 ms a step
    s = cb.summary()
    assert s.steps == 8 and s.epochs == 1
    # By hand: the gaps between one training_step and the next, over the span from the first
    # step's start to the last one's end (the callback's gaps also leave out backward and the
    # optimizer, which a tiny model makes negligible).
    marks = model.marks
    gaps = sum(b[0] - a[1] for a, b in itertools.pairwise(marks))
    hand = gaps / (marks[-1][1] - marks[0][0])
    assert s.input_bound_share == pytest.approx(hand, abs=0.05), (s, hand)
