"""End to end: `python -m dlcheck env` as real subprocesses (healthy, broken torch, secrets...).

The runs that import torch are started together once (a module fixture) to keep the suite fast.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dlcheck.cli import app

SECRETS = {
    "HF_TOKEN": "hf_abcdefghijklmnopqrstuvwx",
    "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "DATABASE_URL": "postgres://admin:Sup3rS3cretPw@db.internal:5432/app",
    "WANDB_API_KEY": "0123456789abcdef0123456789abcdef01234567",
    # Relevant variables that are listed: their secret parts must be masked.
    "TORCH_HUB_PROXY": "http://bob:Pr0xyPassw0rd@proxy.internal:3128",
    "HF_HUB_TOKEN_PATH": "hf_zyxwvutsrqponmlkjihgfedcba",
}
SECRET_VALUES = [
    "hf_abcdefghijklmnopqrstuvwx",
    "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "Sup3rS3cretPw",
    "0123456789abcdef0123456789abcdef01234567",
    "Pr0xyPassw0rd",
    "hf_zyxwvutsrqponmlkjihgfedcba",
]
BROKEN_CAUSE = "OSError: libcudart.so.12: cannot open shared object file: No such file or directory"


@dataclass
class Run:
    args: list[str]
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def flat(text: str) -> str:
    """Output with line wrapping undone (Rich wraps long lines to the terminal width)."""
    return " ".join(text.split())


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "JUPYTER_PATH"}}
    env.update(COLUMNS="120", **extra)
    return env


def _start(
    args: list[str], env: dict[str, str], preexec=None
) -> tuple[list[str], subprocess.Popen]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "dlcheck", "env", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=preexec,
    )
    return args, proc


def _finish(started: tuple[list[str], subprocess.Popen]) -> Run:
    args, proc = started
    out, err = proc.communicate(timeout=180)
    return Run(args, proc.returncode, out, err)


@pytest.fixture(scope="module")
def layout(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("env_e2e")
    broken = root / "broken" / "torch"
    broken.mkdir(parents=True)
    (broken / "__init__.py").write_text(f"raise OSError({BROKEN_CAUSE.split(': ', 1)[1]!r})\n")
    dup = root / "dup" / "torch-2.0.1.dist-info"
    dup.mkdir(parents=True)
    (dup / "METADATA").write_text("Metadata-Version: 2.1\nName: torch\nVersion: 2.0.1\n")
    home = root / "home"
    kernel = home / "jupyter" / "kernels" / "old-env"
    kernel.mkdir(parents=True)
    dead = home / "envs" / "old" / "bin" / "python"
    (kernel / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [str(dead), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "Old env",
                "language": "python",
            }
        )
    )
    libs = root / "libs"
    (libs / "hydra").mkdir(parents=True)
    (libs / "hydra" / "__init__.py").write_text("__version__ = '1.3.2'\n")
    (libs / "zmq").mkdir()
    (libs / "zmq" / "__init__.py").write_text(
        "raise ImportError('libzmq.so.5: cannot open shared object file')\n"
    )
    (libs / "torchvision").mkdir()
    (libs / "torchvision" / "__init__.py").write_text("__version__ = '0.28.0'\n")
    (libs / "torchvision" / "_C.so").write_text("not a shared library: built for another torch\n")
    for name, version in (
        ("hydra_core", "1.3.2"),
        ("ipykernel", "6.29.0"),
        ("pyzmq", "26.0.0"),
        ("torchvision", "0.28.0"),
    ):
        info = libs / f"{name}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    return {
        "libs": libs,
        "root": root,
        "broken": broken.parent,
        "dup": dup.parent,
        "home": home,
        "jupyter": home / "jupyter",
        "dead": dead,
    }


@pytest.fixture(scope="module")
def runs(layout) -> dict[str, Run]:
    """Every torch-importing run, started at once."""
    secret_env = _env(**SECRETS, HOME=str(layout["home"]), JUPYTER_PATH=str(layout["jupyter"]))
    started = {
        "json": _start(["--json"], secret_env),
        "default": _start([], secret_env),
        "verbose": _start(["-v"], secret_env),
        "markdown": _start(["--markdown"], secret_env),
        "broken": _start([], _env(PYTHONPATH=str(layout["broken"]))),
        "broken_v": _start(["-v"], _env(PYTHONPATH=str(layout["broken"]))),
        "dup": _start(["--check", "integrity", "--json"], _env(PYTHONPATH=str(layout["dup"]))),
        "nofile": _start([], _env(), _low_nofile),
        "libs": _start(
            ["--json", "--check", "libs", "--check", "jupyter"],
            _env(PYTHONPATH=str(layout["libs"]), JUPYTER_PATH=str(layout["root"] / "none")),
        ),
        "deep": _start(
            ["--json", "--deep", "--check", "libs.hydra"], _env(PYTHONPATH=str(layout["libs"]))
        ),
    }
    return {name: _finish(s) for name, s in started.items()}


def test_healthy_run_json_is_valid(runs) -> None:
    import jsonschema

    from dlcheck.env.records import SCHEMA_FILE

    r = runs["json"]
    assert r.returncode == 0, r.output
    doc = json.loads(r.stdout)  # exactly one document on stdout
    jsonschema.validate(doc, json.loads(SCHEMA_FILE.read_text()))
    assert doc["schema"] == "dlcheck.env/1" and doc["exit_code"] == 0
    assert len(doc["checks"]) >= 12
    statuses = {c["id"]: c["status"] for c in doc["checks"]}
    assert statuses["torch.import"] == "pass" and statuses["host.shm"] in {"pass", "warn"}
    assert doc["comparable"]["torch.version"].startswith("2.")
    assert doc["facts"]["torch"]["variant"] == "cpu"


def test_healthy_run_default_and_verbose(runs) -> None:
    d, v = runs["default"], runs["verbose"]
    assert d.returncode == 0 and v.returncode == 0, d.output
    assert "PyTorch build" in d.stdout and ("no issues found" in d.stdout or "warning" in d.stdout)
    assert "host.nofile" in v.stdout and "sharing_strategy" in v.stdout  # ids and facts with -v
    assert "Traceback" not in d.output


def test_secrets_never_reach_any_format(runs) -> None:
    for name in ("json", "default", "verbose", "markdown"):
        out = runs[name].output
        for secret in SECRET_VALUES:
            assert secret not in out, (name, secret)
    assert "HF_TOKEN" in runs["verbose"].stdout  # listed, with its value masked
    assert "****" in runs["json"].stdout


def test_markdown_hides_home_user_and_host(runs, layout) -> None:
    md = runs["markdown"].stdout
    assert md.startswith("#### `dlcheck env`")
    assert "~/jupyter/kernels/old-env/kernel.json" in md  # the dead kernel, home shown as ~
    assert str(layout["home"]) not in md
    host = socket.gethostname()
    if len(host) >= 3:
        assert host not in md


def test_dead_kernel_flagged_naming_its_interpreter(runs, layout) -> None:
    doc = json.loads(runs["json"].stdout)
    kernels = next(c for c in doc["checks"] if c["id"] == "jupyter.kernels")
    assert kernels["status"] == "warn" and str(layout["dead"]) in kernels["summary"]


def test_broken_torch_fails_with_cause_and_no_traceback(runs) -> None:
    r = runs["broken"]
    assert r.returncode == 1
    assert BROKEN_CAUSE in flat(r.stdout)
    assert "Traceback" not in r.output
    assert "Host limits" in r.stdout and "/dev/shm" in r.stdout  # the other checks still ran
    assert "Traceback" in runs["broken_v"].stdout  # -v shows it


def test_second_torch_dist_info_flagged(runs) -> None:
    r = runs["dup"]
    assert r.returncode == 1, r.output
    doc = json.loads(r.stdout)
    dup = next(c for c in doc["checks"] if c["id"] == "integrity.duplicates")
    assert dup["status"] == "fail" and "2.0.1" in dup["summary"]


def test_library_extension_and_zmq_checked_by_default(runs) -> None:
    r = runs["libs"]
    assert r.returncode == 1, r.output
    by_id = {c["id"]: c for c in json.loads(r.stdout)["checks"]}
    vision = by_id["libs.torchvision"]
    assert vision["status"] == "fail" and "C++ extension does not load" in vision["summary"]
    assert "_C.so" in vision["summary"]  # the loader's own error names the file
    hydra = by_id["libs.hydra"]
    assert hydra["status"] == "pass" and "hydra-core 1.3.2" in hydra["summary"]
    zmq = by_id["jupyter.zmq"]
    assert zmq["status"] == "fail" and "libzmq.so.5" in zmq["summary"]
    assert "pip install pyzmq" in zmq["fix"]


def test_deep_imports_libraries_in_a_second_child(runs) -> None:
    r = runs["deep"]
    assert r.returncode == 0, r.output
    doc = json.loads(r.stdout)
    modules = {m["module"]: m for m in doc["facts"]["torch"]["modules"]}
    assert modules["hydra"]["ok"] and modules["hydra"]["how"] == "import"
    assert modules["hydra"]["version"] == "1.3.2"


def _low_nofile() -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_NOFILE, (256, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))


def test_ulimit_256_warns_and_strict_fails(runs) -> None:
    plain = runs["nofile"]
    strict = _finish(_start(["--strict", "--json", "--check", "host"], _env(), _low_nofile))
    assert plain.returncode == 0, plain.output
    assert "open-files soft limit is 256" in flat(plain.stdout)
    assert strict.returncode == 1
    doc = json.loads(strict.stdout)
    assert doc["strict"] is True and doc["exit_code"] == 1
    assert next(c for c in doc["checks"] if c["id"] == "host.nofile")["status"] == "warn"


def test_import_timeout_fails_and_leaves_no_child(tmp_path: Path) -> None:
    import psutil

    pkg = tmp_path / "torch"
    pkg.mkdir()
    pidfile = tmp_path / "pid"
    (pkg / "__init__.py").write_text(
        f"import os, time\nopen({str(pidfile)!r}, 'w').write(str(os.getpid()))\ntime.sleep(120)\n"
    )
    t0 = time.monotonic()
    r = _finish(
        _start(["--timeout", "2", "--check", "torch.import"], _env(PYTHONPATH=str(tmp_path)))
    )
    assert time.monotonic() - t0 < 90  # not the import's 120 s (loose for a busy machine)
    assert r.returncode == 1
    assert "did not finish within 2 s" in flat(r.stdout)
    pid = int(pidfile.read_text())
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


# ---------------------------------------------------------------- CliRunner (no torch import)


def test_unknown_check_is_a_usage_error() -> None:
    r = CliRunner().invoke(app, ["env", "--check", "host.shm", "--check", "nope"])
    assert r.exit_code == 2
    assert "unknown check id: nope" in r.output and "--list-checks" in r.output


def test_json_and_markdown_together_is_a_usage_error() -> None:
    assert CliRunner().invoke(app, ["env", "--json", "--markdown"]).exit_code == 2


def test_list_checks() -> None:
    r = CliRunner().invoke(app, ["env", "--list-checks"])
    assert r.exit_code == 0
    for check_id in (
        "torch.import",
        "cuda.driver_floor",
        "host.shm",
        "jupyter.kernels",
        "libs.torchvision",
    ):
        assert check_id in r.output
    j = CliRunner().invoke(app, ["env", "--list-checks", "--json"])
    ids = [c["id"] for c in json.loads(j.stdout)["checks"]]
    assert len(ids) == len(set(ids)) >= 30


def test_check_group_runs_without_torch(monkeypatch) -> None:
    r = CliRunner().invoke(app, ["env", "--check", "host", "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert {c["id"].split(".")[0] for c in doc["checks"]} == {"host"}
    assert doc["facts"]["torch"] is None  # --check host does not wait for `import torch`


def test_python_api_with_fake_nvml() -> None:
    import dlcheck
    from dlcheck.env.nvml import FakeNvml
    from dlcheck.records import Status

    report = dlcheck.env(checks=["nvidia"], nvml=FakeNvml(fail={"init": 18}))
    assert dlcheck.env(checks="host.cpus").check("host.cpus") is not None  # callable twice
    c = report.check("nvidia.driver")
    assert c is not None and c.status is Status.FAIL and "Reboot" in (c.fix or "")
    assert report.exit_code == 1
    assert "<table>" in report._repr_html_()


def test_prestart_only_for_plain_env_runs(monkeypatch) -> None:
    from dlcheck.env import collect_torch as torchprobe

    started: list[str] = []

    class Fake:
        timeout = 0.0
        deep = False

        def kill(self) -> None:
            pass

    monkeypatch.setattr(torchprobe, "start_torch_probe", lambda **kw: started.append("x") or Fake())
    monkeypatch.setattr(torchprobe, "_PRESTARTED", None)
    main = "/x/src/dlcheck/__main__.py"
    for argv in (
        ["pytest", "env"],
        ["/venv/bin/dlcheck", "profile", "t:x"],
        ["/venv/bin/dlcheck", "env", "--help"],
        ["/venv/bin/dlcheck", "env", "--check", "host"],
        ["/venv/bin/dlcheck", "env", "--check=host"],
        ["/venv/bin/dlcheck", "env", "--list-checks"],
        ["/other/__main__.py", "env"],
    ):
        torchprobe.prestart_for_cli(argv)
    assert started == []
    torchprobe.prestart_for_cli([main, "env", "--json", "-v"])
    assert started == ["x"]
    probe = torchprobe.take_prestarted(7.0)
    assert probe is not None and probe.timeout == 7.0
    assert torchprobe.take_prestarted(1.0) is None


def test_usage_error_after_prestart_leaves_no_child(tmp_path: Path) -> None:
    import psutil

    pkg = tmp_path / "torch"
    pkg.mkdir()
    pidfile = tmp_path / "pid"
    (pkg / "__init__.py").write_text(
        f"import os, time\nopen({str(pidfile)!r}, 'w').write(str(os.getpid()))\ntime.sleep(120)\n"
    )
    r = _finish(_start(["--no-such-option"], _env(PYTHONPATH=str(tmp_path))))
    assert r.returncode == 2
    time.sleep(0.5)
    if pidfile.exists():
        pid = int(pidfile.read_text())
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
