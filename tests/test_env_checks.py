"""Every env verdict from fake facts (no torch import, no GPU)."""

from __future__ import annotations

import dataclasses

import pytest

from dlcheck.env.checks import REGISTRY, Check, evaluate, select
from dlcheck.env.records import EnvVarFacts, JupyterFacts, KernelSpec
from dlcheck.host import CpuFacts, NofileFacts, ShmFacts
from dlcheck.records import Status
from env_fixtures import (
    GIB,
    FakeGpu,
    dist,
    dists,
    healthy,
    host,
    module,
    nvml,
    python,
    toolkit,
    torch,
)


def one(facts, check_id: str) -> Check:
    (result,) = evaluate(facts, [check_id])
    return result


def test_healthy_machine_has_no_problem() -> None:
    results = evaluate(healthy())
    assert len(results) == len(REGISTRY) >= 30
    bad = [
        (c.id, c.summary) for c in results if c.status in {Status.WARN, Status.FAIL, Status.ERROR}
    ]
    assert bad == []
    assert len({c.id for c in results}) == len(results)


def test_every_problem_has_a_fix() -> None:
    scenarios = [
        healthy(nvml=nvml(driver="470.82.01", cuda_driver=11040)),
        healthy(torch=torch(cuda=None, version="2.5.1+cpu", cudnn=None, arch_list=())),
        healthy(
            host=host(
                shm=ShmFacts("/dev/shm", 64 * 1024**2, 60 * 1024**2), nofile=NofileFacts(256, 4096)
            )
        ),
    ]
    for facts in scenarios:
        for c in evaluate(facts):
            if c.status in {Status.WARN, Status.FAIL}:
                assert c.fix, c.id


# ---------------------------------------------------------------- cross-layer


def test_driver_470_with_cu12_wheel_fails_with_the_floor() -> None:
    facts = healthy(
        nvml=nvml(driver="470.82.01", cuda_driver=11040),
        torch=torch(cuda_available=False, device_count=0),
    )
    c = one(facts, "cuda.driver_floor")
    assert c.status is Status.FAIL
    assert "470.82.01" in c.summary and "525.60.13" in c.summary
    assert "cu118" in c.fix  # a wheel the driver supports
    assert "CUDA Toolkit Release Notes" in c.facts["source"]
    avail = one(facts, "cuda.available")
    assert avail.status is Status.FAIL and "driver is too old" in avail.summary


@pytest.mark.parametrize(
    ("cuda", "driver", "ok"),
    [
        ("11.8", "450.80.02", True),
        ("11.8", "450.51", False),
        ("12.1", "525.60.13", True),
        ("13.0", "575.51", False),
        ("13.0", "580.65.06", True),
    ],
)
def test_driver_floor_table(cuda: str, driver: str, ok: bool) -> None:
    c = one(healthy(torch=torch(cuda=cuda), nvml=nvml(driver=driver)), "cuda.driver_floor")
    assert (c.status is Status.PASS) is ok


def test_minor_version_compatibility_is_explained() -> None:
    c = one(
        healthy(torch=torch(cuda="12.8"), nvml=nvml(driver="535.104.05", cuda_driver=12020)),
        "cuda.driver_floor",
    )
    assert c.status is Status.PASS and "minor-version compatibility" in c.summary


def test_cpu_wheel_with_gpu_fails() -> None:
    facts = healthy(
        torch=torch(cuda=None, version="2.5.1+cpu", cudnn=None, arch_list=(), cuda_available=False)
    )
    c = one(facts, "cuda.cpu_wheel")
    assert c.status is Status.FAIL
    assert "2.5.1+cpu" in c.summary and "whl/cu124" in c.fix
    assert one(facts, "cuda.cudnn").status is Status.SKIP
    no_gpu = dataclasses.replace(facts, nvml=nvml(gpus=[]))
    assert one(no_gpu, "cuda.cpu_wheel").status is Status.PASS


