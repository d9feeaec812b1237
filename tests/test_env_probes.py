"""Probes, NVML choke point, torch-child parsing, tables and the report object."""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from dlcheck.env import tables
from dlcheck.env.checks import evaluate
from dlcheck.env.collect import probe_dists, probe_envvars, probe_jupyter, probe_toolkit
from dlcheck.env.collect_torch import MARK, parse_output
from dlcheck.env.nvml import NvmlCallError, probe_nvml
from dlcheck.env.records import SCHEMA, EnvReport, comparable_from_facts
from dlcheck.env.run import facts_document
from dlcheck.host import NofileFacts
from dlcheck.records import Status
from env_fixtures import GIB, FakeGpu, FakeNvml, healthy, host, torch

# ---------------------------------------------------------------- NVML


def test_nvml_facts_from_fake() -> None:
    n = probe_nvml(FakeNvml(gpus=[FakeGpu(), FakeGpu("NVIDIA H100", 80 * GIB, (9, 0), mig=None)]))
    assert n.available and n.driver_version == "550.54.15" and n.cuda_driver_version == "12.4"
    assert [g.compute_capability for g in n.gpus] == [(8, 0), (9, 0)]
    assert n.gpus[1].mig_enabled is None  # NOT_SUPPORTED becomes "unknown", not an error


@pytest.mark.parametrize(
    ("code", "name", "words"),
    [
        (18, "NVML_ERROR_LIB_RM_VERSION_MISMATCH", "version mismatch"),
        (9, "NVML_ERROR_DRIVER_NOT_LOADED", "not loaded"),
        (12, "NVML_ERROR_LIBRARY_NOT_FOUND", "not found"),
        (4, "NVML_ERROR_NO_PERMISSION", "permission"),
    ],
)
def test_nvml_init_errors_map_to_causes(code: int, name: str, words: str) -> None:
    n = probe_nvml(FakeNvml(fail={"init": code}))
    assert not n.available and n.error_code == name and words in (n.error or "")


def test_nvml_lost_gpu_and_shutdown() -> None:
    fake = FakeNvml(fail={"handle": 15})
    n = probe_nvml(fake)
    assert not n.available and n.error_code == "NVML_ERROR_GPU_IS_LOST"
    assert n.driver_version == "550.54.15" and fake.shut_down


def test_nvml_without_pynvml_or_with_foreign_exception() -> None:
    class Broken(FakeNvml):
        def init(self) -> None:
            raise RuntimeError("weird")

    n = probe_nvml(Broken())
    assert not n.available and n.error_code == "NVML_ERROR_UNKNOWN" and "weird" in (n.error or "")
    assert NvmlCallError(18).value == 18


def test_real_nvml_here_never_raises() -> None:
    n = probe_nvml()
    assert n.available or n.error_code  # no GPU on this machine: a value, not an exception


# ---------------------------------------------------------------- torch child output


def _line(doc: dict) -> str:
    return MARK + json.dumps(doc) + "\n"


def test_parse_child_success_and_modules() -> None:
    lines = [
        "noise printed by sitecustomize\n",
        _line(
            {
                "kind": "torch",
                "ok": True,
                "version": "2.5.1+cu124",
                "cuda": "12.4",
                "cudnn": 90100,
                "arch_list": ["sm_80"],
                "import_seconds": 1.0,
            }
        ),
        _line(
            {
                "kind": "module",
                "module": "torchvision",
                "found": True,
                "ok": True,
                "version": "0.20.1",
            }
        ),
        _line({"kind": "module", "module": "timm", "found": False, "ok": False}),
    ]
    t = parse_output(lines, returncode=0, timed_out=False, timeout=60)
    assert t.ok and t.variant == "cu124" and t.arch_list == ("sm_80",)
    assert t.module("torchvision").version == "0.20.1" and not t.module("timm").found


def test_parse_child_import_error() -> None:
    lines = [
        _line(
            {
                "kind": "torch",
                "ok": False,
                "error": "OSError: libcudart.so.12: x",
                "traceback": "Traceback...",
            }
        )
    ]
    t = parse_output(lines, returncode=0, timed_out=False, timeout=60)
    assert not t.ok and t.error == "OSError: libcudart.so.12: x" and t.traceback == "Traceback..."


