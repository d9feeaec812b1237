"""Launch detection (pure, over fake environ mappings) and Slurm node-list expansion."""

from __future__ import annotations

import pytest

from dlcheck.errors import UsageError
from dlcheck.ranks import detect_launch, expand_nodelist, slurm_port
from dlcheck.ranks.session import timeout_from_env

TORCHRUN = {
    "RANK": "3",
    "WORLD_SIZE": "8",
    "LOCAL_RANK": "1",
    "LOCAL_WORLD_SIZE": "2",
    "GROUP_RANK": "1",
    "MASTER_ADDR": "node01",
    "MASTER_PORT": "29500",
    "TORCHELASTIC_RUN_ID": "abc",
    "TORCHELASTIC_RESTART_COUNT": "0",
    "TORCHELASTIC_USE_AGENT_STORE": "True",
}

SRUN = {
    "SLURM_PROCID": "5",
    "SLURM_NTASKS": "8",
    "SLURM_STEP_NUM_TASKS": "6",
    "SLURM_STEP_ID": "0",
    "SLURM_LOCALID": "1",
    "SLURM_NODEID": "2",
    "SLURM_JOB_ID": "123456",
    "SLURM_JOB_NODELIST": "gpu[01-04]",
    "SLURM_STEP_NODELIST": "gpu[02-03,7]",
    "SLURM_STEP_TASKS_PER_NODE": "2(x3)",
}


def test_no_launcher_means_single_process() -> None:
    assert detect_launch({}) is None
    assert detect_launch({"PATH": "/usr/bin"}) is None


def test_torchrun() -> None:
    info = detect_launch(TORCHRUN)
    assert info is not None
    assert (info.launcher, info.rank, info.world_size) == ("torchrun", 3, 8)
    assert (info.local_rank, info.local_world_size, info.node_rank) == (1, 2, 1)
    assert (info.master_addr, info.master_port) == ("node01", 29500)
    assert info.agent_store is True
    assert info.run_id == "abc.0" and info.key_prefix == "dlcheck/abc.0/"
    assert not info.is_root


def test_plain_env_launcher_without_local_rank() -> None:
    info = detect_launch(
        {"RANK": "0", "WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "1234"}
    )
    assert info is not None
    assert info.launcher == "env" and info.is_root
    assert info.local_rank is None and info.agent_store is False


def test_world_size_one_is_not_distributed() -> None:
    assert detect_launch({"RANK": "0", "WORLD_SIZE": "1"}) is None
    assert detect_launch({**SRUN, "SLURM_STEP_NUM_TASKS": "1", "SLURM_PROCID": "0"}) is None


def test_disable_variable() -> None:
    assert detect_launch({**TORCHRUN, "DLCHECK_DISTRIBUTED": "0"}) is None


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({"RANK": "x", "WORLD_SIZE": "2"}, "RANK='x' is not an integer"),
        ({"RANK": "0", "WORLD_SIZE": "0"}, "WORLD_SIZE=0 must be at least 1"),
        ({"RANK": "2", "WORLD_SIZE": "2"}, "RANK=2 is not below WORLD_SIZE=2"),
        ({"RANK": "-1", "WORLD_SIZE": "2"}, "RANK=-1 must be at least 0"),
        ({"RANK": "0"}, "WORLD_SIZE is not"),
        ({"WORLD_SIZE": "2"}, "RANK is not"),
        ({"RANK": "1", "WORLD_SIZE": "2", "MASTER_PORT": "1"}, "MASTER_ADDR is not set"),
        ({"RANK": "1", "WORLD_SIZE": "2", "MASTER_ADDR": "h"}, "MASTER_PORT is not set"),
        (
            {"RANK": "1", "WORLD_SIZE": "2", "MASTER_ADDR": "h", "MASTER_PORT": "70000"},
            "not a TCP port",
        ),
        (
            {**TORCHRUN, "LOCAL_RANK": "2", "LOCAL_WORLD_SIZE": "2"},
            "LOCAL_RANK=2 is not below LOCAL_WORLD_SIZE=2",
        ),
        ({**SRUN, "SLURM_PROCID": "6"}, "SLURM_PROCID=6 is not below"),
        ({**SRUN, "SLURM_STEP_NODELIST": "gpu[01-"}, "Cannot read the SLURM node list"),
        ({**SRUN, "SLURM_JOB_ID": "abc"}, "MASTER_PORT"),
    ],
)
def test_malformed_values_are_usage_errors(env: dict[str, str], words: str) -> None:
    with pytest.raises(UsageError) as info:
        detect_launch(env)
    assert words in info.value.message
    assert info.value.hint
    assert int(info.value.exit_code) == 2


def test_slurm_srun_step() -> None:
    info = detect_launch(SRUN)
    assert info is not None
    assert (info.launcher, info.rank, info.world_size) == ("slurm", 5, 6)
    # The step's first node, not the job's.
    assert info.master_addr == "gpu02"
    assert info.master_port == slurm_port(123456) == 15000 + 123456 % 20000
    assert (info.local_rank, info.node_rank, info.local_world_size) == (1, 2, 2)
    assert info.run_id == "123456.0"


def test_slurm_respects_master_variables_and_job_nodelist() -> None:
    env = {**SRUN, "MASTER_ADDR": "login", "MASTER_PORT": "29400"}
    info = detect_launch(env)
    assert info is not None and (info.master_addr, info.master_port) == ("login", 29400)
    env = {k: v for k, v in SRUN.items() if k != "SLURM_STEP_NODELIST"}
    info = detect_launch(env)
    assert info is not None and info.master_addr == "gpu01"


def test_slurm_batch_script_itself_is_one_process() -> None:
    batch = {k: v for k, v in SRUN.items() if not k.startswith("SLURM_STEP")}
    assert detect_launch(batch) is None
    for step in ("batch", "4294967294", "extern"):
        assert detect_launch({**batch, "SLURM_STEP_ID": step, "SLURM_PROCID": "0"}) is None


def test_torchrun_inside_srun_is_read_as_torchrun() -> None:
    info = detect_launch({**SRUN, **TORCHRUN})
    assert info is not None and info.launcher == "torchrun" and info.rank == 3


@pytest.mark.parametrize(
    ("nodelist", "hosts"),
    [
        ("node01", ["node01"]),
        ("node[01-03,7]", ["node01", "node02", "node03", "node7"]),
        ("a[1-2],b3", ["a1", "a2", "b3"]),
        ("gpu-a[9-11]-ib", ["gpu-a9-ib", "gpu-a10-ib", "gpu-a11-ib"]),
        ("r[1-2]n[01-02]", ["r1n01", "r1n02", "r2n01", "r2n02"]),
        ("x[008-010],y", ["x008", "x009", "x010", "y"]),
    ],
)
def test_expand_nodelist(nodelist: str, hosts: list[str]) -> None:
    assert expand_nodelist(nodelist) == hosts


@pytest.mark.parametrize("bad", ["node[1-", "node1]", "node[a-b]", "node[3-1]", "", " , "])
def test_expand_nodelist_rejects_garbage(bad: str) -> None:
    with pytest.raises(UsageError):
        expand_nodelist(bad)


def test_timeout_from_env() -> None:
    assert timeout_from_env({}, default=60) == 60
    assert timeout_from_env({"DLCHECK_DIST_TIMEOUT": "2.5"}) == 2.5
    for bad in ("0", "-3", "soon"):
        with pytest.raises(UsageError):
            timeout_from_env({"DLCHECK_DIST_TIMEOUT": bad})
