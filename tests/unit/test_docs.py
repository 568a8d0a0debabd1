"""The docs site: `mkdocs build --strict` passes, its generated pages say what the code and the result files
say, and every code block of the docs and the README that a user would run is run or parsed here.

Code blocks, by their info string:
- `yaml`: a constitution (it has `principles:`) is loaded; anything else is a run config, validated with
  `config_from_dict` (a `prompts:` section added when the block has none);
- `python`: executed, against the stub server for a block that talks to `http://127.0.0.1:8000/v1`;
- `bash`/`sh` and untagged console blocks: every `rlaif ...` command (and every `$ rlaif ...` line of shown
  output) is parsed by the real command tree, so a renamed command or option fails here; `make TARGET`
  must be a Makefile target and `python FILE` an existing file;
- `jinja`: parsed in rlaif's template sandbox; `json`: parsed.
A block preceded by `<!-- tested-by: PATH reason -->` is run by that test file instead (which must exist and
name the page); one preceded by `<!-- notest: reason -->` runs nothing, and says why.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
PAGES = sorted(p for p in DOCS.rglob("*.md") if "_gen" not in p.parts) + [ROOT / "README.md"]
FENCE = re.compile(
    r"^(?P<indent> *)```(?P<info>[^\n`]*)\n(?P<body>.*?)^(?P=indent)```\s*$", re.MULTILINE | re.DOTALL
)
NOTE = re.compile(r"<!-- (?P<kind>notest|tested-by): ?(?P<what>[^>]*?) ?-->\s*$")


@dataclass(frozen=True)
class Block:
    page: Path
    line: int
    info: str
    body: str
    note: tuple[str, str] | None

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def blocks() -> list[Block]:
    found = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for match in FENCE.finditer(text):
            indent = len(match.group("indent"))
            body = "\n".join(line[indent:] for line in match.group("body").split("\n"))
            before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
            note = NOTE.search(before)
            found.append(
                Block(
                    page,
                    text.count("\n", 0, match.start()) + 1,
                    match.group("info").strip(),
                    body,
                    (note.group("kind"), note.group("what")) if note else None,
                )
            )
    return found


BLOCKS = blocks()


def gen_module(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"docs_gen_{name}", DOCS / "_gen" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --- the build ---


def test_the_site_builds_strict(tmp_path: Path) -> None:
    """No broken link, anchor or reference; CI has the docs tools (the `docs` extra), so there it must run."""
    if importlib.util.find_spec("mkdocs") is None or importlib.util.find_spec("mkdocs_gen_files") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("mkdocs is not installed: CI installs the `docs` extra (make install)")
        pytest.skip("mkdocs is not installed (pip install -e '.[docs]')")
    env = {
        **os.environ,
        "DISABLE_MKDOCS_2_WARNING": "true",
        "NO_MKDOCS_2_WARNING": "1",
        "PYTHONPATH": str(ROOT),
    }
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    seconds = time.monotonic() - started
    assert done.returncode == 0, done.stdout + done.stderr
    assert "WARNING" not in done.stderr, done.stderr
    site = tmp_path / "site"
    for page in ("reference/cli", "reference/config", "reference/api", "reference/reports", "results/judge"):
        assert (site / page / "index.html").stat().st_size > 5_000, page
    assert (site / "assets" / "results" / "hacking.png").exists()
    print(f"mkdocs build --strict: {seconds:.1f} s")


# --- the generated pages ---


def test_every_result_marker_names_a_table_and_every_table_is_used() -> None:
    results = gen_module("results")
    used = {name for page in PAGES for name in results.MARKER.findall(page.read_text(encoding="utf-8"))}
    assert used == set(results.TABLES), "tables made but not shown, or markers with no table"
    with pytest.raises(KeyError, match="no such table"):
        results.fill("<!-- results:nope -->")


def test_the_readme_quickstart_table_is_the_committed_file() -> None:
    """The README keeps a hand copy of the quickstart's table: each of its figures is in the file's."""
    results = gen_module("results")
    made = results.compliance()
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = readme.split("| principle (check) |", 1)[1].split("\n\n", 1)[0]
    figures = set(re.findall(r"[+−-]?\d+\.\d%|\[[−\d., -]+\]", table))
    assert len(figures) >= 15
    for figure in figures:
        assert figure.replace("-", "−") in made or figure in made, figure


def test_the_readme_rounds_table_is_the_committed_file() -> None:
    """The README's copy of the rounds table (`rlaif iterate examples/rounds.yaml`): each row is in the
    table made from examples/results/rounds-quickstart.json."""
    made = gen_module("results").rounds()
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = readme.split("| round | pairs |", 1)[1].split("\n\n", 1)[0]
    rows = [line for line in table.splitlines() if line.startswith("| ") and "---" not in line]
    assert len(rows) >= 3
    for row in rows:
        assert row in made, row


def test_the_hacking_table_is_the_committed_file() -> None:
    made = gen_module("results").hacking()
    for figure in ("20.2 → 64.9", "73.8", "step 3 (+34.6%)", "12.3", "20.2 → 27.2 at the stop", "8.5"):
        assert figure in made


def command_tree() -> tuple[Any, Any]:
    import typer.main

    from rlaif.cli.main import app

    root = typer.main.get_command(app)
    return root, root.context_class(root, info_name="rlaif")


def test_the_cli_reference_has_every_command_and_option() -> None:
    text = gen_module("reference").cli_markdown()
    root, ctx = command_tree()

    def walk(group: Any, context: Any, path: list[str]) -> Iterator[tuple[list[str], Any, Any]]:
        for name in group.list_commands(context):
            command = group.get_command(context, name)
            sub = command.context_class(command, info_name=name, parent=context)
            yield path + [name], command, sub
            if hasattr(command, "list_commands"):
                yield from walk(command, sub, path + [name])

    commands = list(walk(root, ctx, ["rlaif"]))
    assert len(commands) > 30
    for path, command, sub in commands:
        assert f"## `{' '.join(path)}`" in text
        for param in command.get_params(sub):
            if param.param_type_name == "option" and param.name != "help":
                assert param.opts[0] in text, (path, param.opts)


def test_the_config_reference_has_every_setting() -> None:
    from pydantic import BaseModel

    from rlaif.config import RunConfig

    text = gen_module("reference").config_markdown()

    def fields(model: type[BaseModel], prefix: str) -> Iterator[tuple[str, str, Any]]:
        for name, field in model.model_fields.items():
            if field.exclude:
                continue
            yield prefix, field.alias or name, field
            for inner in gen_module("reference")._models(field.annotation)[:1]:
                if inner is not type(model):
                    yield from fields(inner, f"{prefix}.{name}" if prefix else name)

    seen = list(fields(RunConfig, ""))
    assert len(seen) > 150
    for prefix, key, field in seen:
        assert f"| `{key}` |" in text, (prefix, key)
        if field.description:
            assert " ".join(field.description.split()).replace("|", "\\|").replace("<", "&lt;") in text, key
    assert "## `train.ppo`" in text and "## `model.server`" in text


def test_the_reports_page_covers_every_reports_module() -> None:
    names = gen_module("reference").report_modules()
    assert "rlaif.reports" in names
    on_disk = {p for p in (ROOT / "rlaif").rglob("reports.py")}
    assert len(names) >= len(on_disk)


# --- the code blocks ---


def test_the_docs_have_code_blocks_of_every_kind() -> None:
    kinds = {b.info.split()[0] if b.info else "" for b in BLOCKS}
    assert {"yaml", "python", "bash", "jinja", ""} <= kinds
    notes = [b for b in BLOCKS if b.note]
    for block in notes:
        kind, what = block.note or ("", "")
        assert what.strip(), f"{block.where}: a {kind} note says why"
        if kind == "tested-by":
            path = ROOT / what.split()[0]
            assert path.is_file(), f"{block.where}: {path} does not exist"
            page = block.page.relative_to(ROOT).as_posix()
            assert page in path.read_text(encoding="utf-8"), f"{path} does not read {page}"
    assert len([b for b in notes if b.note and b.note[0] == "notest"]) <= 3  # named in test_docs' report


def run_yaml(block: Block, tmp_path: Path) -> None:
    from rlaif.config import config_from_dict
    from rlaif.inputs.constitution import load_constitution

    data = yaml.safe_load(block.body)
    assert isinstance(data, dict), block.where
    if "principles" in data:
        path = tmp_path / "constitution.yaml"
        path.write_text(block.body, encoding="utf-8")
        assert load_constitution(path).principles
        return
    if "check" in data and len(data) == 1:
        from rlaif.records import Check

        Check.model_validate(data["check"])
        return
    data.setdefault("prompts", {"path": "prompts.jsonl"})
    config_from_dict(data, base_dir=tmp_path)


def run_python(block: Block, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.support.stub import StubServer

    shutil.copy(ROOT / "examples" / "prompts.jsonl", tmp_path / "prompts.jsonl")
    monkeypatch.chdir(tmp_path)
    code = block.body
    if "http://127.0.0.1:8000/v1" in code:
        with StubServer() as stub:
            exec(compile(code.replace("http://127.0.0.1:8000/v1", stub.base_url), block.where, "exec"), {})  # noqa: S102
    else:
        exec(compile(code, block.where, "exec"), {})  # noqa: S102 - our own documentation


def commands(body: str, *, console: bool) -> Iterator[list[str]]:
    """The command lines of a block: all of a shell block's, only the `$ ` lines of shown output."""
    text = re.sub(r"\\\n\s*", " ", body)
    for line in text.split("\n"):
        line = line.strip()
        if console:
            if not line.startswith("$ "):
                continue
            line = line[2:]
        lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|")
        lexer.whitespace_split = True
        lexer.commenters = "#"
        command: list[str] = []
        for token in [*lexer, ";"]:
            if token and set(token) <= set(";&|"):
                if command and command[0] in ("do", "then"):
                    command = command[1:]
                if command:
                    yield command
                command = []
            else:
                command.append(token)


