"""``import torch`` in a child process, so a broken or hanging torch cannot take dlcheck down.

The child inherits the environment (a broken torch on PYTHONPATH is seen exactly as the user's
scripts see it), prints one marked JSON line with the torch facts as soon as it has them, then
one line per domain library it imports. A crash or timeout therefore loses only what was not
yet printed.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from dlcheck.fmt import last_text_line

if TYPE_CHECKING:  # imported lazily: this module is on the CLI's start-up path
    from collections.abc import Iterable, Iterator

    from dlcheck.env.records import ModuleImport, TorchFacts

MARK = "@@dlcheck-env@@ "

# Modules imported after torch when installed: (module, needs torch). Those that do not
# import torch run in a second child, in parallel, when their distribution is installed.
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
# Every `except BaseException` below is broad on purpose: the user's torch and libraries may
# raise anything while importing (SystemExit included), and each failure must become a line.
import json, sys, time, traceback
MARK = "@@dlcheck-env@@ "
def emit(doc):
    sys.stdout.write(MARK + json.dumps(doc) + "\n")
    sys.stdout.flush()
def cause(exc):
    return "".join(traceback.format_exception_only(type(exc), exc)).strip().splitlines()[-1]
def tb(exc):
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
cfg = json.loads(sys.argv[1])
torch = None
if cfg["torch"]:
    t0 = time.perf_counter()
    try:
        import torch
    except BaseException as exc:  # the user's torch may raise anything while importing
        try:
            import importlib.util
            origin = importlib.util.find_spec("torch").origin
        except BaseException:  # no spec (None.origin), or a finder that raises
            origin = None
        emit({"kind": "torch", "ok": False, "error": cause(exc), "traceback": tb(exc),
              "import_seconds": time.perf_counter() - t0, "file": origin})
        torch = None
    if torch is not None:
        d = {"kind": "torch", "ok": True, "import_seconds": time.perf_counter() - t0}
        def grab(key, fn):
            try:
                d[key] = fn()
            except BaseException as exc:  # a broken build fails anywhere: record, go on
                d[key + "_error"] = cause(exc)
        grab("version", lambda: str(torch.__version__))
        grab("file", lambda: torch.__file__)
        grab("cuda", lambda: torch.version.cuda)
        grab("hip", lambda: getattr(torch.version, "hip", None))
        grab("cudnn", lambda: torch.backends.cudnn.version())
        grab("cuda_available", lambda: bool(torch.cuda.is_available()))
        grab("device_count", lambda: int(torch.cuda.device_count()))
        grab("arch_list", lambda: list(torch.cuda.get_arch_list()))
        gpu_build = torch.version.cuda or getattr(torch.version, "hip", None)
        if gpu_build and not d.get("cuda_available"):
            try:
                torch.cuda.init()
            except BaseException as exc:  # the reason CUDA is unavailable, whatever its type
                d["cuda_init_error"] = cause(exc)
        if torch.version.cuda:
            grab("nccl", lambda: ".".join(str(x) for x in torch.cuda.nccl.version()))
        grab("sharing_strategy", lambda: torch.multiprocessing.get_sharing_strategy())
        grab("num_threads", lambda: torch.get_num_threads())
        emit(d)
import glob, importlib.util, os
for ext in cfg["extensions"] if torch is not None else ():
    # The C++ extension is what breaks when a library was built for another torch; loading it
    # the way the library does takes milliseconds, a full import can take seconds.
    name, t1 = ext["module"], time.perf_counter()
    try:
        spec = importlib.util.find_spec(name)
    except BaseException:  # a third-party finder, or a module left without __spec__
        spec = None
    if spec is None or not spec.origin:
        emit({"kind": "module", "module": name, "found": False, "ok": False, "how": "extension"})
        continue
    base = os.path.dirname(spec.origin)
    paths = sorted(p for g in ext["globs"] for p in glob.glob(os.path.join(base, g)))
    try:
        for p in paths:
            torch.ops.load_library(p)
        if ext.get("op") and paths:
            ns, op = ext["op"].split("::")
            getattr(getattr(torch.ops, ns), op)
        emit({"kind": "module", "module": name, "found": True, "ok": True, "how": "extension",
              "file": paths[0] if paths else None, "seconds": time.perf_counter() - t1})
    except BaseException as exc:  # a mismatched extension fails in many ways: each is a finding
        err = cause(exc)
        if exc.__cause__ is not None:  # torch.ops.load_library hides the loader's message
            err += " (" + cause(exc.__cause__) + ")"
        emit({"kind": "module", "module": name, "found": True, "ok": False, "how": "extension",
              "file": paths[0] if paths else None, "error": err, "traceback": tb(exc),
              "seconds": time.perf_counter() - t1})
for name in cfg["modules"]:
    t1 = time.perf_counter()
    try:
        found = importlib.util.find_spec(name) is not None
    except BaseException:  # cannot tell: the import below says what is wrong
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
    except BaseException as exc:  # the user's library may raise anything while importing
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
    deep: bool = False

    def _pump(self) -> None:
        assert self.proc is not None and self.proc.stdout and self.proc.stderr
        out = threading.Thread(target=_drain, args=(self.proc.stdout, self._lines), daemon=True)
        err = threading.Thread(target=_drain, args=(self.proc.stderr, self._stderr), daemon=True)
        out.start()
        err.start()
        self._threads = [out, err]

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                # Its own session: whatever torch's import started goes too.
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (OSError, AttributeError):  # no process groups (Windows) or already gone
                with contextlib.suppress(OSError):
                    self.proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=5)

    def _wait(self) -> bool:
        """Wait for the child within the timeout; True when it had to be killed for it."""
        assert self.proc is not None
        timed_out = False
        try:
            self.proc.wait(timeout=max(0.0, self.timeout - (time.monotonic() - self.started)))
        except subprocess.TimeoutExpired:
            timed_out = True
        finally:
            # Never leave the child behind (Ctrl-C included).
            self.kill()
        for t in self._threads:
            t.join(timeout=2)
        return timed_out

    def module_results(self) -> tuple[ModuleImport, ...]:
        """For a ``with_torch=False`` child: one record per module it was asked to import."""
        from dlcheck.env.records import ModuleImport

        if self.proc is None:
            return tuple(
                ModuleImport(m, found=True, ok=False, error=self.start_error) for m in self.modules
            )
        timed_out = self._wait()
        mods = list(parse_modules(self._lines))
        seen = {m.module for m in mods}
        why = (
            f"import timed out after {self.timeout:g} s"
            if timed_out
            else f"import crashed the interpreter ({_signal_name(self.proc.returncode)})"
        )
        for name in self.modules:
            if name not in seen:
                mods.append(ModuleImport(name, found=True, ok=False, error=why))
                break  # the one being imported when it stopped; the rest were never tried
        return tuple(mods)

    def result(self) -> TorchFacts:
        from dlcheck.env.records import TorchFacts

        if self.proc is None:
            return TorchFacts(ran=True, ok=False, error=self.start_error)
        timed_out = self._wait()
        return parse_output(
            self._lines,
            returncode=self.proc.returncode,
            timed_out=timed_out,
            timeout=self.timeout,
            stderr="".join(self._stderr),
            modules=self.modules,
        )


def _drain(stream: Iterable[str], sink: list[str]) -> None:
    # Reading stops when the child is killed and its pipe closes under us.
    with contextlib.suppress(OSError, ValueError):
        for line in stream:
            sink.append(line)


TORCH_MODULES = tuple(m for m, needs_torch in DOMAIN_MODULES if needs_torch)

# C++ extensions of the libraries tied to one torch release: (module, files, an op to look up).
EXTENSIONS: tuple[dict, ...] = (
    {"module": "torchvision", "globs": ["_C*.so", "_C*.pyd"], "op": "torchvision::nms"},
    {"module": "torchaudio", "globs": ["lib/libtorchaudio*.so", "lib/libtorchaudio*.pyd"]},
    {"module": "torchtext", "globs": ["lib/libtorchtext*.so", "lib/libtorchtext*.pyd"]},
)


def start_torch_probe(
    timeout: float = 60.0,
    modules: tuple[str, ...] | None = None,
    python: str | None = None,
    *,
    with_torch: bool = True,
    deep: bool = False,
) -> TorchProbe:
    """Start the child now; collect it later with ``.result()`` (or ``.module_results()``).

    After torch, the child loads the C++ extensions of torchvision/torchaudio/torchtext, then
    imports ``modules`` (default: none, or with ``deep`` every domain library that needs
    torch). ``with_torch=False`` only imports ``modules``.
    """
    mods = (TORCH_MODULES if deep else ()) if modules is None else modules
    cfg = {"torch": with_torch, "modules": list(mods), "extensions": list(EXTENSIONS)}
    argv = [python or sys.executable, "-c", CHILD_SCRIPT, json.dumps(cfg)]
    try:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            errors="replace",
            start_new_session=os.name == "posix",  # a timeout kills what torch's import started
        )
    except OSError as exc:
        return TorchProbe(None, timeout, mods, start_error=f"could not start Python: {exc}")
    probe = TorchProbe(proc, timeout, mods, deep=deep)
    probe._pump()
    return probe


_PRESTARTED: TorchProbe | None = None


def prestart_for_cli(argv: list[str]) -> None:
    """Start the torch child while the CLI is still importing (``dlcheck env`` only).

    Typer's import and parsing take a few hundred milliseconds; starting ``import torch``
    before them takes that off the wall time. Only for a plain ``dlcheck env [--json|-v|...]``
    run: never for --help, --list-checks or --check (which may not need torch at all).
    """
    global _PRESTARTED
    if _PRESTARTED is not None or len(argv) < 2 or argv[1] != "env":
        return
    prog = os.path.basename(argv[0])
    if prog not in {"dlcheck", "__main__.py"} or (
        prog == "__main__.py" and os.path.basename(os.path.dirname(argv[0])) != "dlcheck"
    ):
        return
    if any(a in {"-h", "--help", "--list-checks"} or a.startswith("--check") for a in argv[2:]):
        return
    _PRESTARTED = start_torch_probe(deep="--deep" in argv[2:])
    atexit.register(_PRESTARTED.kill)  # a usage error must not leave it running


def take_prestarted(timeout: float, deep: bool = False) -> TorchProbe | None:
    """The child started by :func:`prestart_for_cli`, now owned by the caller."""
    global _PRESTARTED
    probe, _PRESTARTED = _PRESTARTED, None
    if probe is not None and probe.deep != deep:
        probe.kill()
        return None
    if probe is not None:
        probe.timeout = timeout
    return probe


def discard_prestarted() -> None:
    """Kill the child :func:`prestart_for_cli` started if nobody took it (no-op otherwise)."""
    global _PRESTARTED
    probe, _PRESTARTED = _PRESTARTED, None
    if probe is not None:
        probe.kill()


def _signal_name(returncode: int | None) -> str | None:
    if returncode is None or returncode >= 0:
        return None
    try:
        return signal.Signals(-returncode).name
    except ValueError:
        return f"signal {-returncode}"


def _docs(lines: list[str]) -> Iterator[dict]:
    for line in lines:
        if line.startswith(MARK):
            with contextlib.suppress(ValueError):
                yield json.loads(line[len(MARK) :])


def parse_modules(lines: list[str]) -> Iterator[ModuleImport]:
    from dlcheck.env.records import ModuleImport

    for doc in _docs(lines):
        if doc.get("kind") == "module":
            yield ModuleImport(
                module=doc["module"],
                found=bool(doc.get("found")),
                ok=bool(doc.get("ok")),
                version=doc.get("version"),
                file=doc.get("file"),
                error=doc.get("error"),
                traceback=doc.get("traceback"),
                seconds=doc.get("seconds"),
                how=doc.get("how", "import"),
            )


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
    from dlcheck.env.records import ModuleImport, TorchFacts

    torch_doc = next((d for d in _docs(lines) if d.get("kind") == "torch"), None)
    mods = list(parse_modules(lines))
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
            last = last_text_line(stderr, none="no output")
            error = f"the Python child exited with code {returncode}: {last}"
        return TorchFacts(ran=True, ok=False, error=error, timed_out=timed_out, stderr_tail=tail)
    if not torch_doc.get("ok"):
        return TorchFacts(
            ran=True,
            ok=False,
            file=torch_doc.get("file"),
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
