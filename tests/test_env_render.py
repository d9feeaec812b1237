"""Golden output of the env renderers from hand-built records."""

from __future__ import annotations

import io

from rich.console import Console

from dlcheck.env.checks import Check
from dlcheck.env.records import EnvReport
from dlcheck.env.render import privacy_filter, render_checks, render_console, render_markdown
from dlcheck.records import Status

CHECKS = [
    Check(
        "python.version",
        "python",
        "Python interpreter",
        Status.PASS,
        "Python 3.11.7 (CPython) at /home/alice/envs/dl/bin/python",
        facts={"version": "3.11.7"},
    ),
    Check(
        "torch.import",
        "torch",
        "import torch",
        Status.FAIL,
        "import torch failed: OSError: libcudart.so.12",
        "Reinstall.",
        {"error": "OSError: libcudart.so.12"},
        detail='Traceback (most recent call last):\n  File "x", line 1\nOSError: libcudart.so.12',
    ),
    Check(
        "torch.build",
        "torch",
        "torch build variant",
        Status.SKIP,
        "not checked: torch does not import (see torch.import)",
    ),
    Check("libs.timm", "libs", "timm", Status.SKIP, "timm: not installed"),
    Check("libs.hydra", "libs", "hydra-core", Status.SKIP, "hydra-core: not installed"),
    Check(
        "host.nofile",
        "host",
        "Open-files limit",
        Status.WARN,
        "open-files soft limit is 256 (hard 4096)",
        "ulimit -n 4096",
        {"soft": 256, "hard": 4096},
    ),
    Check("host.cpus", "host", "Usable CPUs", Status.PASS, "2 usable CPUs", facts={"usable": 2}),
]

REPORT = EnvReport(
    checks=tuple(CHECKS),
    facts={},
    comparable={
        "host": "gpu-node-7",
        "python.version": "3.11.7",
        "torch.version": None,
        "gpu.models": None,
        "gpu.count": 0,
    },
    meta={"dlcheck_version": "0.1.0"},
)


def _render(fn, *args, **kw) -> str:
    buf = io.StringIO()
    console = Console(file=buf, width=100, color_system=None)
    fn(*args, console, **kw)
    return "\n".join(line.rstrip() for line in buf.getvalue().splitlines()) + "\n"


GOLDEN_DEFAULT = """\
dlcheck env · Python 3.11.7 · torch: not importable · no NVIDIA GPU

[✓] Python and environment
 ✓  Python 3.11.7 (CPython) at /home/alice/envs/dl/bin/python
[✗] PyTorch build
 ✗  import torch failed: OSError: libcudart.so.12
    → Reinstall.
 -  not checked: torch does not import (see torch.import)
[-] Domain libraries
 -  not installed: timm, hydra-core
[!] Host limits for data loading
 !  open-files soft limit is 256 (hard 4096)
    → ulimit -n 4096
 ✓  2 usable CPUs

✗ 1 failure, 1 warning (7 checks)
"""


def test_default_view_golden() -> None:
    assert _render(render_console, REPORT) == GOLDEN_DEFAULT


GOLDEN_VERBOSE = """\
[✓] Python and environment
 ✓  Python 3.11.7 (CPython) at /home/alice/envs/dl/bin/python python.version
    version: 3.11.7
[✗] PyTorch build
 ✗  import torch failed: OSError: libcudart.so.12               torch.import
    → Reinstall.
    error: OSError: libcudart.so.12
    | Traceback (most recent call last):
    |   File "x", line 1
    | OSError: libcudart.so.12
 -  not checked: torch does not import (see torch.import)        torch.build
[-] Domain libraries
 -  timm: not installed                                            libs.timm
 -  hydra-core: not installed                                     libs.hydra
[!] Host limits for data loading
 !  open-files soft limit is 256 (hard 4096)                     host.nofile
    → ulimit -n 4096
    soft: 256
    hard: 4096
 ✓  2 usable CPUs                                                  host.cpus
    usable: 2

✗ 1 failure, 1 warning (7 checks)
"""


def test_verbose_view_golden_shows_facts_ids_and_traceback() -> None:
    assert _render(render_checks, CHECKS, verbose=True) == GOLDEN_VERBOSE


def test_default_view_never_shows_traceback() -> None:
    assert "Traceback" not in _render(render_console, REPORT)


GOLDEN_MARKDOWN = """\
#### `dlcheck env` — 1 failure, 1 warning

| | Check | Result |
|---|---|---|
| ✓ pass | `python.version` | Python 3.11.7 (CPython) at ~/envs/dl/bin/python |
| ✗ fail | `torch.import` | import torch failed: OSError: libcudart.so.12<br>**fix:** Reinstall. |
| ! warn | `host.nofile` | open-files soft limit is 256 (hard 4096)<br>**fix:** ulimit -n 4096 |
| ✓ pass | `host.cpus` | 2 usable CPUs |

<details><summary>3 skipped</summary>

- `torch.build`: not checked: torch does not import (see torch.import)
- `libs.timm`: timm: not installed
- `libs.hydra`: hydra-core: not installed

</details>

<details><summary>Key facts</summary>

```
python.version: 3.11.7
torch.version: None
gpu.models: None
gpu.count: 0
```

</details>

<sub>dlcheck 0.1.0, schema dlcheck.env/1</sub>
"""


def test_markdown_golden(monkeypatch) -> None:
    monkeypatch.setenv("HOME", "/home/alice")
    monkeypatch.setattr("getpass.getuser", lambda: "alice")
    assert render_markdown(REPORT) == GOLDEN_MARKDOWN


def test_markdown_from_a_merged_dict_hides_host_and_user(monkeypatch) -> None:
    monkeypatch.setenv("HOME", "/home/alice")
    monkeypatch.setattr("getpass.getuser", lambda: "alice")
    doc = REPORT.to_dict()
    doc["checks"][0]["summary"] = "ran on gpu-node-7 as alice in /srv/alice/x and /home/alice"
    md = render_markdown(EnvReport.from_dict(doc))
    assert "gpu-node-7" not in md and "alice" not in md
    assert "ran on <host> as <user> in /srv/<user>/x and ~" in md


def test_privacy_filter_leaves_ordinary_words() -> None:
    text = "/home/bo/x rooted at /data/bo/y, bob and robot"
    assert (
        privacy_filter(text, home="/home/bo", user="bo", host="h")
        == "~/x rooted at /data/<user>/y, bob and robot"
    )
    assert (
        privacy_filter("node7:/home/zed", home="/root", user="zed", host="node7")
        == "<host>:/home/<user>"
    )
