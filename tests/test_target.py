from __future__ import annotations

from pathlib import Path

import pytest

from dlcheck.errors import UsageError
from dlcheck.target import UserCodeError, load_target, parse_target


def write(tmp_path: Path, body: str, name: str = "userdata.py") -> Path:
    p = tmp_path / name
    p.write_text(body)
    return p


DATASET = """
import torch
from torch.utils.data import Dataset, DataLoader

class Squares(Dataset):
    def __len__(self):
        return 10
    def __getitem__(self, i):
        return torch.tensor([i * i])

ds = Squares()
loader = DataLoader(ds, batch_size=4)
def make():
    return DataLoader(Squares(), batch_size=2)
def needs_args(path):
    return Squares()
def bad_factory():
    raise RuntimeError("no data dir")
def returns_int():
    return 3
number = 5
"""


@pytest.mark.parametrize("raw", ["nocolon", ":x", "mod:", "mod:1abc", "bad-name:x"])
def test_malformed_targets(raw: str) -> None:
    with pytest.raises(UsageError):
        parse_target(raw)


def test_missing_file() -> None:
    with pytest.raises(UsageError, match="does not exist"):
        parse_target("nope/missing.py:ds")


def test_file_targets(tmp_path: Path) -> None:
    p = write(tmp_path, DATASET)
    assert len(load_target(f"{p}:ds")) == 10
    assert load_target(f"{p}:loader").batch_size == 4
    assert load_target(f"{p}:make").batch_size == 2


def test_module_target(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path, DATASET, "mymod_targets.py")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert len(load_target("mymod_targets:ds")) == 10


def test_resolution_errors(tmp_path: Path) -> None:
    p = write(tmp_path, DATASET)
    with pytest.raises(UsageError, match="no attribute 'missing'") as e:
        load_target(f"{p}:missing")
    assert "ds" in (e.value.hint or "")
    with pytest.raises(UsageError, match="needs arguments"):
        load_target(f"{p}:needs_args")
    with pytest.raises(UsageError, match="returned int"):
        load_target(f"{p}:returns_int")
    with pytest.raises(UsageError, match="not a Dataset"):
        load_target(f"{p}:number")
    with pytest.raises(UserCodeError, match="RuntimeError: no data dir"):
        load_target(f"{p}:bad_factory")


def test_no_such_module() -> None:
    with pytest.raises(UsageError, match="No module named"):
        load_target("surely_not_a_module_xyz:ds")


def test_import_error_in_user_module(tmp_path: Path) -> None:
    p = write(tmp_path, "import not_installed_pkg_xyz\n")
    with pytest.raises(UserCodeError, match="No module named 'not_installed_pkg_xyz'"):
        load_target(f"{p}:ds")
    p2 = write(tmp_path, "raise ValueError('bad config')\n", "other.py")
    with pytest.raises(UserCodeError, match="ValueError: bad config"):
        load_target(f"{p2}:ds")


SPAWN_DATASET = """
import torch
from torch.utils.data import Dataset

class Tens(Dataset):
    def __len__(self):
        return 8
    def __getitem__(self, i):
        return torch.tensor([i])

ds = Tens()
"""


def test_file_target_works_with_spawn_workers(tmp_path: Path) -> None:
    import torch

    p = write(tmp_path, SPAWN_DATASET, "spawnable_data.py")
    ds = load_target(f"{p}:ds")
    assert type(ds).__module__ == "spawnable_data"
    loader = torch.utils.data.DataLoader(
        ds, batch_size=4, num_workers=1, multiprocessing_context="spawn"
    )
    assert [b.tolist() for b in loader] == [[[0], [1], [2], [3]], [[4], [5], [6], [7]]]
