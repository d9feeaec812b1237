"""TARGET resolution: ``module:attr`` or ``path/to/file.py:attr`` → a Dataset or DataLoader.

Only child processes call :func:`load_target` (the CLI's parent never imports user code);
the parent calls :func:`parse_target` to reject malformed specs early with exit 2.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dlcheck.errors import DlcheckError, UsageError
from dlcheck.fmt import last_line


@dataclass(frozen=True)
class TargetSpec:
    raw: str
    source: str  # module name or file path
    attr: str  # dotted attribute path inside the module
    is_file: bool


class UserCodeError(DlcheckError):
    """The user's own code raised while importing the module or calling the factory (exit 1)."""


def parse_target(raw: str) -> TargetSpec:
    """Validate the shape of TARGET without importing anything."""
    text = raw.strip()
    source, sep, attr = text.rpartition(":")
    # Windows drive letters are not a concern (Linux tool) but "a:b:c" must keep the last ':'.
    if not sep or not source or not attr:
        raise UsageError(
            f"TARGET {raw!r} is not of the form module:attr or path/to/file.py:attr.",
            "Name the object to use, e.g. `my_project.data:train_dataset` or "
            "`data.py:make_loader`.",
        )
    if not all(part.isidentifier() for part in attr.split(".")):
        raise UsageError(
            f"TARGET attribute {attr!r} is not a Python name.",
            "Use the name of a Dataset, DataLoader or zero-argument factory in that module.",
        )
    is_file = source.endswith(".py") or os.sep in source or source.startswith(".")
    if is_file:
        path = Path(source).expanduser()
        if not path.is_file():
            raise UsageError(
                f"TARGET file {source!r} does not exist.",
                "Give a path to a .py file relative to the current directory, or use module:attr.",
            )
        source = str(path.resolve())
    elif not all(part.isidentifier() for part in source.split(".")):
        raise UsageError(
            f"TARGET module {source!r} is not a module name.",
            "Use a dotted module name importable from the current directory, or a .py path.",
        )
    return TargetSpec(raw=text, source=source, attr=attr, is_file=is_file)


def _import_source(spec: TargetSpec) -> Any:
    if spec.is_file:
        path = Path(spec.source)
        # Make sibling imports in the user's file work, as `python file.py` would.
        sys.path.insert(0, str(path.parent))
        # Register under the file's own name, as `python -c "import stem"` would: spawn and
        # forkserver workers unpickle the dataset's class by module name and must find it.
        name = path.stem
        existing = sys.modules.get(name)
        if not name.isidentifier() or (
            existing is not None and getattr(existing, "__file__", None) != str(path)
        ):
            name = f"_dlcheck_target_{path.stem}"
        module_spec = importlib.util.spec_from_file_location(name, path)
        if module_spec is None or module_spec.loader is None:  # pragma: no cover
            raise UsageError(f"Cannot load {spec.source!r} as a Python file.")
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[name] = module
        try:
            module_spec.loader.exec_module(module)
        except BaseException as exc:  # the user's module may raise anything, SystemExit too
            if isinstance(exc, KeyboardInterrupt):
                raise
            raise UserCodeError(
                f"Importing {path.name} raised {last_line(exc)}",
                "Fix the error in your module (run with -v to see the traceback).",
                detail=traceback.format_exc(),
            ) from None
        return module
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        return importlib.import_module(spec.source)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if spec.source == missing or spec.source.startswith(missing + "."):
            raise UsageError(
                f"No module named {spec.source!r} (TARGET {spec.raw!r}).",
                "Run dlcheck from the directory that contains it, add it to PYTHONPATH, "
                "or give a file path such as path/to/data.py:attr.",
            ) from None
        raise UserCodeError(
            f"Importing {spec.source} raised {last_line(exc)}",
            "Install the missing package in this environment, or fix the import.",
            detail=traceback.format_exc(),
        ) from None
    except BaseException as exc:  # the user's module may raise anything, SystemExit too
        if isinstance(exc, KeyboardInterrupt):
            raise
        raise UserCodeError(
            f"Importing {spec.source} raised {last_line(exc)}",
            "Fix the error in your module (run with -v to see the traceback).",
            detail=traceback.format_exc(),
        ) from None


def is_loader(obj: Any) -> bool:
    from torch.utils.data import DataLoader

    return isinstance(obj, DataLoader)


def is_dataset(obj: Any) -> bool:
    from torch.utils.data import Dataset, IterableDataset

    if isinstance(obj, (Dataset, IterableDataset)):
        return True
    # Duck-typed map-style datasets (e.g. Hugging Face `datasets.Dataset`) work with DataLoader.
    if isinstance(obj, type):
        return False
    has_map = hasattr(obj, "__getitem__") and hasattr(obj, "__len__")
    return has_map and not isinstance(obj, (str, bytes, dict))


def load_target(spec: TargetSpec | str) -> Any:
    """Import the module and return the Dataset/DataLoader it names, calling a factory."""
    if isinstance(spec, str):
        spec = parse_target(spec)
    module = _import_source(spec)
    obj: Any = module
    walked = []
    for part in spec.attr.split("."):
        walked.append(part)
        try:
            obj = getattr(obj, part)
        except AttributeError:
            where = spec.source if not spec.is_file else Path(spec.source).name
            candidates = _candidates(module)
            hint = (
                f"Objects there that could work: {', '.join(candidates)}."
                if candidates
                else "Name a Dataset, DataLoader or a zero-argument function returning one."
            )
            raise UsageError(f"{where} has no attribute {'.'.join(walked)!r}.", hint) from None
    if _is_data(obj):
        return obj
    if callable(obj):
        _check_zero_arg(obj, spec)
        try:
            result = obj()
        except BaseException as exc:  # the user's factory may raise anything, SystemExit too
            if isinstance(exc, KeyboardInterrupt):
                raise
            raise UserCodeError(
                f"{spec.attr}() raised {last_line(exc)}",
                "Fix the factory (run with -v to see the traceback).",
                detail=traceback.format_exc(),
            ) from None
        if _is_data(result):
            return result
        raise UsageError(
            f"{spec.attr}() returned {type(result).__name__}, not a Dataset, IterableDataset "
            "or DataLoader.",
            "Return the dataset or the DataLoader itself from the factory.",
        )
    raise UsageError(
        f"{spec.attr} is a {type(obj).__name__}, not a Dataset, IterableDataset, DataLoader "
        "or a zero-argument factory.",
        "Point TARGET at the dataset or loader object, or at a function that builds it.",
    )


def _is_data(obj: Any) -> bool:
    return not isinstance(obj, type) and (is_loader(obj) or is_dataset(obj))


def _check_zero_arg(fn: Any, spec: TargetSpec) -> None:
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return
    required = [
        p.name
        for p in sig.parameters.values()
        if p.default is inspect.Parameter.empty
        and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    ]
    if required:
        raise UsageError(
            f"{spec.attr} needs arguments ({', '.join(required)}); TARGET must be a dataset, a "
            "loader or a zero-argument factory.",
            "Wrap it: `def make(): return MyDataset('data/', train=True)` and point TARGET at "
            "`make`.",
        )


def _candidates(module: Any) -> list[str]:
    names = []
    for name, value in vars(module).items():
        if name.startswith("_"):
            continue
        try:
            if _is_data(value):
                names.append(name)
        except Exception:  # a user attribute's __len__/type check may raise anything
            continue
    return names[:8]