def test_sm120_gpu_with_wheel_lacking_it_fails() -> None:
    facts = healthy(nvml=nvml(gpus=[FakeGpu("NVIDIA GeForce RTX 5090", 32 * GIB, (12, 0))]))
    c = one(facts, "cuda.arch_list")
    assert c.status is Status.FAIL
    assert "sm_120" in c.summary and "no kernel image" in c.summary
    assert "cu128" in c.fix


def test_arch_list_ptx_only_warns_and_same_major_passes() -> None:
    ptx = healthy(
        torch=torch(arch_list=(*torch().arch_list, "compute_90")),
        nvml=nvml(gpus=[FakeGpu("X", GIB, (12, 0))]),
    )
    assert one(ptx, "cuda.arch_list").status is Status.WARN
    ada = healthy(
        nvml=nvml(gpus=[FakeGpu("NVIDIA L4", 24 * GIB, (8, 9))])
    )  # sm_86 cubin runs on sm_89
    assert one(ada, "cuda.arch_list").status is Status.PASS


def test_visible_devices_hiding_every_gpu_fails() -> None:
    for value in ("", "-1", "4"):
        facts = healthy(
            envvars=EnvVarFacts((("CUDA_VISIBLE_DEVICES", value),)),
            torch=torch(cuda_available=False, device_count=0),
        )
        c = one(facts, "cuda.visible_devices")
        assert c.status is Status.FAIL, value
        assert "hides every GPU" in c.summary
        assert "CUDA_VISIBLE_DEVICES hides every GPU" in one(facts, "cuda.available").summary
    ok = healthy(envvars=EnvVarFacts((("CUDA_VISIBLE_DEVICES", "0"),)))
    assert one(ok, "cuda.visible_devices").status is Status.PASS
    uuid = healthy(envvars=EnvVarFacts((("CUDA_VISIBLE_DEVICES", "GPU-1234"),)))
    assert one(uuid, "cuda.visible_devices").status is Status.PASS


def test_cuda_unavailable_with_gpus_gives_the_cause() -> None:
    facts = healthy(
        torch=torch(
            cuda_available=False,
            device_count=0,
            cuda_init_error="RuntimeError: Found no NVIDIA driver on your system.",
        )
    )
    c = one(facts, "cuda.available")
    assert c.status is Status.FAIL and "Found no NVIDIA driver" in c.summary


def test_cuda_build_without_gpu_is_info() -> None:
    c = one(
        healthy(nvml=nvml(fail={"init": 12}), torch=torch(cuda_available=False, device_count=0)),
        "cuda.available",
    )
    assert c.status is Status.INFO


def test_cudnn_missing_mismatched_or_broken() -> None:
    assert one(healthy(torch=torch(cudnn=None)), "cuda.cudnn").status is Status.FAIL
    broken = one(
        healthy(torch=torch(cudnn=None, cudnn_error="RuntimeError: cuDNN version incompatibility")),
        "cuda.cudnn",
    )
    assert broken.status is Status.FAIL and "incompatibility" in broken.summary
    shadowed = healthy(torch=torch(cudnn=8902))
    c = one(shadowed, "cuda.cudnn")
    assert c.status is Status.FAIL and "8.9.2" in c.summary and "9.1.0.70" in c.summary
    assert one(healthy(), "cuda.cudnn").summary == "cuDNN 9.1.0"


# ---------------------------------------------------------------- NVML


def test_nvml_version_mismatch_fails_with_reboot_fix() -> None:
    facts = healthy(nvml=nvml(fail={"init": 18}))
    c = one(facts, "nvidia.driver")
    assert c.status is Status.FAIL
    assert "NVML_ERROR_LIB_RM_VERSION_MISMATCH" in c.summary and "mismatch" in c.summary
    assert "Reboot" in c.fix and "modprobe nvidia" in c.fix
    assert one(facts, "nvidia.gpus").status is Status.SKIP


def test_nvml_absent_is_skip_and_driver_not_loaded_depends_on_build() -> None:
    assert one(healthy(nvml=nvml(fail={"init": 12})), "nvidia.driver").status is Status.SKIP
    not_loaded = healthy(nvml=nvml(fail={"init": 9}))
    assert one(not_loaded, "nvidia.driver").status is Status.FAIL
    cpu = dataclasses.replace(not_loaded, torch=torch(cuda=None, version="2.5.1+cpu"))
    assert one(cpu, "nvidia.driver").status is Status.WARN


