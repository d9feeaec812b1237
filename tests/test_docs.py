"""The docs cannot drift from the CLI.

Every option a command's ``--help`` shows is in the options section of its page
``docs/<command>.md``, and every option that section names exists. Every command has a page,
every relative link resolves, and the README stays short.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from dlcheck.cli import app

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
README = ROOT / "README.md"
README_MAX_LINES = 250

# Commands whose page lives on a branch not merged yet: skipped (not failed) while the page is
# missing. Any other command without a page fails.
PENDING = {"trace"}

# Sections every command page has (a heading starting with these words).
REQUIRED_SECTIONS = ("Synopsis", "Options", "Exit codes", "JSON", "Examples")

_FLAG = re.compile(r"(?<![\w-])(--?[A-Za-z][\w-]*)")
_CODE_SPAN = re.compile(r"`([^`\n]+)`")
_FENCE = re.compile(r"^```.*?^```", re.S | re.M)
_LINK = re.compile(r"\[[^\]\n]*\]\(([^)\s]+)\)")
_COMMAND_TITLE = re.compile(r"^# `dlcheck (\w+)`")


def _root_command() -> Any:
    """The Click group Typer builds from the app (Typer ships its own copy of Click)."""
    return typer.main.get_command(app)


def _commands() -> dict[str, Any]:
    """The commands `dlcheck --help` lists, by name."""
    return {n: c for n, c in _root_command().commands.items() if not c.hidden}


def _help_flags() -> set[str]:
    return set(_root_command().context_settings.get("help_option_names", ["--help"]))


def _options(cmd: Any) -> set[str]:
    """Every flag of the command's options (arguments have none), as --help shows them."""
    flags: set[str] = set()
    for param in cmd.params:
        if param.param_type_name == "option":
            flags.update(param.opts)
            flags.update(param.secondary_opts)
    return flags


def _page(name: str) -> Path:
    return DOCS / f"{name}.md"