def test_parse_child_timeout_crash_and_exit() -> None:
    t = parse_output([], returncode=-9, timed_out=True, timeout=5)
    assert not t.ok and t.timed_out and "5 s" in (t.error or "")
    crash = parse_output([], returncode=-11, timed_out=False, timeout=5)
    assert "SIGSEGV" in (crash.error or "")
    died = parse_output([], returncode=3, timed_out=False, timeout=5, stderr="boom\nFatal: nope\n")
    assert "code 3" in (died.error or "") and "Fatal: nope" in (died.error or "")
    # torch imported, then a domain library hung: torch facts survive, the library is named.
    hung = parse_output(
        [_line({"kind": "torch", "ok": True, "version": "2.5.1"})],
        returncode=-9,
        timed_out=True,
        timeout=5,
        modules=("torchvision", "timm"),
    )
    assert hung.ok and hung.module("torchvision").error == "import timed out after 5 s"


def test_variant_names() -> None:
    assert torch(cuda=None).variant == "cpu"
    assert torch(cuda="11.8").variant == "cu118"
    assert torch(cuda=None, hip="6.2.41133").variant == "rocm6.2"


# ---------------------------------------------------------------- in-process probes


def _dist_info(root: Path, name: str, version: str, requires: list[str] | None = None) -> None:
    d = root / f"{name}-{version}.dist-info"
    d.mkdir(parents=True)
    meta = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    meta += "".join(f"Requires-Dist: {r}\n" for r in requires or [])
    (d / "METADATA").write_text(meta)
    (d / "WHEEL").write_text("Wheel-Version: 1.0\nTag: cp311-cp311-linux_x86_64\n")
    (d / "INSTALLER").write_text("pip\n")