def test_gpus_listed_with_mig() -> None:
    c = one(
        healthy(
            nvml=nvml(
                gpus=[FakeGpu(mig=1), FakeGpu(name="NVIDIA H100 80GB HBM3", capability=(9, 0))]
            )
        ),
        "nvidia.gpus",
    )
    assert c.status is Status.PASS
    assert "2 GPUs" in c.summary and "MIG on" in c.summary and "sm_90" in c.summary
    assert "MIG" in c.fix


# ---------------------------------------------------------------- Python, integrity


def test_torch_built_for_another_python_fails() -> None:
    d = dists()
    torch_dist = dataclasses.replace(d.dists[0], wheel_tags=("cp310-cp310-linux_x86_64",))
    c = one(
        healthy(dists=dataclasses.replace(d, dists=(torch_dist, *d.dists[1:]))),
        "python.torch_support",
    )
    assert c.status is Status.FAIL and "cp310" in c.summary and "cp311" in c.summary


def test_torch_python_table() -> None:
    d = dists(*())
    old = dataclasses.replace(d.dists[0], version="2.0.1", wheel_tags=())
    c = one(
        healthy(
            python=python(version="3.12.1", abi_tag="cp312"),
            dists=dataclasses.replace(d, dists=(old,)),
        ),
        "python.torch_support",
    )
    assert c.status is Status.WARN and "3.8–3.11" in c.summary


def test_broken_requirements() -> None:
    facts = healthy(dists=dists(dist("torchvision", "0.20.1", requires=("torch==2.4.1",))))
    c = one(facts, "python.requirements")
    assert c.status is Status.FAIL and "torchvision 0.20.1 requires torch==2.4.1" in c.summary
    minor = healthy(dists=dists(dist("timm", "1.0.0", requires=("safetensors",))))
    m = one(minor, "python.requirements")
    assert (
        m.status is Status.WARN
        and "not installed" in m.summary
        and "pip install 'safetensors'" in m.fix
    )


def test_two_torch_installs_named_with_versions_and_locations() -> None:
    d = dists(dist("torch", "2.0.1", location="/home/alice/.local/lib/python3.11/site-packages"))
    c = one(healthy(dists=d), "integrity.duplicates")
    assert c.status is Status.FAIL
    assert "2.0.1 at /home/alice/.local" in c.summary and "2.5.1+cu124 at" in c.summary
    same = dists(dist("numpy", "1.26.4"), dist("numpy", "1.26.4", location="/opt/other"))
    assert one(healthy(dists=same), "integrity.duplicates").status is Status.WARN


def test_local_version_suffix_is_not_a_mismatch() -> None:
    # download.pytorch.org wheels: metadata "2.11.0", torch.__version__ "2.11.0+cu130".
    d = dists()
    plain = dataclasses.replace(d.dists[0], version="2.5.1")
    facts = healthy(dists=dataclasses.replace(d, dists=(plain, *d.dists[1:])))
    assert one(facts, "integrity.duplicates").status is Status.PASS


def test_metadata_disagreeing_with_imported_torch_fails() -> None:
    d = dists()
    stale = dataclasses.replace(d.dists[0], version="2.0.1", location="/tmp/pp")
    c = one(healthy(dists=dataclasses.replace(d, dists=(stale, *d.dists))), "integrity.duplicates")
    assert (
        c.status is Status.FAIL
        and "2.0.1" in c.summary
        and "imported torch is 2.5.1+cu124" in c.summary
    )


def test_torch_from_user_site_or_outside_env_warns() -> None:
    user = one(
        healthy(
            torch=torch(file="/home/alice/.local/lib/python3.11/site-packages/torch/__init__.py")
        ),
        "integrity.torch_location",
    )
    assert user.status is Status.WARN and "user site" in user.summary
    outside = one(
        healthy(torch=torch(file="/opt/pytorch/torch/__init__.py")), "integrity.torch_location"
    )
    assert outside.status is Status.WARN and "/opt/pytorch/torch" in outside.summary


