"""``import torch`` in a child process, so a broken or hanging torch cannot take dlcheck down.

The child inherits the environment (a broken torch on PYTHONPATH is seen exactly as the user's
scripts see it), prints one marked JSON line with the torch facts as soon as it has them, then
one line per domain library it imports. A crash or timeout therefore loses only what was not
yet printed.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

from dlcheck.env.facts import ModuleImport, TorchFacts

MARK = "@@dlcheck-env@@ "

# Modules imported after torch when installed: (module, needs torch).
DOMAIN_MODULES: tuple[tuple[str, bool], ...] = (
    ("torchvision", True),
    ("torchaudio", True),
    ("torchtext", True),
    ("lightning", True),
    ("pytorch_lightning", True),
    ("timm", True),
    ("transformers", False),
    ("hydra", False),
    ("tensorboard", False),
    ("tensorboardX", False),
    ("ipykernel", False),
    ("zmq", False),
)

CHILD_SCRIPT = r"""
import json, sys, time, traceback
MARK = "@@dlcheck-env@@ "
def emit(doc):
    sys.stdout.write(MARK + json.dumps(doc) + "\n")
    sys.stdout.flush()
def cause(exc):
    return "".join(traceback.format_exception_only(type(exc), exc)).strip().splitlines()[-1]
def tb(exc):
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
t0 = time.perf_counter()
try:
    import torch
except BaseException as exc:
    emit({"kind": "torch", "ok": False, "error": cause(exc), "traceback": tb(exc),
          "import_seconds": time.perf_counter() - t0})
    torch = None
if torch is not None:
    d = {"kind": "torch", "ok": True, "import_seconds": time.perf_counter() - t0}
    def grab(key, fn):
        try:
            d[key] = fn()
        except BaseException as exc:
            d[key + "_error"] = cause(exc)
    grab("version", lambda: str(torch.__version__))
    grab("file", lambda: torch.__file__)
    grab("cuda", lambda: torch.version.cuda)
    grab("hip", lambda: getattr(torch.version, "hip", None))
    grab("cudnn", lambda: torch.backends.cudnn.version())
    grab("cuda_available", lambda: bool(torch.cuda.is_available()))
    grab("device_count", lambda: int(torch.cuda.device_count()))
    grab("arch_list", lambda: list(torch.cuda.get_arch_list()))
    if (torch.version.cuda or getattr(torch.version, "hip", None)) and not d.get("cuda_available"):
        try:
            torch.cuda.init()
        except BaseException as exc:
            d["cuda_init_error"] = cause(exc)
    if torch.version.cuda:
        grab("nccl", lambda: ".".join(str(x) for x in torch.cuda.nccl.version()))
    grab("sharing_strategy", lambda: torch.multiprocessing.get_sharing_strategy())
    grab("num_threads", lambda: torch.get_num_threads())
    emit(d)
import importlib.util
for name in json.loads(sys.argv[1]):
    t1 = time.perf_counter()
    try:
        found = importlib.util.find_spec(name) is not None
    except BaseException:
        found = True
    if not found:
        emit({"kind": "module", "module": name, "found": False, "ok": False})
        continue
    try:
        mod = __import__(name)
        emit({"kind": "module", "module": name, "found": True, "ok": True,
              "version": str(getattr(mod, "__version__", "") or "") or None,
              "file": getattr(mod, "__file__", None),
              "seconds": time.perf_counter() - t1})
    except BaseException as exc:
        emit({"kind": "module", "module": name, "found": True, "ok": False,
              "error": cause(exc), "traceback": tb(exc), "seconds": time.perf_counter() - t1})