def parse_rlaif(args: list[str], where: str) -> None:
    root, ctx = command_tree()
    group, context, rest = root, ctx, args[1:]
    if rest in (["--version"], ["--help"]):
        return
    while hasattr(group, "list_commands"):
        assert rest, f"{where}: `{shlex.join(args)}` names no command"
        name, rest = rest[0], rest[1:]
        command = group.get_command(context, name)
        assert command is not None, f"{where}: `{shlex.join(args)}`: no command {name!r}"
        context = command.context_class(command, info_name=name, parent=context)
        group = command
    # The real command parses the arguments; a value it refuses (a file that is not here, a placeholder such
    # as URL) or a missing one is fine here, an unknown option or an extra argument is not.
    try:
        group.make_context(group.name, list(rest), parent=context.parent)
    except Exception as exc:  # typer's own click: NoSuchOption, BadOptionUsage, UsageError
        if type(exc).__name__ not in ("BadParameter", "MissingParameter"):
            raise AssertionError(f"{where}: `{shlex.join(args)}`: {exc}") from exc


def run_shell(block: Block, *, console: bool) -> int:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    checked = 0
    for args in commands(block.body, console=console):
        program = args[0]
        if program == "rlaif":
            parse_rlaif(args, block.where)
        elif program == "make":
            for target in args[1:]:
                assert re.search(rf"^{re.escape(target)}:", makefile, re.MULTILINE), (
                    f"{block.where}: make {target}"
                )
        elif program == "pip" and args[1:2] == ["install"]:
            extras = re.findall(r"^(\w+) = \[", pyproject.split("[project.optional-dependencies]")[1], re.M)
            for arg in args[2:]:
                wanted = re.fullmatch(r"(?:\.|rlaif)\[([\w,]+)\]", arg)
                for extra in wanted.group(1).split(",") if wanted else ():
                    assert extra in extras, f"{block.where}: no extra {extra!r} in pyproject.toml"
        elif program in ("python", "python3") and args[1:] and args[1].endswith(".py"):
            assert (ROOT / args[1]).is_file(), f"{block.where}: {args[1]}"
        else:
            continue
        checked += 1
    return checked