def test_no_venv_is_info() -> None:
    c = one(
        healthy(python=python(venv=False, prefix="/usr", base_prefix="/usr")), "python.environment"
    )
    assert c.status is Status.INFO and c.fix
    conda = one(healthy(python=python(conda_env="dl", venv=False)), "python.environment")
    assert conda.status is Status.PASS and "conda env 'dl'" in conda.summary


def test_torch_import_failure_and_dependent_checks_skip() -> None:
    failed = torch(
        ok=False,
        version=None,
        error="OSError: libcudart.so.12: cannot open shared object file: No such file or directory",
        traceback="Traceback ...",
    )
    facts = healthy(torch=failed)
    c = one(facts, "torch.import")
    assert c.status is Status.FAIL
    assert c.summary.endswith(
        "libcudart.so.12: cannot open shared object file: No such file or directory"
    )
    assert "--force-reinstall torch" in c.fix and c.detail == "Traceback ..."
    for other in ("cuda.driver_floor", "cuda.arch_list", "torch.build", "libs.torchvision"):
        assert one(facts, other).status is Status.SKIP, other


def test_torch_import_timeout_and_missing_torch() -> None:
    t = one(
        healthy(
            torch=torch(ok=False, timed_out=True, error="`import torch` did not finish within 5 s")
        ),
        "torch.import",
    )
    assert t.status is Status.FAIL and "--timeout" in t.fix
    missing = one(
        healthy(torch=torch(ok=False, error="ModuleNotFoundError: No module named 'torch'")),
        "torch.import",
    )
    assert "pytorch.org" in missing.fix
    source_tree = one(
        healthy(torch=torch(ok=False, error="ModuleNotFoundError: No module named 'torch._C'")),
        "torch.import",
    )
    assert "source tree" in source_tree.fix


# ---------------------------------------------------------------- libraries


def test_torchvision_mismatch_fails_with_the_paired_release() -> None:
    facts = healthy(
        dists=dists(dist("torchvision", "0.15.2")),
        torch=torch(modules=(module("torchvision", version="0.15.2"),)),
    )
    c = one(facts, "libs.torchvision")
    assert c.status is Status.FAIL
    assert "0.15.2" in c.summary and "0.20" in c.summary
    assert "torchvision==0.20.*" in c.fix
    assert "pytorch/vision" in c.facts["source"]


def test_torchvision_paired_passes_and_import_error_fails() -> None:
    ok = healthy(
        dists=dists(dist("torchvision", "0.20.1+cu124")),
        torch=torch(modules=(module("torchvision"),)),
    )
    assert one(ok, "libs.torchvision").status is Status.PASS
    nms = "RuntimeError: operator torchvision::nms does not exist"
    bad = healthy(
        dists=dists(dist("torchvision", "0.20.1")),
        torch=torch(modules=(module("torchvision", ok=False, error=nms),)),
    )
    c = one(bad, "libs.torchvision")
    assert c.status is Status.FAIL and nms in c.summary and "torchvision==0.20.*" in c.fix
    assert c.detail and "Traceback" in c.detail


def test_torchaudio_and_torchtext_pairing() -> None:
    audio = healthy(
        dists=dists(dist("torchaudio", "2.4.0")), torch=torch(modules=(module("torchaudio"),))
    )
    assert one(audio, "libs.torchaudio").status is Status.FAIL
    text = healthy(
        dists=dists(dist("torchtext", "0.18.0")), torch=torch(modules=(module("torchtext"),))
    )
    t = one(text, "libs.torchtext")
    assert t.status is Status.WARN and "0.18" in t.summary


def test_untied_library_reports_version() -> None:
    facts = healthy(
        dists=dists(dist("hydra-core", "1.3.2")),
        torch=torch(modules=(module("hydra", version="1.3.2"),)),
    )
    c = one(facts, "libs.hydra")
    assert c.status is Status.PASS and "hydra-core 1.3.2" in c.summary


# ---------------------------------------------------------------- Jupyter


def _kernel(name: str, argv0: str, exists: bool, mine: bool = False) -> KernelSpec:
    return KernelSpec(
        name, f"/k/{name}/kernel.json", name, argv0, argv0 if exists else None, exists, mine
    )


