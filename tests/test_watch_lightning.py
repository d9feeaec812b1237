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
            self.marks: list[list[int]] = []  # [batch start, batch end], timed by hand

        def on_train_batch_start(self, batch: torch.Tensor, batch_idx: int) -> None:
            self.marks.append([time.perf_counter_ns(), 0])

        def on_train_batch_end(self, outputs: object, batch: torch.Tensor, batch_idx: int) -> None:
            self.marks[-1][1] = time.perf_counter_ns()

        def training_step(self, batch: torch.Tensor, batch_idx: int) -> torch.Tensor:
            loss = self.net(batch).pow(2).mean()
            time.sleep(0.020)
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
    # By hand, with the module's own batch hooks: the gaps between one training batch and the
    # next, over the span from the first batch's start to the last one's end.
    marks = model.marks
    gaps = sum(b[0] - a[1] for a, b in itertools.pairwise(marks))
    hand = gaps / (marks[-1][1] - marks[0][0])
    assert s.input_bound_share == pytest.approx(hand, abs=0.05), (s, hand)
    # By construction: 16 x 4 ms a batch and a 20 ms step; Lightning fetches one batch ahead, so
    # 6 of the 8 fetches fall inside the span: 6 x 64 / (6 x 64 + 8 x 20) = 0.71. A busy
    # machine only raises it.
    assert s.input_bound_share >= 0.6
