"""dlcheck.watch: figures against a loop timed by hand, records, renderers, JSON, ranks."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
from rich.console import Console

import dlcheck
from dlcheck.inputbound import Tier
from dlcheck.watch.core import Watch
from dlcheck.watch.records import SCHEMA_FILE
from dlcheck.watch.render import verdict_line
from dlcheck.watch.stats import with_ranks
from inputbound_loops import EXPECTED, hand_timed_loop, sleepy_loader

TESTS = Path(__file__).parent


class FakeClock:
    """A clock the loader and the loop body advance by hand (nanoseconds)."""

    def __init__(self) -> None:
        self.now = 0

    def __call__(self) -> int:
        return self.now

    def advance_ms(self, ms: float) -> None:
        self.now += int(ms * 1e6)


def fake_loader(clock: FakeClock, n: int, wait_ms: float, first_ms: float):
    for i in range(n):
        clock.advance_ms(first_ms if i == 0 else wait_ms)
        yield i


@pytest.mark.filterwarnings("ignore:This DataLoader will create")
@pytest.mark.parametrize("workers", [1, 2, 4])
def test_share_matches_hand_timed_loop(workers: int) -> None:
    """Both figures come from the same loop: the hand timing wraps the watched iterator."""
    w = dlcheck.watch(sleepy_loader(workers, batches=10), verdict=False)
    hands = [hand_timed_loop(w) for _epoch in range(2)]
    s = w.summary()
    for hand, fig in zip(hands, s.epoch_figures, strict=True):
        assert fig.input_bound_share == pytest.approx(hand.share, abs=0.05), (workers, fig, hand)
    total = sum(h.wait_s for h in hands) / sum(h.wall_s for h in hands)
    assert s.input_bound_share == pytest.approx(total, abs=0.05)
    # Epoch 2 (workers already up) against the answer known by construction. A busy machine
    # can only make the workers slower (a higher share), so only the lower bound is firm.
    assert s.epoch_figures[1].input_bound_share >= EXPECTED[workers] - 0.1


def test_exact_figures_with_a_fake_clock() -> None:
    clock = FakeClock()
    # first batch after 50 ms, then 10 waits of 3 ms; 11 loop bodies of 7 ms: 30 / 107
    w = Watch(fake_loader(clock, 11, wait_ms=3, first_ms=50), clock=clock, verdict=False)
    for _ in w:
        clock.advance_ms(7)
    s = w.summary()
    assert (s.steps, s.epochs, s.steady_steps) == (11, 1, 10)
    assert s.input_bound_share == pytest.approx(30 / 107)
    assert s.tier is Tier.HIGH
    assert s.wait_p50_ms == pytest.approx(3) and s.wait_p99_ms == pytest.approx(3)
    assert s.step_p50_ms == pytest.approx(7)
    assert s.time_to_first_batch_s == pytest.approx((0.050,))
    assert s.wall_s == pytest.approx(0.107) and s.wait_s == pytest.approx(0.030)


def test_epochs_break_and_same_objects() -> None:
    items = [object() for _ in range(6)]
    w = dlcheck.watch(items, verdict=False)
    assert len(w) == 6
    # two epochs, and the very same objects
    assert list(w) == items and all(a is b for a, b in zip(w, items, strict=True))
    for i, _ in enumerate(w):
        if i == 2:
            break
    s = w.summary()
    assert s.epochs == 3 and s.steps == 15
    assert [e.complete for e in s.epoch_figures] == [True, True, False]
    assert [e.steps for e in s.epoch_figures] == [6, 6, 3]
    assert len(s.time_to_first_batch_s) == 3
    with pytest.raises(TypeError):
        len(dlcheck.watch(iter(items)))
    loader = sleepy_loader(0, batches=2)
    assert dlcheck.watch(loader).dataset is loader.dataset  # the loader's attributes read through


def test_empty_loader_has_no_figure() -> None:
    w = dlcheck.watch([], verdict=False)
    assert list(w) == []
    s = w.summary()
    assert s.input_bound_share is None and s.tier is None and s.steps == 0
    assert "no figure" in s.verdict


def test_verdict_line_and_quiet(monkeypatch: pytest.MonkeyPatch) -> None:
    buf = io.StringIO()
    for _ in dlcheck.watch(range(3), name="train", stream=buf):
        pass
    line = buf.getvalue()
    assert line.count("\n") == 1 and line.startswith("dlcheck.watch[train] epoch 1: ")
    assert "input-bound" in line
    monkeypatch.setenv("DLCHECK_WATCH_QUIET", "1")
    buf = io.StringIO()
    for _ in dlcheck.watch(range(3), stream=buf):
        pass
    assert buf.getvalue() == ""


def test_output_file_validates_against_schema(tmp_path: Path) -> None:
    clock = FakeClock()
    out = tmp_path / "sub" / "watch.json"
    w = Watch(
        [1, 2, 3], name="train", output=out, verdict=False, clock=clock
    )  # a list: re-iterable
    schema = json.loads(SCHEMA_FILE.read_text())
    for epoch in (1, 2):
        for _ in w:
            clock.advance_ms(2)
        doc = json.loads(out.read_text())  # rewritten after every epoch
        jsonschema.validate(doc, schema)
        assert doc["schema"] == "dlcheck.watch/1" and doc["epochs"] == epoch
    assert not list(out.parent.glob(".*tmp*"))  # atomic write leaves no temporary file
    gathered = with_ranks(w.summary(), [w.summary(), w.summary()])
    jsonschema.validate(gathered.to_dict(), schema)


def test_unwritable_output_does_not_stop_the_loop(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    buf = io.StringIO()
    w = dlcheck.watch([1, 2, 3], output=blocker / "watch.json", verdict=False, stream=buf)
    assert list(w) == [1, 2, 3]
    assert buf.getvalue().startswith("dlcheck.watch: cannot write ") and "goes on" in buf.getvalue()


def test_rich_table_fits_80_columns_and_html() -> None:
    clock = FakeClock()
    w = Watch(fake_loader(clock, 30, 12.5, 1500), name="train", clock=clock, verdict=False)
    for _ in w:
        clock.advance_ms(20)
    s = w.summary()
    from dataclasses import replace

    s = with_ranks(s, [replace(s, rank=0), replace(s, rank=1, wait_s=s.wait_s * 3)])
    buf = io.StringIO()
    Console(file=buf, width=80, color_system=None).print(s)
    text = buf.getvalue()
    assert "…" not in text and max(len(x) for x in text.splitlines()) <= 80
    assert "highly input-bound" in text and "dlcheck.watch[train]" in text
    assert "slowest 1" in text
    assert "input-bound share" in str(s)  # print(summary) shows the table, not the repr
    html = s._repr_html_()
    assert "<html" in html.lower() and "input-bound" in html


def test_gather_names_the_slowest_rank_pure() -> None:
    clock = FakeClock()
    w = Watch(fake_loader(clock, 5, 1, 1), clock=clock, verdict=False)
    for _ in w:
        clock.advance_ms(1)
    from dataclasses import replace

    base = w.summary()
    ranks = [replace(base, rank=r, wait_s=base.wait_s * f) for r, f in enumerate((1, 4, 1, 1))]
    g = with_ranks(replace(base, rank=0), ranks)
    assert g.slowest_rank == 1 and g.straggler_ratio == pytest.approx(4.0)
    assert [r.rank for r in g.ranks] == [0, 1, 2, 3]


def test_verdict_line_renders_the_summary() -> None:
    clock = FakeClock()
    w = Watch(fake_loader(clock, 4, 1, 1), clock=clock, verdict=False)
    for _ in w:
        clock.advance_ms(1)
    assert "43%" in verdict_line(w.summary())  # 3 waits of 1 ms / (3 + 4 bodies of 1 ms)


@pytest.mark.slow
def test_torchrun_gather_names_the_slower_rank(tmp_path: Path) -> None:
    from test_dist_session import clean_env

    env = clean_env()
    env["PYTHONPATH"] = f"{TESTS / 'fixtures'}:{env.get('PYTHONPATH', '')}"
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
         str(TESTS / "fixtures" / "watch_dist_script.py"), str(tmp_path)],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads(proc.stdout.strip().splitlines()[-1])
    jsonschema.validate(doc, json.loads(SCHEMA_FILE.read_text()))
    assert doc["slowest_rank"] == 1, doc
    assert [r["rank"] for r in doc["ranks"]] == [0, 1]
    slow, fast = doc["ranks"][1], doc["ranks"][0]
    # rank 1 waits 16 x 2 ms a batch for a 5 ms step (0.86 by construction), rank 0 only for
    # collation; a loaded machine raises both, never swaps them
    assert slow["input_bound_share"] > fast["input_bound_share"], doc
    # each rank wrote its own file, never the same one
    assert sorted(p.name for p in tmp_path.glob("*.json")) == [
        "watch-rank0.json",
        "watch-rank1.json",
    ]


def test_import_dlcheck_and_watch_stay_torch_free() -> None:
    code = (
        "import sys, dlcheck\n"
        "from dlcheck import watch\n"
        "w = dlcheck.watch(range(3), verdict=False)\n"
        "assert list(w) == [0, 1, 2] and w.summary().steps == 3\n"
        "assert 'torch' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)


def test_lightning_callback_without_lightning_says_how_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Neither package importable (None in sys.modules makes an import fail), module re-imported.
    for mod in ("lightning", "lightning.pytorch", "lightning.pytorch.callbacks"):
        monkeypatch.setitem(sys.modules, mod, None)
    for mod in ("pytorch_lightning", "pytorch_lightning.callbacks"):
        monkeypatch.setitem(sys.modules, mod, None)
    monkeypatch.delitem(sys.modules, "dlcheck.watch.lightning", raising=False)
    with pytest.raises(ImportError, match=r"pip install 'dlcheck\[lightning\]'"):
        import dlcheck.watch.lightning  # noqa: F401