def test_dead_kernel_warns_naming_its_interpreter() -> None:
    j = JupyterFacts(
        ("/k",),
        (
            _kernel("old", "/envs/gone/bin/python", False),
            _kernel("dl", "/envs/dl/bin/python", True, True),
        ),
    )
    c = one(healthy(jupyter=j), "jupyter.kernels")
    assert c.status is Status.WARN
    assert "/envs/gone/bin/python" in c.summary and "/k/old/kernel.json" in c.summary
    assert "jupyter kernelspec remove old" in c.fix
    assert (
        one(healthy(jupyter=j), "jupyter.this_env").summary == "kernel 'dl' runs this environment"
    )


def test_ipykernel_without_kernel_and_broken_zmq() -> None:
    d = dists(dist("ipykernel", "6.29.0"), dist("pyzmq", "26.0.0"))
    zmq_err = "ImportError: libzmq.so.5: cannot open shared object file"
    facts = healthy(dists=d, torch=torch(modules=(module("zmq", ok=False, error=zmq_err),)))
    z = one(facts, "jupyter.zmq")
    assert z.status is Status.FAIL and zmq_err in z.summary and "pip install pyzmq" in z.fix
    this = one(facts, "jupyter.this_env")
    assert this.status is Status.INFO and "ipykernel install --user --name dl" in this.fix


# ---------------------------------------------------------------- host


def test_docker_64mb_shm_fails_with_shm_size() -> None:
    c = one(healthy(host=host(shm=ShmFacts("/dev/shm", 64 * 1024**2, 64 * 1024**2))), "host.shm")
    assert c.status is Status.FAIL and "64 MiB" in c.summary and "--shm-size" in c.fix
    small = one(
        healthy(host=host(shm=ShmFacts("/dev/shm", 512 * 1024**2, 500 * 1024**2))), "host.shm"
    )
    assert small.status is Status.WARN
    full = one(healthy(host=host(shm=ShmFacts("/dev/shm", 16 * GIB, 100 * 1024**2))), "host.shm")
    assert full.status is Status.WARN and "almost full" in full.summary
    assert (
        one(healthy(host=host(shm=ShmFacts("/dev/shm", None, None))), "host.shm").status
        is Status.SKIP
    )


def test_nofile_256_warns_with_fix() -> None:
    c = one(healthy(host=host(nofile=NofileFacts(256, 1048576))), "host.nofile")
    assert c.status is Status.WARN and "256" in c.summary and "ulimit -n 65536" in c.fix
    hard = one(healthy(host=host(nofile=NofileFacts(256, 256))), "host.nofile")
    assert "limits.conf" in hard.fix and "ulimit -n 256" not in hard.fix
    assert (
        one(healthy(host=host(nofile=NofileFacts(1024, 4096))), "host.nofile").status is Status.PASS
    )


def test_cgroup_quota_of_2_on_64_cpu_affinity_warns() -> None:
    c = one(healthy(host=host(cpu=CpuFacts(64, 64, 2.0, 2))), "host.cpus")
    assert c.status is Status.WARN
    assert c.summary.startswith("2 usable CPUs") and "64" in c.summary
    assert "OMP_NUM_THREADS=2" in c.fix
    assert c.facts["usable"] == 2 and c.facts["limited_by"] == "cgroup quota"
    affinity = one(healthy(host=host(cpu=CpuFacts(64, 4, None, 2))), "host.cpus")
    assert affinity.status is Status.PASS and "affinity" in affinity.summary


def test_low_memory_warns() -> None:
    from dlcheck.host import MemoryFacts

    c = one(healthy(host=host(memory=MemoryFacts(64 * GIB, 10 * GIB, 32 * GIB))), "host.memory")
    assert c.status is Status.PASS and "cgroup limit 32.0 GiB" in c.summary
    low = one(healthy(host=host(memory=MemoryFacts(64 * GIB, 1 * GIB, 32 * GIB))), "host.memory")
    assert low.status is Status.WARN


# ---------------------------------------------------------------- toolkit, env vars


