"""Bad input: every malformed constitution, prompt set, config and CLI argument gives one clear
`RlaifError` message that names the file and the line or field, never a traceback.

The table below holds the cases (well over 50); hypothesis then throws arbitrary bytes, text and
JSON at the same loaders, which may accept the input or raise the proper error class, nothing else.
"""

from __future__ import annotations

import gzip
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rlaif.cli.main import main
from rlaif.cli.options import overrides as _overrides
from rlaif.config import load_config
from rlaif.errors import ConfigError, ConstitutionError, PromptSetError, RlaifError
from rlaif.inputs.constitution import load_constitution
from rlaif.inputs.prompts import load_prompts
from rlaif.yamlfile import MAX_BYTES

pytestmark = pytest.mark.chaos  # issue 7's tests; fast, no server

ROOT = Path(__file__).resolve().parents[2]

PRINCIPLE = """\
  - id: kind
    critique_request: Point out unkind parts.
    revision_request: Rewrite it kindly.
    judge_question: Which is kinder?
"""
GOOD_CONSTITUTION = f"name: test\nversion: '1'\nprinciples:\n{PRINCIPLE}"


def constitution(**fields: Any) -> str:
    """A one-principle constitution as YAML with top-level `fields` replaced (None drops a field)."""
    data: dict[str, Any] = {
        "name": "test",
        "principles": [
            {
                "id": "kind",
                "critique_request": "Point out unkind parts.",
                "revision_request": "Rewrite it kindly.",
                "judge_question": "Which is kinder?",
            }
        ],
    }
    data.update(fields)
    return yaml.safe_dump({k: v for k, v in data.items() if v is not None}, sort_keys=False)


def principle(**fields: Any) -> str:
    """A constitution whose one principle has `fields` replaced (None drops a field)."""
    base = {
        "id": "kind",
        "critique_request": "Point out unkind parts.",
        "revision_request": "Rewrite it kindly.",
        "judge_question": "Which is kinder?",
    }
    base.update(fields)
    return constitution(principles=[{k: v for k, v in base.items() if v is not None}])


def config(**sections: Any) -> str:
    data: dict[str, Any] = {"run_dir": "runs/x", "prompts": {"path": "prompts.jsonl"}}
    data.update(sections)
    return yaml.safe_dump({k: v for k, v in data.items() if v is not None}, sort_keys=False)


def rows(*items: Any) -> bytes:
    return b"".join((i if isinstance(i, bytes) else json.dumps(i).encode()) + b"\n" for i in items)


GOOD_ROW = {"prompt": "Hello?"}
BILLION_LAUGHS = "a: &a ['lol','lol','lol','lol','lol','lol','lol','lol','lol']\n" + "".join(
    f"{c}: &{c} [*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p}]\n"
    for p, c in zip("abcdefgh", "bcdefghi", strict=True)
)


@dataclass(frozen=True)
class Case:
    id: str
    content: bytes | str
    needles: tuple[str, ...]
    """Text the message must contain (the file name is always checked)."""
    suffix: str = ".yaml"