def test_probe_dists_keeps_duplicates_in_path_order(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    _dist_info(
        a,
        "torch",
        "2.0.1",
        ["filelock", "triton==2.0.0; platform_system == 'Linux'", "sympy; extra == 'x'"],
    )
    _dist_info(b, "torch", "2.5.1")
    _dist_info(b, "Some_Other.Pkg", "1.0")
    d = probe_dists([str(a), str(b), str(a)], relevant={"torch"})
    assert [(x.name, x.version) for x in d.all_named("torch")] == [
        ("torch", "2.0.1"),
        ("torch", "2.5.1"),
    ]
    first = d.get("torch")
    assert first.installer == "pip" and first.wheel_tags == ("cp311-cp311-linux_x86_64",)
    assert [r.name for r in first.requires] == ["filelock", "triton"]  # extras dropped
    assert d.get("some-other-pkg") is not None


def test_probe_jupyter_finds_dead_and_own_kernels(tmp_path: Path) -> None:
    for name, argv0 in (
        ("dead", "/nonexistent/bin/python"),
        ("mine", sys.executable),
        ("native", "python3"),
    ):
        k = tmp_path / "kernels" / name
        k.mkdir(parents=True)
        (k / "kernel.json").write_text(
            json.dumps({"argv": [argv0, "-m", "ipykernel_launcher"], "display_name": name})
        )
    bad = tmp_path / "kernels" / "broken"
    bad.mkdir()
    (bad / "kernel.json").write_text("{not json")
    j = probe_jupyter([str(tmp_path)], environ={"PATH": "/usr/bin:/bin"})
    by = {k.name: k for k in j.kernels}
    assert not by["dead"].exists and by["dead"].argv0 == "/nonexistent/bin/python"
    assert by["mine"].exists and by["mine"].runs_this_env
    assert by["native"].exists
    assert by["broken"].error
    c = evaluate(healthy(jupyter=j), ["jupyter.kernels"])[0]
    assert (
        c.status is Status.WARN and str(tmp_path / "kernels" / "dead" / "kernel.json") in c.summary
    )


def test_probe_toolkit_finds_cuda_libs_on_ld_library_path(tmp_path: Path) -> None:
    lib = tmp_path / "lib64"
    lib.mkdir()
    (lib / "libcudart.so.12").write_text("")
    (lib / "libcudnn.so.9").write_text("")
    (lib / "libfoo.so").write_text("")
    home = tmp_path / "cuda"
    (home / "bin").mkdir(parents=True)
    (home / "version.json").write_text(json.dumps({"cuda": {"version": "12.4.1"}}))
    t = probe_toolkit(
        {"PATH": "/nonexistent", "LD_LIBRARY_PATH": f"{lib}:/nonexistent", "CUDA_HOME": str(home)}
    )
    assert t.cuda_lib_dirs == ((str(lib), ("cudart", "cudnn")),)
    assert t.cuda_home_version == "12.4.1" and t.nvcc_path is None


def test_probe_envvars_redacts_secrets() -> None:
    env = {
        "HF_TOKEN": "hf_abcdefghijklmnopqrstuvwx",
        "HF_HOME": "/data/hf",
        "NCCL_DEBUG": "INFO",
        "PYTORCH_CUDA_ALLOC_CONF": "expandable_segments:True",
        "UNRELATED": "x",
    }
    v = dict(probe_envvars(env).variables)
    assert v["HF_TOKEN"] == "****" and v["HF_HOME"] == "/data/hf" and v["NCCL_DEBUG"] == "INFO"
    assert "UNRELATED" not in v and "hf_abcdefghijklmnopqrstuvwx" not in json.dumps(v)


# ---------------------------------------------------------------- tables


def test_tables() -> None:
    assert tables.driver_at_least("525.60.13", "525.60.13")
    assert not tables.driver_at_least("470.82.01", "525.60.13")
    assert tables.driver_floor("12.8").linux == "525.60.13"
    assert tables.driver_floor("10.2") is None
    assert tables.expected_pairing("torchvision", "2.5.1+cu124").expected == "0.20"
    future = tables.expected_pairing("torchvision", "2.13.0")
    assert future.expected == "0.28" and future.note == "extrapolated"
    assert tables.expected_pairing("torchaudio", "2.4.0").expected == "2.4"
    assert tables.expected_pairing("timm", "2.4.0") is None
    assert tables.arch_support((8, 6), ("sm_80",)) == "native"
    assert tables.arch_support((9, 0), ("sm_80", "compute_80")) == "ptx"
    assert tables.arch_support((9, 0), ("sm_90a",)) == "none"
    assert tables.arch_support((12, 0), ("sm_90", "sm_100")) == "none"
    for row in tables.DRIVER_FLOORS:
        assert row.source


# ---------------------------------------------------------------- report


def _report(facts) -> EnvReport:
    return EnvReport(
        tuple(evaluate(facts)),
        facts_document(facts),
        comparable_from_facts(facts),
        {"dlcheck_version": "0.1.0"},
    )


def test_comparable_facts_keys_and_values() -> None:
    r = _report(healthy())
    c = r.comparable_facts()
    assert set(c) >= {
        "host",
        "python.version",
        "torch.version",
        "torch.cuda",
        "cudnn.version",
        "nccl.version",
        "nvidia.driver",
        "gpu.models",
        "gpu.count",
        "shm.total_bytes",
        "shm.free_bytes",
        "nofile.soft",
        "nofile.hard",
        "cpu.usable",
        "memory.total_bytes",
        "mp.start_method",
        "torch.sharing_strategy",
    }
    assert c["gpu.models"] == "NVIDIA A100-SXM4-80GB" and c["gpu.count"] == 1
    assert (
        c["nccl.version"] == "2.21.5"
        and c["cudnn.version"] == "9.1.0"
        and c["host"] == "gpu-node-7"
    )
    cpu = _report(
        healthy(torch=torch(cuda=None, nccl=None), nvml=probe_nvml(FakeNvml(fail={"init": 12})))
    )
    assert (
        cpu.comparable_facts()["gpu.models"] is None
        and cpu.comparable_facts()["nccl.version"] is None
    )


def test_exit_codes_and_roundtrip() -> None:
    warn = _report(healthy(host=host(nofile=NofileFacts(256, 256))))
    assert warn.exit_code == 0 and replace(warn, strict=True).exit_code == 1
    doc = json.loads(json.dumps(warn.to_dict()))
    assert doc["schema"] == SCHEMA and doc["summary"]["warn"] == 1
    back = EnvReport.from_dict(doc)
    assert back.checks == warn.checks and back.comparable_facts() == warn.comparable_facts()
    assert replace(back, strict=True).exit_code == 1
    with pytest.raises(ValueError):
        EnvReport.from_dict({"schema": "other/1"})


def test_document_validates_against_schema() -> None:
    import jsonschema

    from dlcheck.env.records import SCHEMA_FILE

    schema = json.loads(SCHEMA_FILE.read_text())
    jsonschema.validate(
        json.loads(
            json.dumps(_report(healthy()).to_dict() | {"created_at": "x", "duration_s": 1.0})
        ),
        schema,
    )