def _section(text: str, title: str) -> str:
    """The body of the first ``## title…`` section (up to the next ``## `` heading)."""
    m = re.search(rf"^## {re.escape(title)}[^\n]*\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    assert m, f"no '## {title}' section"
    return m.group(1)


def _flags_in(section: str) -> set[str]:
    """Flags named in code spans of a section (``--workers``, ``-w LIST``, ``--pin-memory on``)."""
    section = _FENCE.sub("", section)
    found: set[str] = set()
    for span in _CODE_SPAN.findall(section):
        found.update(_FLAG.findall(span))
    return found


def _mentions(text: str, flag: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", text) is not None


def _command_page(name: str) -> Path:
    page = _page(name)
    if not page.exists():
        if name in PENDING:
            pytest.skip(f"docs/{name}.md is pending (PENDING allow-list)")
        pytest.fail(f"`dlcheck {name}` has no page docs/{name}.md")
    return page


@pytest.mark.parametrize("name", sorted(_commands()))
def test_every_help_option_is_documented(name: str) -> None:
    options = _section(_command_page(name).read_text(encoding="utf-8"), "Options")
    missing = sorted(f for f in _options(_commands()[name]) if not _mentions(options, f))
    assert not missing, f"docs/{name}.md, section Options, does not mention {missing}"


@pytest.mark.parametrize("name", sorted(_commands()))
def test_every_documented_option_exists(name: str) -> None:
    options = _section(_command_page(name).read_text(encoding="utf-8"), "Options")
    known = _options(_commands()[name]) | _help_flags()
    unknown = sorted(_flags_in(options) - known)
    assert not unknown, f"docs/{name}.md, section Options, names options --help lacks: {unknown}"


@pytest.mark.parametrize("name", sorted(_commands()))
def test_command_page_has_the_sections(name: str) -> None:
    text = _command_page(name).read_text(encoding="utf-8")
    headings = re.findall(r"^## (.+)$", text, re.M)
    for title in REQUIRED_SECTIONS:
        assert any(h.startswith(title) for h in headings), f"docs/{name}.md lacks '## {title}'"
    codes = _section(text, "Exit codes")
    for code in ("0", "1", "2", "130"):
        assert re.search(rf"^\| {code} \|", codes, re.M), f"docs/{name}.md: exit code {code}"


def test_command_pages_are_exactly_the_commands() -> None:
    """A page titled ``# `dlcheck NAME` `` is a command page: NAME must be a command."""
    pages = set()
    for page in DOCS.glob("*.md"):
        first = page.read_text(encoding="utf-8").splitlines()[:1]
        m = _COMMAND_TITLE.match(first[0]) if first else None
        if m:
            assert m.group(1) == page.stem, f"{page.name} is titled for `dlcheck {m.group(1)}`"
            pages.add(m.group(1))
    commands = set(_commands())
    assert pages <= commands, f"pages for commands that do not exist: {sorted(pages - commands)}"
    unpaged = commands - pages - PENDING
    assert not unpaged, f"commands without a page: {sorted(unpaged)}"


def test_help_lists_the_commands() -> None:
    result = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for name in _commands():
        assert re.search(rf"^\W*{name}\s", result.output, re.M), f"--help does not list {name}"


def test_readme_is_short() -> None:
    n = len(README.read_text(encoding="utf-8").splitlines())
    assert n <= README_MAX_LINES, f"README.md has {n} lines (at most {README_MAX_LINES})"


def test_readme_command_1_is_where_ci_reads_it() -> None:
    """CI runs the line after ``# 1.`` (awk '/^# 1\\./ {getline; print; exit}')."""
    lines = README.read_text(encoding="utf-8").splitlines()
    i = next(i for i, line in enumerate(lines) if line.startswith("# 1."))
    assert "pip install" in lines[i + 1] and lines[i + 1].endswith("dlcheck profile")


def _link_files() -> list[Path]:
    return [README, *sorted(DOCS.glob("*.md"))]


@pytest.mark.parametrize("path", _link_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(path: Path) -> None:
    text = _FENCE.sub("", path.read_text(encoding="utf-8"))
    text = _CODE_SPAN.sub("", text)
    broken = []
    for target in _LINK.findall(text):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue  # a URL, or an anchor in the same page
        file = target.split("#", 1)[0]
        if not (path.parent / file).exists():
            broken.append(target)
    assert not broken, f"{path.relative_to(ROOT)}: links to missing files: {broken}"


SRC = ROOT / "src" / "dlcheck"
_PATH_SPAN = re.compile(r"([\w./-]+\.(?:py|json|md))(?::(\w+))?")
_HEADING = re.compile(r"^#{1,6} ")
# TARGET shapes, not files.
_EXAMPLE_SPANS = {"file.py:attr", "path/to/file.py:attr"}
_DOTTED = re.compile(r"(dlcheck(?:\.\w+)+)(?:\(.*\))?")


def _defines(path: Path, name: str) -> bool:
    text = path.read_text(encoding="utf-8")
    return re.search(rf"^\s*(?:def|class|async def) {name}\b|^{name}\b.*=", text, re.M) is not None


def test_architecture_names_real_files() -> None:
    """Every file (and ``file.py:function``) the architecture page names exists.

    A bare name under a code-map heading such as ``### `env/` `` is looked up in that folder.
    """
    page = DOCS / "ARCHITECTURE.md"
    folders: list[str] = []
    missing = []
    for line in _FENCE.sub("", page.read_text(encoding="utf-8")).splitlines():
        spans = _CODE_SPAN.findall(line)
        if _HEADING.match(line):
            folders = [s.rstrip("/") for s in spans if s.endswith("/")]
            continue
        for span in spans:
            m = _PATH_SPAN.fullmatch(span)
            if not m or span in _EXAMPLE_SPANS:
                continue
            rel, name = m.groups()
            bases = [ROOT, SRC, *(SRC / f for f in folders)]
            found = [b / rel for b in bases if (b / rel).is_file()]
            if not found or (name and not any(_defines(f, name) for f in found)):
                missing.append(span)
    assert not missing, f"docs/ARCHITECTURE.md names what does not exist: {missing}"


@pytest.mark.parametrize("path", _link_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_dotted_names_resolve(path: Path) -> None:
    """``dlcheck.x.y`` names in the docs import (modules) or exist (their attributes)."""
    import importlib

    text = _FENCE.sub("", path.read_text(encoding="utf-8"))
    broken = []
    for span in _CODE_SPAN.findall(text):
        m = _DOTTED.fullmatch(span.strip())
        if not m:
            continue
        parts = m.group(1).split(".")
        for i in range(len(parts), 0, -1):
            try:
                obj: Any = importlib.import_module(".".join(parts[:i]))
            except ImportError:
                continue
            for attr in parts[i:]:
                obj = getattr(obj, attr, None)
            if obj is None:
                broken.append(span)
            break
    assert not broken, f"{path.relative_to(ROOT)} names what does not exist: {broken}"