def test_toolkit_is_reported_as_the_build_toolkit() -> None:
    c = one(
        healthy(toolkit=toolkit(nvcc_path="/usr/local/cuda/bin/nvcc", nvcc_version="12.1")),
        "toolkit.nvcc",
    )
    assert (
        c.status is Status.INFO
        and "building extensions" in c.summary
        and "own CUDA 12.4 runtime" in c.summary
    )
    major = one(
        healthy(toolkit=toolkit(nvcc_path="/usr/local/cuda/bin/nvcc", nvcc_version="11.8")),
        "toolkit.nvcc",
    )
    assert major.status is Status.WARN
    gone = one(healthy(toolkit=toolkit(cuda_home="/nonexistent/cuda")), "toolkit.nvcc")
    assert gone.status is Status.WARN and "/nonexistent/cuda" in gone.summary


def test_ld_library_path_shadowing_warns() -> None:
    tk = toolkit(
        ld_library_path=("/usr/local/cuda/lib64",),
        cuda_lib_dirs=(("/usr/local/cuda/lib64", ("cudart", "cudnn")),),
    )
    c = one(healthy(toolkit=tk), "toolkit.ld_library_path")
    assert c.status is Status.WARN and "/usr/local/cuda/lib64 (cudart, cudnn)" in c.summary


def test_env_vars_info_and_launch_blocking_warns() -> None:
    c = one(
        healthy(envvars=EnvVarFacts((("OMP_NUM_THREADS", "4"), ("HF_TOKEN", "****")))),
        "envvars.relevant",
    )
    assert c.status is Status.INFO and c.facts["variables"]["HF_TOKEN"] == "****"
    assert (
        one(
            healthy(envvars=EnvVarFacts((("CUDA_LAUNCH_BLOCKING", "1"),))), "envvars.relevant"
        ).status
        is Status.WARN
    )


# ---------------------------------------------------------------- selection and robustness


def test_select_by_id_group_and_unknown() -> None:
    assert [s.id for s in select(["host.shm"])] == ["host.shm"]
    assert {s.id for s in select(["host"])} == {s.id for s in REGISTRY if s.group == "host"}
    with pytest.raises(KeyError) as exc:
        select(["host.shm", "nope"])
    assert exc.value.args[0] == ["nope"]


def test_missing_required_facts_skip_and_crashing_check_is_error(monkeypatch) -> None:
    from dlcheck.env import checks

    c = one(dataclasses.replace(healthy(), host=None), "host.shm")
    assert c.status is Status.SKIP and "not collected" in c.summary
    spec = checks.SPECS["host.shm"]

    def boom(_facts):
        raise ValueError("bug")

    monkeypatch.setitem(checks.SPECS, "host.shm", dataclasses.replace(spec, fn=boom))
    monkeypatch.setattr(checks, "REGISTRY", [checks.SPECS["host.shm"]])
    (err,) = checks.evaluate(healthy(), ["host.shm"])
    assert err.status is Status.ERROR and "ValueError: bug" in err.summary


def test_extension_load_failure_fails_with_the_paired_release() -> None:
    from dlcheck.env.records import ModuleImport

    err = "OSError: Could not load this library: /x/torchvision/_C.so (OSError: undefined symbol)"
    ext = ModuleImport("torchvision", found=True, ok=False, error=err, how="extension")
    facts = healthy(dists=dists(dist("torchvision", "0.20.1")), torch=torch(modules=(ext,)))
    c = one(facts, "libs.torchvision")
    assert c.status is Status.FAIL
    assert "C++ extension does not load" in c.summary and "undefined symbol" in c.summary
    assert "torchvision==0.20.*" in c.fix


def test_a_failed_record_wins_over_a_successful_one() -> None:
    from dlcheck.env.records import ModuleImport

    ok_ext = ModuleImport("torchvision", found=True, ok=True, how="extension")
    bad_import = module("torchvision", ok=False, error="RuntimeError: boom")
    t = torch(modules=(ok_ext, bad_import))
    assert t.module("torchvision") is bad_import
    assert torch(modules=(ok_ext,)).module("torchvision") is ok_ext
    assert torch().module("torchvision") is None