CONSTITUTIONS = [
    Case("missing-name", constitution(name=None), ("line 1", "'name' is missing")),
    Case("name-is-a-list", constitution(name=["a", "b"]), ("line 1", "name", "valid string")),
    Case("name-empty", constitution(name=""), ("name", "at least 1 character")),
    Case("version-is-a-list", constitution(version=[1]), ("version", "valid string")),
    Case("description-is-a-mapping", constitution(description={"a": 1}), ("description",)),
    Case("system-prompt-is-a-number", constitution(system_prompt=3), ("system_prompt", "valid string")),
    Case("principles-missing", constitution(principles=None), ("'principles' is missing",)),
    Case("principles-empty", constitution(principles=[]), ("line 2", "principles", "at least one entry")),
    Case("principles-is-text", constitution(principles="be kind"), ("principles", "list")),
    Case("principle-is-text", constitution(principles=["be kind"]), ("principles[0]", "mapping")),
    Case(
        "principle-missing-critique",
        principle(critique_request=None),
        ("line 3", "principles[0]", "revision_request is given without critique_request"),
    ),
    Case(
        "principle-serves-nothing",
        principle(judge_question=None, critique_request=None, revision_request=None),
        ("principles[0]", "no judge_question and no critique_request"),
    ),
    Case(
        "critique-blank",
        principle(critique_request="   "),
        ("principles[0].critique_request", "only whitespace"),
    ),
    Case(
        "judge-question-blank",
        principle(judge_question="\t\n"),
        ("principles[0].judge_question", "whitespace"),
    ),
    Case("name-blank", constitution(name=" "), ("line 1", "name", "only whitespace")),
    Case("weight-inf", principle(weight=float("inf")), ("principles[0].weight", "finite number")),
    Case("weight-nan", principle(weight=float("nan")), ("principles[0].weight", "finite number")),
    Case(
        "check-bad-regex", principle(check={"must_match": "("}), ("principles[0].check.must_match", "compile")
    ),
    Case("check-unknown-rule", principle(check={"max_word": 3}), ("did you mean 'max_words'",)),
    Case("check-empty", principle(check={}), ("principles[0].check", "no rules")),
    Case("check-never-passes", principle(check={"min_words": 5, "max_words": 2}), ("no response can pass",)),
    Case(
        "check-python-unimportable", principle(check={"python": "nope_nope:fn"}), ("check.python", "import")
    ),
    Case("principle-empty-revision", principle(revision_request=""), ("principles[0].revision_request",)),
    Case("principle-id-with-space", principle(id="be kind"), ("line 3", "principles[0].id", "'be kind'")),
    Case("principle-id-too-long", principle(id="x" * 81), ("principles[0].id", "80")),
    Case("principle-id-is-a-number", principle(id=7), ("principles[0].id", "valid string")),
    Case("weight-zero", principle(weight=0), ("principles[0].weight", "greater than 0")),
    Case("weight-negative", principle(weight=-2), ("principles[0].weight",)),
    Case("weight-is-text", principle(weight="heavy"), ("principles[0].weight", "'heavy'")),
    Case("tags-is-a-number", principle(tags=5), ("principles[0].tags",)),
    Case(
        "critique-is-a-list",
        principle(critique_request=["a"]),
        ("principles[0].critique_request", "valid string"),
    ),
    Case(
        "unknown-principle-key",
        principle(critque_request="x"),
        ("critque_request", "did you mean 'critique_request'"),
    ),
    Case("unknown-top-level-key", constitution(principals=[]), ("principals", "did you mean 'principles'")),
    Case(
        "duplicate-ids",
        f"name: t\nprinciples:\n{PRINCIPLE}{PRINCIPLE}",
        ("line 7", "principles[1].id", "duplicate principle id", "principles[0]"),
    ),
    Case(
        "duplicate-key",
        "name: a\nname: b\n" + f"principles:\n{PRINCIPLE}",
        ("line 2", "name", "key given twice"),
    ),
    Case(
        "example-missing-revision",
        constitution(examples=[{"prompt": "p", "response": "r", "critique": "c"}]),
        ("examples[0].revision", "missing"),
    ),  # fmt: skip
    Case("examples-is-text", constitution(examples="none"), ("examples",)),
    Case("yaml-syntax-error", "name: [unclosed\nprinciples: []\n", ("YAML error",)),
    Case("yaml-bad-indent", "name: a\n principles:\n  - id: x\n", ("line", "YAML error")),
    Case("yaml-tab-indent", "name: a\nprinciples:\n\t- id: x\n", ("line 3", "YAML error")),
    Case("non-utf8-latin1", "name: caf\xe9\n".encode("latin-1"), ("line 1", "not UTF-8", "0xe9")),
    Case("binary-garbage", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", ("not UTF-8",)),
    Case("nul-byte", "name: a\x00b\nprinciples: []\n", ("YAML error", "special characters")),
    Case("huge-file", "# padding\n" * (MAX_BYTES // 10 + 1), ("bytes, over the", "-byte limit")),
    Case("alias-bomb", BILLION_LAUGHS, ("line 2", "alias *a is not allowed")),
    Case("single-alias", f"name: &n test\nversion: *n\nprinciples:\n{PRINCIPLE}", ("line 2", "alias *n")),
    Case(
        "python-tag",
        "name: !!python/object/apply:os.system ['echo hi']\n",
        ("line 1", "YAML error", "python"),
    ),
    Case("empty-file", "", ("the file is empty",)),
    Case("only-comments", "# nothing here\n# at all\n", ("the file is empty",)),
    Case("top-level-list", "- a\n- b\n", ("line 1", "expected a mapping of fields, got a list")),
    Case("top-level-text", "just some words\n", ("line 1", "expected a mapping of fields, got a str")),
    Case("deep-nesting", "a: " + "[" * 3000 + "]" * 3000 + "\n", ("nested too deeply",)),
    Case("bad-date", f"name: a\nversion: 2020-13-45\nprinciples:\n{PRINCIPLE}", ("YAML error", "month")),
    Case(
        "huge-integer", f"name: a\nversion: {'9' * 5000}\nprinciples:\n{PRINCIPLE}", ("YAML error", "digits")
    ),
    Case("unhashable-key", "? [a, b]\n: 1\n", ("line 1", "unhashable key")),
    Case("json-syntax-error", '{"name": "a",\n "principles": [}\n', ("line 2", "invalid JSON"), ".json"),
    Case(
        "json-deep-nesting", '{"a": ' + "[" * 100_000 + "]" * 100_000 + "}", ("nested too deeply",), ".json"
    ),
    Case("json-principles-null", '{"name": "a", "principles": null}', ("principles", "valid tuple"), ".json"),
    Case(
        "json-duplicate-key",
        '{"name": "a", "name": "b", "principles": []}',
        ("name", "key given twice"),
        ".json",
    ),
    Case(
        "cai-empty-edit-request",
        json.dumps({"harmful0": {"prompt": ["Critique it."], "edit_request": ""}}),
        ("harmful0.edit_request", "expected non-empty text"),
        ".json",
    ),  # fmt: skip
    Case(
        "cai-prompt-not-text",
        json.dumps({"harmful0": {"prompt": [5], "edit_request": "Fix it."}}),
        ("harmful0.prompt[0]",),
        ".json",
    ),  # fmt: skip
    Case(
        "swarm-entry-not-mapping",
        json.dumps({"constitutions": ["be kind"]}),
        ("constitutions[0]", "mapping"),
        ".json",
    ),
    Case(
        "swarm-missing-revision",
        json.dumps({"constitutions": [{"critic": "c"}]}),
        ("constitutions[0].revision",),
        ".json",
    ),
    Case(
        "swarm-system-chat-not-list",
        json.dumps({"constitutions": [{"critic": "c", "revision": "r"}], "system_chat": 5}),
        ("system_chat", "list of conversations"),
        ".json",
    ),  # fmt: skip
]

PROMPT_SETS = [
    # issue 31: a table file as prompts.path said "not UTF-8 text, save the file as UTF-8"
    Case(
        "parquet-as-path", b"PAR1\x15\x04\x15\x10garbage", ("Parquet file", "set prompts.dataset"), ".parquet"
    ),
    Case(
        "parquet-named-jsonl", b"PAR1\x15\x04\x15\x10garbage", ("Parquet file", "prompts.dataset"), ".jsonl"
    ),
    Case("arrow-as-path", b"\xff\xff\xff\xff\x98\x00\x00\x00", ("Arrow (stream) file",), ".arrow"),
    Case("csv-as-path", b"prompt\nhello\n", ("CSV file", "set prompts.dataset"), ".csv"),
    Case("bad-json", rows(GOOD_ROW, b'{"prompt": "unclosed'), (":2:", "not valid JSON"), ".jsonl"),
    Case("trailing-comma", rows(b'{"prompt": "a",}'), (":1:", "not valid JSON"), ".jsonl"),
    Case("row-is-a-list", rows(GOOD_ROW, ["Hello?"]), (":2:", "expected a JSON object, got list"), ".jsonl"),
    Case("row-is-text", rows("Hello?"), (":1:", "expected a JSON object, got str"), ".jsonl"),
    Case("row-is-null", rows(None), (":1:", "got NoneType"), ".jsonl"),
    Case("row-without-fields", rows({}), (":1:", "a row needs `messages`, `prompt`"), ".jsonl"),
    Case("unknown-field-only", rows({"question": "Hi?"}), (":1:", "a row needs"), ".jsonl"),
    Case("messages-empty", rows({"messages": []}), (":1:", "non-empty list"), ".jsonl"),
    Case("messages-is-text", rows({"messages": "Hi"}), (":1:", "non-empty list"), ".jsonl"),
    Case("message-not-object", rows({"messages": [5]}), (":1:", "messages[0]", "got 5"), ".jsonl"),
    Case(
        "message-missing-content",
        rows({"messages": [{"role": "user"}]}),
        (":1:", "messages[0].content", "required"),
        ".jsonl",
    ),
    Case(
        "message-missing-role", rows({"messages": [{"content": "x"}]}), (":1:", "messages[0].role"), ".jsonl"
    ),
    Case(
        "wrong-role",
        rows({"messages": [{"role": "robot", "content": "hi"}]}),
        (":1:", "messages[0].role", "'robot'"),
        ".jsonl",
    ),
    Case(
        "tool-turn-without-call-id",
        rows({"messages": [{"role": "user", "content": "a"}, {"role": "tool", "content": "b"}]}),
        (":1:", "messages[1]", "a tool turn needs `tool_call_id`"),
        ".jsonl",
    ),  # fmt: skip
    Case(
        "content-is-a-number",
        rows({"messages": [{"role": "user", "content": 5}]}),
        (":1:", "messages[0].content"),
        ".jsonl",
    ),
    Case(
        "extra-message-key",
        rows({"messages": [{"role": "user", "content": "a", "name": "x"}]}),
        (":1:", "messages[0].name"),
        ".jsonl",
    ),
    Case(
        "ends-with-assistant",
        rows({"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]}),
        (":1:", "must end with a user turn"),
        ".jsonl",
    ),  # fmt: skip
    Case(
        "empty-user-turn",
        rows({"messages": [{"role": "user", "content": ""}]}),
        (":1:", "last user turn is empty"),
        ".jsonl",
    ),
    Case(
        "blank-user-turn",
        rows({"messages": [{"role": "user", "content": "  \n "}]}),
        (":1:", "empty"),
        ".jsonl",
    ),
    Case("empty-prompt-string", rows(GOOD_ROW, GOOD_ROW, {"prompt": ""}), (":3:", "empty"), ".jsonl"),
    Case(
        "prompt-is-a-number", rows({"prompt": 42}), (":1:", "`prompt` must be a string or a list"), ".jsonl"
    ),
    Case(
        "prompt-list-bad-item", rows({"prompt": [{"role": "user"}]}), (":1:", "prompt[0].content"), ".jsonl"
    ),
    Case(
        "hh-rlhf-without-assistant", rows({"chosen": "\n\nHuman: hi"}), (":1:", "no Assistant turn"), ".jsonl"
    ),
    Case(
        "hh-rlhf-ends-with-assistant-only",
        rows({"chosen": "\n\nAssistant: hi"}),
        (":1:", "user turn"),
        ".jsonl",
    ),
    Case("unpaired-surrogate", rows(b'{"prompt": "\\ud800 hi"}'), (":1:", "unpaired surrogate"), ".jsonl"),
    Case("huge-number", rows(b'{"prompt": ' + b"9" * 5000 + b"}"), (":1:", "digits"), ".jsonl"),
    Case(
        "deep-nesting",
        rows(b'{"prompt": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"),
        (":1:", "not a readable JSON row"),
        ".jsonl",
    ),
    Case("non-utf8", b'{"prompt": "caf\xe9"}\n', ("not UTF-8",), ".jsonl"),
    Case("empty-file", b"", ("no prompts found",), ".jsonl"),
    Case("blank-lines-only", b"\n\n   \n", ("no prompts found",), ".jsonl"),
    Case("not-gzip", b"plain text, not gzip", ("cannot read the file", "gzip"), ".jsonl.gz"),
    Case("truncated-gzip", gzip.compress(rows(GOOD_ROW) * 200)[:40], ("cannot read the file",), ".jsonl.gz"),
]

CONFIGS = [
    Case("missing-prompts", config(prompts=None), ("'prompts' is missing",)),
    Case("missing-prompts-path", config(prompts={"limit": 3}), ("line 2", "prompts.path", "missing")),
    Case("unknown-section", config(genration={}), ("genration", "did you mean 'generation'")),
    Case("unknown-nested-key", config(revise={"round": 2}), ("revise.round", "did you mean 'rounds'")),
    Case("seed-is-text", config(seed="abc"), ("seed", "whole number", "'abc'")),
    Case("rounds-zero", config(revise={"rounds": 0}), ("revise.rounds", "1 or more")),
    Case("rounds-too-many", config(revise={"rounds": 100}), ("revise.rounds", "16 or less")),
    Case("negative-temperature", config(generation={"temperature": -1}), ("generation.temperature",)),
    Case("top-p-zero", config(generation={"top_p": 0}), ("generation.top_p", "greater than 0")),
    Case("max-tokens-text", config(generation={"max_tokens": "many"}), ("generation.max_tokens", "'many'")),
    Case("bad-choice", config(judge={"inconsistent": "maybe"}), ("judge.inconsistent", "'maybe'", "'keep'")),
    Case(
        "base-urls-not-a-list", config(model={"base_urls": "http://x:8000/v1"}), ("model.base_urls", "list")
    ),
    Case(
        "base-url-without-scheme",
        config(model={"base_urls": ["localhost:8000"]}),
        ("model.base_urls", "http"),
    ),
    Case("concurrency-zero", config(model={"max_concurrency": 0}), ("model.max_concurrency",)),
    Case(
        "unreachable-after-zero",
        config(model={"unreachable_after": 0}),
        ("model.unreachable_after", "greater than 0"),
    ),
    Case("kv-cache-zero", config(model={"server": {"kv_cache_gb": 0}}), ("model.server.kv_cache_gb",)),
    Case("negative-restarts", config(model={"server": {"max_restarts": -1}}), ("model.server.max_restarts",)),
    Case("model-is-a-list", config(model=["a"]), ("model", "mapping")),
    Case(
        "dpo-source-unknown",
        config(train={"dpo": {"sources": ["human"]}}),
        ("train.dpo.sources[0]", "'human'"),
    ),
    Case("ensemble-zero", config(train={"reward": {"ensemble": 0}}), ("train.reward.ensemble", "1 or more")),
    Case(
        "ensemble-too-many",
        config(train={"reward": {"ensemble": 64}}),
        ("train.reward.ensemble", "16 or less"),
    ),
    Case(
        "head-without-principles",
        config(train={"reward": {"heads": {"safety": []}}}),
        ("train.reward.heads", "'safety' lists no tag"),
    ),
    Case("limit-zero", config(prompts={"path": "p.jsonl", "limit": 0}), ("prompts.limit",)),
    Case("alias", "prompts: &p {path: a.jsonl}\nrun_dir: *p\n", ("line 2", "alias")),
    Case("duplicate-key", "prompts: {path: a}\nseed: 1\nseed: 2\n", ("line 3", "seed", "key given twice")),
    Case("empty-config", "", ("the file is empty",)),
    Case("top-level-list", "- run_dir: x\n", ("expected a mapping",)),
    Case("non-utf8-config", b"run_dir: caf\xe9\n", ("not UTF-8",)),
    Case("deep-config", "prompts: " + "[" * 3000 + "]" * 3000 + "\n", ("nested too deeply",)),
    # issue 31: booleans are not numbers, URLs are parsed in full, no NUL byte in any text
    Case(
        "max-tokens-bool", config(generation={"max_tokens": True}), ("generation.max_tokens", "true is not")
    ),
    Case("temperature-bool", config(generation={"temperature": False}), ("generation.temperature", "false")),
    Case("seed-bool", config(seed=True), ("seed", "true is not a number")),
    Case("timeout-bool", config(model={"request_timeout": True}), ("model.request_timeout", "not a number")),
    Case("url-port-too-big", config(model={"base_urls": ["http://127.0.0.1:99999/v1"]}), ("1 to 65535",)),
    Case("url-port-text", config(model={"base_urls": ["http://127.0.0.1:abc/v1"]}), ("1 to 65535",)),
    Case("url-port-zero", config(model={"base_urls": ["http://127.0.0.1:0/v1"]}), ("port 0",)),
    Case("url-no-host", config(model={"base_urls": ["http:///v1"]}), ("model.base_urls", "no host")),
    Case("url-only-port", config(model={"base_urls": ["http://:8000/v1"]}), ("no host",)),
    Case("nul-in-run-dir", config(run_dir="runs/a\x00b"), ("run_dir", "NUL byte")),
    Case("nul-in-prompts-path", config(prompts={"path": "p\x00.jsonl"}), ("prompts", "NUL byte")),
    Case("nul-in-model-path", config(model={"path": "m\x00"}), ("model.path", "NUL byte")),
]


def _write(tmp_path: Path, case: Case, stem: str) -> Path:
    path = tmp_path / f"{stem}{case.suffix}"
    path.write_bytes(case.content.encode() if isinstance(case.content, str) else case.content)
    return path


def _check(message: str, path: Path, needles: tuple[str, ...]) -> None:
    assert "\n" not in message, f"not one line: {message!r}"
    assert path.name in message, message
    for needle in needles:
        assert needle in message, f"{needle!r} not in {message!r}"


@pytest.mark.parametrize("case", CONSTITUTIONS, ids=lambda c: c.id)
def test_bad_constitution(tmp_path: Path, case: Case) -> None:
    path = _write(tmp_path, case, "constitution")
    with pytest.raises(ConstitutionError) as info:
        load_constitution(path)
    _check(str(info.value), path, case.needles)


@pytest.mark.parametrize("case", PROMPT_SETS, ids=lambda c: c.id)
def test_bad_prompt_set(tmp_path: Path, case: Case) -> None:
    path = _write(tmp_path, case, "prompts")
    with pytest.raises(PromptSetError) as info:
        load_prompts(path)
    _check(str(info.value), path, case.needles)


@pytest.mark.parametrize("case", CONFIGS, ids=lambda c: c.id)
def test_bad_config(tmp_path: Path, case: Case) -> None:
    path = _write(tmp_path, case, "run")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    _check(str(info.value), path, case.needles)


def test_missing_and_folder_inputs_name_the_path(tmp_path: Path) -> None:
    for load, error in (
        (load_constitution, ConstitutionError),
        (load_prompts, PromptSetError),
        (load_config, ConfigError),
    ):
        with pytest.raises(error, match="not found"):  # type: ignore[arg-type]
            load(tmp_path / "absent.yaml")
        (tmp_path / "folder.yaml").mkdir(exist_ok=True)
        with pytest.raises(error) as info:  # type: ignore[arg-type]
            load(tmp_path / "folder.yaml")
        assert "folder.yaml" in str(info.value) and "\n" not in str(info.value)


# --- CLI arguments, through the entry point a user runs ----------------------------------------


@dataclass(frozen=True)
class CliCase:
    id: str
    args: tuple[str, ...]
    needles: tuple[str, ...]
    setup: Callable[[Path], None] | None = None


def _good_config(folder: Path, **extra: Any) -> None:
    data = {
        "run_dir": str(folder / "run"),
        "prompts": {"path": str(ROOT / "examples" / "prompts.jsonl"), "limit": 2},
        "model": {"base_urls": ["http://127.0.0.1:9/v1"], "served_name": "m"},
        **extra,
    }
    (folder / "run.yaml").write_text(yaml.safe_dump(data))


def _run_dir_is_a_file(folder: Path) -> None:
    _good_config(folder)
    (folder / "run").write_text("not a folder")


def _broken_manifest(folder: Path) -> None:
    _good_config(folder)
    (folder / "run").mkdir()
    (folder / "run" / "manifest.json").write_text("[1, 2]")


CLI_CASES = [
    CliCase("run-missing-config", ("run", "{tmp}/absent.yaml"), ("absent.yaml", "file not found")),
    CliCase("run-config-is-folder", ("run", "{tmp}"), ("cannot read the file",)),
    CliCase(
        "set-without-equals",
        ("run", "{tmp}/run.yaml", "--set", "seed"),
        ("--set 'seed'", "key=value"),
        _good_config,
    ),
    CliCase(
        "set-empty-key-part",
        ("run", "{tmp}/run.yaml", "--set", "revise..rounds=1"),
        ("key=value",),
        _good_config,
    ),
    CliCase(
        "set-bad-yaml", ("run", "{tmp}/run.yaml", "--set", "seed=[1,"), ("not valid YAML",), _good_config
    ),
    CliCase(
        "set-undefined-alias",
        ("run", "{tmp}/run.yaml", "--set", "seed=*x"),
        ("not valid YAML",),
        _good_config,
    ),
    CliCase(
        "set-out-of-range",
        ("run", "{tmp}/run.yaml", "--set", "revise.rounds=0"),
        ("revise.rounds", "1 or more"),
        _good_config,
    ),
    CliCase(
        "set-wrong-type",
        ("run", "{tmp}/run.yaml", "--set", "seed=abc"),
        ("seed", "whole number"),
        _good_config,
    ),
    CliCase(
        "set-bool-for-an-integer",
        ("run", "{tmp}/run.yaml", "--set", "generation.max_tokens=true"),
        ("generation.max_tokens", "true is not a number"),
        _good_config,
    ),
    CliCase(
        "set-url-port-too-big",
        ("run", "{tmp}/run.yaml", "--set", "model.base_urls=[http://127.0.0.1:70000/v1]"),
        ("model.base_urls", "1 to 65535"),
        _good_config,
    ),
    CliCase(
        "set-into-a-value",
        ("run", "{tmp}/run.yaml", "--set", "run_dir.x=1"),
        ("cannot apply the override run_dir.x=1",),
        _good_config,
    ),
    CliCase(
        "set-makes-a-section",
        ("run", "{tmp}/run.yaml", "--set", "seed.x=1"),
        ("run.yaml, seed: ", "valid integer"),
        _good_config,
    ),
    CliCase(
        "set-unknown-key",
        ("run", "{tmp}/run.yaml", "--set", "revise.roundz=1"),
        ("did you mean 'rounds'",),
        _good_config,
    ),
    CliCase(
        "prompts-file-missing",
        ("run", "{tmp}/run.yaml", "--set", "prompts.path=nowhere.jsonl"),
        ("nowhere.jsonl", "not found"),
        _good_config,
    ),
    CliCase(
        "unknown-constitution",
        ("run", "{tmp}/run.yaml", "--set", "constitution=nonesuch"),
        ("'nonesuch'", "shipped names"),
        _good_config,
    ),
    CliCase(
        "run-dir-is-a-file",
        ("run", "{tmp}/run.yaml"),
        ("run directory", "is a file"),
        _run_dir_is_a_file,
    ),
    CliCase(
        "manifest-not-an-object", ("run", "{tmp}/run.yaml"), ("manifest.json", "JSON list"), _broken_manifest
    ),
    CliCase(
        "validate-unknown-name", ("constitution", "validate", "nonesuch"), ("'nonesuch'", "shipped names")
    ),
    CliCase(
        "validate-bad-file",
        ("constitution", "validate", "{tmp}/run.yaml"),
        ("run.yaml", "'name' is missing"),
        _good_config,
    ),
]


@pytest.mark.parametrize("case", CLI_CASES, ids=lambda c: c.id)
def test_bad_cli_arguments(
    tmp_path: Path, case: CliCase, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    if case.setup:
        case.setup(tmp_path)
    monkeypatch.setenv("COLUMNS", "300")
    monkeypatch.setattr(sys, "argv", ["rlaif", *(a.replace("{tmp}", str(tmp_path)) for a in case.args)])
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        main()
    _, err = capsys.readouterr()
    assert info.value.code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for needle in case.needles:
        assert needle in lines[0], f"{needle!r} not in {lines[0]!r}"


@pytest.mark.parametrize(
    "args", [("run",), ("run", "a.yaml", "--bogus"), ("nosuchcommand",), ("run", "a.yaml", "--set")], ids=str
)
def test_usage_errors_exit_2_without_a_traceback(
    args: tuple[str, ...], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "argv", ["rlaif", *args])
    with pytest.raises(SystemExit) as info:
        main()
    _, err = capsys.readouterr()
    assert info.value.code == 2
    assert "Traceback" not in err and ("Error" in err or "error" in err)


# --- properties ------------------------------------------------------------------------------

PROPERTY = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)
constitution_like = st.fixed_dictionaries(
    {},
    optional={
        "name": json_values,
        "version": json_values,
        "principles": st.lists(
            st.fixed_dictionaries(
                {},
                optional={
                    "id": st.text(max_size=12) | json_values,
                    "critique_request": json_values,
                    "revision_request": json_values,
                    "judge_question": st.text(max_size=10),
                    "weight": st.floats() | st.integers() | st.text(max_size=3),
                    "tags": json_values,
                },
            ),
            max_size=3,
        )
        | json_values,
        "examples": json_values,
        "extra": json_values,
    },
)


def _only_proper_errors(load: Callable[[Path], object], path: Path, error: type[RlaifError]) -> None:
    try:
        load(path)
    except error as exc:
        message = str(exc)
        assert message and "\n" not in message and path.name in message, message
    # anything else (a TypeError, a RecursionError, a bare ValidationError) fails the test


@PROPERTY
@given(data=st.binary(max_size=400), suffix=st.sampled_from([".yaml", ".json"]))
def test_any_bytes_as_a_constitution(
    tmp_path_factory: pytest.TempPathFactory, data: bytes, suffix: str
) -> None:
    path = tmp_path_factory.mktemp("c") / f"constitution{suffix}"
    path.write_bytes(data)
    _only_proper_errors(load_constitution, path, ConstitutionError)


@PROPERTY
@given(text=st.text(max_size=300))
def test_any_text_as_a_constitution(tmp_path_factory: pytest.TempPathFactory, text: str) -> None:
    path = tmp_path_factory.mktemp("c") / "constitution.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    _only_proper_errors(load_constitution, path, ConstitutionError)


@PROPERTY
@given(data=constitution_like, as_json=st.booleans())
def test_any_structure_as_a_constitution(
    tmp_path_factory: pytest.TempPathFactory, data: dict[str, Any], as_json: bool
) -> None:
    folder = tmp_path_factory.mktemp("c")
    path = folder / ("constitution.json" if as_json else "constitution.yaml")
    path.write_text(json.dumps(data) if as_json else yaml.safe_dump(data), encoding="utf-8")
    _only_proper_errors(load_constitution, path, ConstitutionError)


@PROPERTY
@given(data=st.binary(max_size=400))
def test_any_bytes_as_a_prompt_set(tmp_path_factory: pytest.TempPathFactory, data: bytes) -> None:
    path = tmp_path_factory.mktemp("p") / "prompts.jsonl"
    path.write_bytes(data)
    _only_proper_errors(load_prompts, path, PromptSetError)


@PROPERTY
@given(
    lines=st.lists(
        json_values
        | st.fixed_dictionaries({"prompt": json_values})
        | st.fixed_dictionaries(
            {
                "messages": st.lists(
                    st.fixed_dictionaries(
                        {},
                        optional={
                            "role": json_values | st.sampled_from(["user", "assistant", "system"]),
                            "content": json_values,
                        },
                    ),
                    max_size=3,
                )
            }
        )
        | st.fixed_dictionaries({"chosen": st.text(max_size=40) | json_values}),
        min_size=1,
        max_size=5,
    )
)
def test_any_json_rows_as_a_prompt_set(tmp_path_factory: pytest.TempPathFactory, lines: list[Any]) -> None:
    path = tmp_path_factory.mktemp("p") / "prompts.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    _only_proper_errors(load_prompts, path, PromptSetError)


@PROPERTY
@given(
    data=st.dictionaries(
        st.sampled_from(
            ["run_dir", "prompts", "seed", "model", "generation", "revise", "judge", "train", "review", "x"]
        ),
        json_values,
        max_size=5,
    )
)
def test_any_structure_as_a_config(tmp_path_factory: pytest.TempPathFactory, data: dict[str, Any]) -> None:
    path = tmp_path_factory.mktemp("k") / "run.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    _only_proper_errors(load_config, path, ConfigError)


@PROPERTY
@given(items=st.lists(st.text(max_size=30), max_size=3))
def test_any_set_options(tmp_path_factory: pytest.TempPathFactory, items: list[str]) -> None:
    """`--set` strings: accepted, or one ConfigError (naming the option or the config file)."""
    path = tmp_path_factory.mktemp("k") / "run.yaml"
    path.write_text(config(), encoding="utf-8")
    try:
        load_config(path, _overrides(items))
    except ConfigError as exc:
        assert "\n" not in str(exc) and ("--set" in str(exc) or path.name in str(exc)), str(exc)