"""


@dataclass
class TorchProbe:
    """A running torch child. :meth:`result` waits for it (up to the timeout) and parses it."""

    proc: subprocess.Popen[str] | None
    timeout: float
    modules: tuple[str, ...]
    started: float = field(default_factory=time.monotonic)
    _lines: list[str] = field(default_factory=list)
    _stderr: list[str] = field(default_factory=list)
    _threads: list[threading.Thread] = field(default_factory=list)
    start_error: str | None = None

    def _pump(self) -> None:
        assert self.proc is not None and self.proc.stdout and self.proc.stderr
        out = threading.Thread(target=_drain, args=(self.proc.stdout, self._lines), daemon=True)
        err = threading.Thread(target=_drain, args=(self.proc.stderr, self._stderr), daemon=True)
        out.start()
        err.start()
        self._threads = [out, err]

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(OSError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            with contextlib.suppress(Exception):
                self.proc.wait(timeout=5)

    def result(self) -> TorchFacts:
        if self.proc is None:
            return TorchFacts(ran=True, ok=False, error=self.start_error)
        timed_out = False
        try:
            self.proc.wait(timeout=max(0.0, self.timeout - (time.monotonic() - self.started)))
        except subprocess.TimeoutExpired:
            timed_out = True
            self.kill()
        finally:
            # Never leave the child behind (Ctrl-C included).
            self.kill()
        for t in self._threads:
            t.join(timeout=2)
        return parse_output(
            self._lines,
            returncode=self.proc.returncode,
            timed_out=timed_out,
            timeout=self.timeout,
            stderr="".join(self._stderr),
            modules=self.modules,
        )


def _drain(stream, sink: list[str]) -> None:  # type: ignore[no-untyped-def]
    with contextlib.suppress(Exception):
        for line in stream:
            sink.append(line)


def start_torch_probe(
    timeout: float = 60.0, modules: tuple[str, ...] | None = None, python: str | None = None
) -> TorchProbe:
    """Start the child now; collect it later with ``.result()``."""
    mods = tuple(m for m, _ in DOMAIN_MODULES) if modules is None else modules
    try:
        proc = subprocess.Popen(
            [python or sys.executable, "-c", CHILD_SCRIPT, json.dumps(list(mods))],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            errors="replace",
            start_new_session=True,  # so a timeout kills whatever torch's import started
        )
    except OSError as exc:
        return TorchProbe(None, timeout, mods, start_error=f"could not start Python: {exc}")
    probe = TorchProbe(proc, timeout, mods)
    probe._pump()
    return probe


def _signal_name(returncode: int | None) -> str | None:
    if returncode is None or returncode >= 0:
        return None
    try:
        return signal.Signals(-returncode).name
    except ValueError:
        return f"signal {-returncode}"


def parse_output(
    lines: list[str],
    *,
    returncode: int | None,
    timed_out: bool,
    timeout: float,
    stderr: str = "",
    modules: tuple[str, ...] = (),
) -> TorchFacts:
    """TorchFacts from the child's marked lines and how it ended."""
    torch_doc: dict | None = None
    mods: list[ModuleImport] = []
    for line in lines:
        if not line.startswith(MARK):
            continue
        try:
            doc = json.loads(line[len(MARK) :])
        except ValueError:
            continue
        if doc.get("kind") == "torch":
            torch_doc = doc
        elif doc.get("kind") == "module":
            mods.append(
                ModuleImport(
                    module=doc["module"],
                    found=bool(doc.get("found")),
                    ok=bool(doc.get("ok")),
                    version=doc.get("version"),
                    file=doc.get("file"),
                    error=doc.get("error"),
                    traceback=doc.get("traceback"),
                    seconds=doc.get("seconds"),
                )
            )
    tail = stderr[-4000:] or None
    sig = _signal_name(returncode)
    # Modules the child never reported on (it hung or crashed while importing them).
    seen = {m.module for m in mods}
    if torch_doc is not None and (timed_out or sig):
        why = f"timed out after {timeout:g} s" if timed_out else f"crashed ({sig})"
        for name in modules:
            if name not in seen:
                mods.append(ModuleImport(name, found=True, ok=False, error=f"import {why}"))
                break  # the one being imported when it stopped; the rest were never tried
    if torch_doc is None:
        if timed_out:
            error = (
                f"`import torch` did not finish within {timeout:g} s (a hang in a library it "
                "loads, or a very slow filesystem)"
            )
        elif sig:
            error = f"`import torch` crashed the interpreter ({sig})"
        else:
            last = stderr.strip().splitlines()[-1] if stderr.strip() else "no output"
            error = f"the Python child exited with code {returncode}: {last}"
        return TorchFacts(ran=True, ok=False, error=error, timed_out=timed_out, stderr_tail=tail)
    if not torch_doc.get("ok"):
        return TorchFacts(
            ran=True,
            ok=False,
            error=torch_doc.get("error"),
            traceback=torch_doc.get("traceback"),
            import_seconds=torch_doc.get("import_seconds"),
            modules=tuple(mods),
            stderr_tail=tail,
        )
    return TorchFacts(
        ran=True,
        ok=True,
        import_seconds=torch_doc.get("import_seconds"),
        version=torch_doc.get("version"),
        file=torch_doc.get("file"),
        cuda=torch_doc.get("cuda"),
        hip=torch_doc.get("hip"),
        cudnn=torch_doc.get("cudnn"),
        cudnn_error=torch_doc.get("cudnn_error"),
        cuda_available=torch_doc.get("cuda_available"),
        cuda_init_error=torch_doc.get("cuda_init_error") or torch_doc.get("cuda_available_error"),
        device_count=torch_doc.get("device_count"),
        arch_list=tuple(torch_doc.get("arch_list") or ()),
        nccl=torch_doc.get("nccl"),
        sharing_strategy=torch_doc.get("sharing_strategy"),
        num_threads=torch_doc.get("num_threads"),
        modules=tuple(mods),
        stderr_tail=tail,
        timed_out=timed_out,
    )