@pytest.mark.parametrize("block", [b for b in BLOCKS if not b.note], ids=lambda b: b.where)
def test_a_code_block_runs(block: Block, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    kind = block.info.split()[0] if block.info else ""
    if kind == "yaml":
        run_yaml(block, tmp_path)
    elif kind == "python":
        run_python(block, tmp_path, monkeypatch)
    elif kind in ("bash", "sh", "shell"):
        run_shell(block, console=False)
    elif kind in ("", "console"):
        run_shell(block, console=True)
    elif kind == "jinja":
        from jinja2.sandbox import ImmutableSandboxedEnvironment

        ImmutableSandboxedEnvironment().parse(block.body)
    elif kind == "json":
        import json

        json.loads(block.body)
    elif kind != "text":
        pytest.fail(f"{block.where}: no runner for ```{kind} blocks; add one, or a notest note")


def test_every_rlaif_command_shown_is_parsed() -> None:
    """Not vacuous: the shell and console blocks hold many `rlaif` commands, and all are checked."""
    total = sum(
        run_shell(b, console=not b.info or b.info == "console")
        for b in BLOCKS
        if not b.note and (b.info.split() or [""])[0] in ("bash", "sh", "shell", "", "console")
    )
    assert total >= 15
    with pytest.raises(AssertionError, match="no command 'rnu'"):
        parse_rlaif(["rlaif", "rnu", "x.yaml"], "here")
    with pytest.raises(AssertionError, match="--nope"):
        parse_rlaif(["rlaif", "run", "x.yaml", "--nope"], "here")
