"""Every record that crosses a stage boundary, in one module.

Records are frozen. Each carries a stable id: a hash of an explicit list of the fields that define
it (see `stable_id`), so the same inputs give the same id and a resumed run skips what is done.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal

import regex
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    ValidationInfo,
    field_validator,
    model_serializer,
    model_validator,
)
from pydantic_core import PydanticCustomError

__all__ = [
    "Check",
    "CheckOutcome",
    "Constitution",
    "CritiqueRound",
    "FewShotExample",
    "Judgment",
    "Message",
    "OrderVerdict",
    "Pair",
    "PairJudgment",
    "PreferencePair",
    "Principle",
    "ProbeResponse",
    "PromptRecord",
    "Provenance",
    "Response",
    "ReviewAnswer",
    "ReviewDecision",
    "ReviewItem",
    "Revision",
    "RevisionStep",
    "RubricItems",
    "RubricScore",
    "SamplingParams",
    "ToolCall",
    "ToolResult",
    "ToolSpec",
    "ToolStep",
    "canonical_json",
    "derive_seed",
    "stable_id",
]


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no whitespace: the form that is hashed."""
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_dump)


def _dump(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    raise TypeError(f"cannot hash {type(value).__name__}")


def stable_id(kind: str, **fields: Any) -> str:
    """A 16-hex-digit id from the record kind and the fields that define it."""
    digest = hashlib.sha256(canonical_json({"kind": kind, **fields}).encode()).hexdigest()
    return f"{kind[:3]}-{digest[:16]}"


def derive_seed(seed: int, key: str) -> int:
    """A per-request seed from the run seed and a key naming the request (31 bits, as servers want)."""
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


class Record(BaseModel):
    # A judge may return log-probs of -inf: stored as "-Infinity" so the line reads back (the default,
    # null, made the whole stage file unreadable on the next open).
    model_config = ConfigDict(
        frozen=True, extra="forbid", use_attribute_docstrings=True, ser_json_inf_nan="strings"
    )


TOOL_NAME = r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$"
"""A tool's name as OpenAI-compatible servers accept it."""


class ToolCall(Record):
    """One call of a tool by the assistant; read and written in OpenAI's form
    `{"id", "type": "function", "function": {"name", "arguments"}}`."""

    id: str = Field(min_length=1)
    """The call's id, which the `tool` turn answering it names."""
    name: str
    """The tool called (as the model wrote it: a name no tool has is recorded as `unknown_tool`)."""
    arguments: str
    """The arguments as the model wrote them: JSON text (which may not parse; the runtime records that)."""

    @model_validator(mode="before")
    @classmethod
    def _openai_form(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and "function" in data:
            function = data["function"]
            if not isinstance(function, Mapping):
                raise PydanticCustomError("tool_call_function", "`function` must be {name, arguments}")
            if data.get("type", "function") != "function":
                raise PydanticCustomError("tool_call_type", '`type` must be "function"')
            arguments = function.get("arguments", "{}")
            if isinstance(arguments, Mapping):  # some datasets store the arguments parsed
                arguments = json.dumps(arguments, sort_keys=True, ensure_ascii=False)
            extra = set(data) - {"id", "type", "function"}
            if extra:
                raise PydanticCustomError(
                    "tool_call_extra", "unknown field(s): {extra}", {"extra": sorted(extra)}
                )
            return {"id": data.get("id"), "name": function.get("name"), "arguments": arguments}
        return data

    @model_serializer(mode="wrap")
    def _as_openai(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data = handler(self)
        return {
            "id": data["id"],
            "type": "function",
            "function": {"name": data["name"], "arguments": data["arguments"]},
        }


class Message(Record):
    """One chat turn in OpenAI / Hugging Face format, tool calls and tool results included."""

    role: Literal["system", "user", "assistant", "tool"]
    """Who speaks (`tool`: a tool's result, answering `tool_call_id`)."""
    content: str
    """What is said (for a `tool` turn, the tool's output; "" for an assistant turn that only calls tools)."""
    tool_calls: tuple[ToolCall, ...] = ()
    """An assistant turn's tool calls, in order; () for a turn that calls none."""
    tool_call_id: str | None = None
    """A `tool` turn: the id of the call it answers."""
    name: str | None = None
    """A `tool` turn: the tool's name, as OpenAI-style datasets often give it; None otherwise."""

    @field_validator("name")
    @classmethod
    def _name_on_tool_turns(cls, name: str | None, info: ValidationInfo) -> str | None:
        if name is not None and info.data.get("role") != "tool":
            raise PydanticCustomError(
                "extra_forbidden", "Extra inputs are not permitted (only a tool turn has a name)"
            )
        return name

    @model_validator(mode="before")
    @classmethod
    def _no_content_with_calls(cls, data: Any) -> Any:
        # OpenAI sends `content: null` beside tool calls; stored as "" so every turn has text.
        if isinstance(data, Mapping) and data.get("content") is None and data.get("tool_calls"):
            return {**data, "content": ""}
        return data

    @model_validator(mode="after")
    def _tool_fields(self) -> Message:
        if self.tool_calls and self.role != "assistant":
            raise PydanticCustomError("tool_calls_role", "only an assistant turn carries `tool_calls`")
        if self.role == "tool" and not self.tool_call_id:
            raise PydanticCustomError("tool_call_id_missing", "a tool turn needs `tool_call_id`")
        if self.tool_call_id is not None and self.role != "tool":
            raise PydanticCustomError("tool_call_id_role", "only a tool turn carries `tool_call_id`")
        return self

    @model_serializer(mode="wrap")
    def _plain_when_plain(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # A turn without tools dumps, and hashes, as {role, content}: prompt ids stay what they were.
        data = handler(self)
        if not data.get("tool_calls"):
            data.pop("tool_calls", None)
        for key in ("tool_call_id", "name"):
            if data.get(key) is None:
                data.pop(key, None)
        return data  # type: ignore[no-any-return]


class ToolSpec(Record):
    """A tool offered to the model, in OpenAI's form `{"type": "function", "function": {name, description,
    parameters}}` (how it is read and written)."""

    name: str = Field(pattern=TOOL_NAME)
    """The tool's name, which calls use."""
    description: str = ""
    """What it does, for the model."""
    parameters: dict[str, Any] = {}
    """JSON schema of its arguments (an object schema); {} takes none."""

    @model_validator(mode="before")
    @classmethod
    def _openai_form(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and "function" in data:
            if data.get("type", "function") != "function":
                raise PydanticCustomError("tool_type", '`type` must be "function"')
            function = data["function"]
            if not isinstance(function, Mapping):
                raise PydanticCustomError(
                    "tool_function", "`function` must be {name, description, parameters}"
                )
            return dict(function)
        return data

    @field_validator("parameters")
    @classmethod
    def _object_schema(cls, schema: dict[str, Any]) -> dict[str, Any]:
        if schema and schema.get("type", "object") != "object":
            raise PydanticCustomError("tool_parameters", "`parameters` must be an object schema")
        if not isinstance(schema.get("properties", {}), dict) or not isinstance(
            schema.get("required", []), list
        ):
            raise PydanticCustomError("tool_parameters", "`properties` must be an object, `required` a list")
        return schema

    @model_serializer(mode="wrap")
    def _as_openai(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        return {"type": "function", "function": handler(self)}


class ToolResult(Record):
    """What one tool call gave back, with how it went; `output` is what the model is shown."""

    call_id: str
    """The call answered."""
    name: str
    """The tool called (as the model named it, known or not)."""
    status: Literal["ok", "error", "timeout", "output_limit", "not_json", "unknown_tool", "bad_arguments"]
    """`ok`; `error` (the tool raised); `timeout` (it ran past the limit and was stopped); `output_limit` (it
    returned or printed more than the limit); `not_json` (it returned something JSON cannot hold);
    `unknown_tool`; `bad_arguments` (not a JSON object, or not what the tool takes)."""
    output: str
    """JSON text: the tool's return value, or `{"error": STATUS, "detail": ...}` when it did not succeed."""


class ToolStep(Record):
    """One model turn of a tool-using answer and the results of its calls, stored as soon as it is done.

    Its id hashes the whole trajectory before it, so a resumed run reuses a step only where everything
    that led to it is unchanged."""

    id: str
    """Stable id (the response, the step's index and every turn before it)."""
    response_id: str
    """The response this trajectory becomes."""
    index: int
    """0-based step number."""
    assistant: Message
    """The model's turn (tool calls, or the final answer)."""
    results: tuple[ToolResult, ...] = ()
    """One result per call, in the calls' order."""
    finish_reason: str | None = None
    """As the server said."""


def _not_blank(text: str) -> str:
    if not text.strip():
        raise PydanticCustomError("blank_text", "text is only whitespace")
    return text


Text = Annotated[str, Field(min_length=1), AfterValidator(_not_blank)]
"""Text that must say something: empty and whitespace-only values are refused."""

REGEX_FLAGS = regex.V0
"""User patterns are Python `re` syntax: the `regex` engine in its re-compatible mode (V0)."""


def compile_pattern(pattern: str) -> regex.Pattern[str]:
    """A user pattern compiled as checks run it; `regex.error` when it does not compile."""
    return regex.compile(pattern, REGEX_FLAGS)


def _compiles(pattern: str) -> str:
    try:
        compile_pattern(pattern)
    except (regex.error, ValueError, OverflowError, RecursionError) as exc:
        reason = " ".join(str(exc).split())
        raise PydanticCustomError(
            "check_regex", "the pattern does not compile: {reason}", {"reason": reason}
        ) from None
    return pattern


_PYTHON_TARGET = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*", re.ASCII)


def _python_target(target: str) -> str:
    if not _PYTHON_TARGET.fullmatch(target):
        raise PydanticCustomError("check_python_target", "not a 'package.module:function' target")
    return target


Pattern = Annotated[str, Field(min_length=1), AfterValidator(_compiles)]
"""A regular expression in Python `re` syntax, checked to compile."""
Limit = Annotated[int, Field(strict=True, ge=1)]
"""A word or character count: a whole number, 1 or more."""


class Check(Record):
    """Rules a response must pass, checked in code; every rule given must pass.

    Written in a principle as `check: {max_words: 60, not_starts_with: "(?i)sure"}`. The rules are run
    by `rlaif.judging.checks.run_check`; `rlaif.judging.checks.RULES` says what each one reads.
    """

    model_config = ConfigDict(populate_by_name=True)  # merged with Record's: `Check(valid_json=True)` works

    min_words: Limit | None = None
    """At least this many words (runs of non-whitespace)."""
    max_words: Limit | None = None
    """At most this many words."""
    min_chars: Limit | None = None
    """At least this many characters, leading and trailing whitespace not counted."""
    max_chars: Limit | None = None
    """At most this many characters, leading and trailing whitespace not counted."""
    must_match: Pattern | None = None
    """A regular expression that must match somewhere in the response."""
    must_not_match: Pattern | None = None
    """A regular expression that must not match anywhere in the response."""
    starts_with: Pattern | None = None
    """A regular expression that must match at the start of the response (after leading whitespace)."""
    not_starts_with: Pattern | None = None
    """A regular expression that must not match at the start of the response (after leading whitespace)."""
    valid_json: Literal[True] | None = Field(default=None, alias="json")
    """`json: true`: the whole response (surrounding whitespace aside) is valid JSON."""
    python: Annotated[str, AfterValidator(_python_target)] | None = None
    """`package.module:function` called as `fn(conversation, response)`: runs the user's own code."""
    max_tool_calls: Annotated[int, Field(strict=True, ge=0)] | None = None
    """Tool-using answers: at most this many tool calls in the trace (0: none at all)."""
    tools_succeed: Literal[True] | None = None
    """`tools_succeed: true`: every tool call in the trace succeeded (no error, timeout, unknown tool...)."""
    confirm_tools: Annotated[str, Field(min_length=1)] | None = None
    """A glob of tool names (`delete_*`): each call of a matching tool must follow a user turn that confirms
    (yes, confirm, go ahead, proceed...) after an assistant turn, i.e. the user agreed to it."""
    quotes_tool_result: Literal[True] | None = None
    """`quotes_tool_result: true`: the final answer contains a number the last successful tool result holds
    (fails when no tool succeeded)."""

    @field_validator("max_words", "max_chars")
    @classmethod
    def _max_not_below_min(cls, value: int | None, info: ValidationInfo) -> int | None:
        low = info.data.get(f"min_{info.field_name.removeprefix('max_')}") if info.field_name else None
        if value is not None and low is not None and value < low:
            raise PydanticCustomError(
                "check_never_passes",
                "{limit} {value} is below {other} {low}: no response can pass",
                {"limit": info.field_name, "value": value, "other": f"min_{info.field_name[4:]}", "low": low},
            )
        return value

    @model_validator(mode="after")
    def _can_pass(self) -> Check:
        if not self.rules():
            raise PydanticCustomError("check_empty", "the check has no rules")
        words, chars = self.min_words, self.max_chars
        if words is not None and chars is not None and 2 * words - 1 > chars:  # n words, n - 1 spaces
            raise PydanticCustomError(
                "check_never_passes",
                "{other} {low} needs at least {need} characters but max_chars is {value}: nothing can pass",
                {
                    "low": words,
                    "need": 2 * words - 1,
                    "value": chars,
                    "limit": "max_chars",
                    "other": "min_words",
                },
            )
        return self

    def rules(self) -> dict[str, Any]:
        """The rules given, by their YAML name (`json`, not `valid_json`), in declaration order."""
        return {
            (field.alias or name): value
            for name, field in type(self).model_fields.items()
            if (value := getattr(self, name)) is not None
        }

    @model_serializer(mode="wrap")
    def _only_given(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # Only the rules given, under their YAML names: a dump reads back as the same YAML, and adding
        # a rule to this model does not change the hash of constitutions that do not use it.
        data = handler(self)
        if "valid_json" in data:
            data["json"] = data.pop("valid_json")
        return {key: value for key, value in data.items() if value is not None}


class Principle(Record):
    """One principle of a constitution.

    A principle is used to critique and revise when it has both `critique_request` and
    `revision_request`, and by the judge when it has a `judge_question`; it needs at least one of the two.
    """

    id: str = Field(pattern=r"^[A-Za-z0-9_.-]+$", min_length=1, max_length=80)
    """Short stable name, used in provenance and to pick a principle by hand."""
    critique_request: Text | None = None
    """Asks the model to critique its last answer under this principle; None: not used to critique."""
    revision_request: Text | None = None
    """Asks the model to rewrite its answer to address the critique; given with `critique_request`."""
    judge_question: Text | None = None
    """Asks a judge which of two answers better follows this principle; None: not used by the judge."""
    tags: tuple[str, ...] = ()
    """Free labels for filtering and per-tag reports."""
    weight: float = Field(default=1.0, gt=0, allow_inf_nan=False)
    """Relative probability of being sampled."""
    check: Check | None = None
    """Rules checked in code, for exact labels where they apply; None: judged by the LLM only."""
    scope: Literal["trace", "final"] = "trace"
    """Tool-using answers: `trace` judges (and checks) the whole trajectory, calls and results included;
    `final` only the final answer. Plain answers are the same either way."""
    rubric: bool | None = None
    """Judge this principle by a per-prompt checklist (true) or by the pairwise question (false);
    None follows `judge.rubric`."""

    @model_validator(mode="after")
    def _usable(self) -> Principle:
        if (self.critique_request is None) != (self.revision_request is None):
            given, missing = (
                ("critique_request", "revision_request")
                if self.revision_request is None
                else ("revision_request", "critique_request")
            )
            raise PydanticCustomError(
                "principle_half_pair",
                "{given} is given without {missing}",
                {"given": given, "missing": missing},
            )
        if self.critique_request is None and self.judge_question is None:
            raise PydanticCustomError(
                "principle_unused", "the principle has no judge_question and no critique_request"
            )
        return self

    @property
    def critiques(self) -> bool:
        """Whether the principle can be used to critique and revise."""
        return self.critique_request is not None and self.revision_request is not None

    @property
    def judges(self) -> bool:
        """Whether the principle can be used by the judge."""
        return self.judge_question is not None

    @model_serializer(mode="wrap")
    def _without_unset(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # Fields added after the first release are left out when unset, so a constitution that does not
        # use them dumps, and hashes, exactly as it did before they existed.
        data = handler(self)
        for key in ("critique_request", "revision_request", "judge_question", "check", "rubric"):
            if data.get(key) is None:
                data.pop(key, None)
        if data.get("scope") == "trace":
            data.pop("scope", None)
        return data  # type: ignore[no-any-return]


class FewShotExample(Record):
    """A worked critique-and-revision example shown before the real conversation."""

    prompt: str
    """The user's request."""
    response: str
    """A first answer with a flaw."""
    critique: str
    """The critique of that answer."""
    revision: str
    """The answer rewritten to fix the flaw."""


class Constitution(Record):
    """A named, versioned set of principles."""

    name: Text
    """Human-readable name."""
    version: str = "1"
    """The author's version string."""
    description: str = ""
    """What this constitution is for."""
    system_prompt: str = ""
    """Optional system message for every generation under this constitution."""
    principles: tuple[Principle, ...] = Field(min_length=1)
    """The principles; ids are unique."""
    examples: tuple[FewShotExample, ...] = ()
    """Optional few-shot critique-and-revision examples."""

    @field_validator("principles")
    @classmethod
    def _weights_add_up(cls, principles: tuple[Principle, ...]) -> tuple[Principle, ...]:
        if not math.isfinite(sum(p.weight for p in principles)):
            raise PydanticCustomError("weights_overflow", "the weights add up to more than a float can hold")
        return principles

    def for_critique(self) -> tuple[Principle, ...]:
        """The principles used to critique and revise: those with a critique and a revision request."""
        return tuple(p for p in self.principles if p.critiques)

    def for_judging(self) -> tuple[Principle, ...]:
        """The principles the judge uses: those with a judge question."""
        return tuple(p for p in self.principles if p.judges)

    @functools.cached_property
    def hash(self) -> str:
        """Content hash, recorded in provenance (computed once: every record id and filter asks for it,
        and hashing the whole constitution per record was half of resuming a finished run)."""
        return hashlib.sha256(canonical_json(self).encode()).hexdigest()[:16]

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Constitution:
        copy = super().model_copy(update=update, deep=deep)
        copy.__dict__.pop("hash", None)  # a copy with changes must hash its own content
        return copy

    def principle(self, principle_id: str) -> Principle:
        """The principle with this id; a `ConstitutionError` naming the known ids if absent."""
        from rlaif.errors import ConstitutionError

        for principle in self.principles:
            if principle.id == principle_id:
                return principle
        import difflib

        ids = [p.id for p in self.principles]
        close = difflib.get_close_matches(principle_id, ids, n=1)
        guess = f"did you mean {close[0]!r}? " if close else ""
        raise ConstitutionError(
            f"unknown principle id {principle_id!r} in constitution {self.name!r}; {guess}known ids: "
            f"{', '.join(ids)}"
        )


class CheckOutcome(Record):
    """What a principle's check said about one response: a pass, a fail, or a check error.

    A check error (a python check that raised or returned something other than a score in [0, 1], a
    regular expression that timed out) is never a pass or a fail: `score` and `passed` are None.
    """

    principle_id: str | None = None
    """The principle whose check ran; None for a bare `Check`."""
    score: float | None = Field(default=None, ge=0, le=1)
    """1.0 pass, 0.0 fail, or a python check's score in [0, 1]; None on a check error."""
    passed: bool | None = None
    """score >= 0.5; None on a check error."""
    failed: tuple[str, ...] = ()
    """Names of the rules that failed (`max_words`, `python`, ...), in the check's order."""
    error: str | None = None
    """What went wrong, for a check error; None otherwise."""

    @model_validator(mode="after")
    def _consistent(self) -> CheckOutcome:
        if (self.score is None) != (self.error is not None):
            raise ValueError("an outcome has a score or an error, never both or neither")
        if self.passed != (None if self.score is None else self.score >= 0.5):
            raise ValueError("passed must be score >= 0.5, or None without a score")
        return self

    @property
    def status(self) -> Literal["pass", "fail", "check_error"]:
        """`pass`, `fail` or `check_error`."""
        if self.passed is None:
            return "check_error"
        return "pass" if self.passed else "fail"


class SamplingParams(Record):
    """Sampling settings sent with a request."""

    max_tokens: int = Field(default=128, ge=1)
    """Most tokens to generate."""
    temperature: float = Field(default=0.7, ge=0)
    """Softmax temperature; 0 is greedy."""
    top_p: float = Field(default=0.95, gt=0, le=1)
    """Nucleus sampling mass."""


class Provenance(Record):
    """Where a record came from: enough to reproduce it."""

    model: str
    """Served model name or path."""
    template: str
    """Template name (`prompts/NAME.jinja`)."""
    template_hash: str
    """Hash of the template source."""
    constitution_hash: str | None = None
    """Hash of the constitution, when one was used."""
    sampling: SamplingParams | None = None
    """Sampling settings of the request."""
    seed: int | None = None
    """Per-request seed."""
    rlaif_version: str = ""
    """Package version that wrote the record."""


class PromptRecord(Record):
    """One prompt of a prompt set: a whole conversation ending in a user turn."""

    id: str
    """Stable id (hash of the messages)."""
    messages: tuple[Message, ...]
    """The conversation so far; the last turn is the user's."""
    source: str = ""
    """File and line or dataset row it came from."""
    tools: tuple[ToolSpec, ...] = ()
    """Tools the model may call while answering (OpenAI form); () for none."""

    @model_serializer(mode="wrap")
    def _without_tools(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data = handler(self)
        if not data.get("tools"):
            data.pop("tools", None)
        return data  # type: ignore[no-any-return]


class Response(Record):
    """A sampled answer to a prompt."""

    id: str
    """Stable id."""
    prompt_id: str
    """Id of the prompt answered."""
    sample_index: int
    """Which of the prompt's samples this is (0 is the one revised)."""
    text: str
    """The answer."""
    finish_reason: str | None = None
    """`stop`, `length`, ... as the server said."""
    provenance: Provenance
    """How it was made."""
    trace: tuple[Message, ...] = ()
    """A tool-using answer: the assistant's tool-call turns and the tool turns, in order, before the final
    answer (`text`); () for a plain answer."""
    trajectory: Literal["done", "step_limit"] | None = None
    """A tool-using answer: `done` (the model answered), `step_limit` (it still called tools at the last
    step; `text` is then what that turn said); None for a plain answer."""

    @model_serializer(mode="wrap")
    def _plain_when_plain(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data = handler(self)
        if not data.get("trace"):
            data.pop("trace", None)
        if data.get("trajectory") is None:
            data.pop("trajectory", None)
        return data  # type: ignore[no-any-return]


class ProbeResponse(Record):
    """The worse answer of a universal probe: made by rlaif from a stored answer, never sampled."""

    id: str
    """Stable id (prompt, probe kind, source response and text)."""
    prompt_id: str
    """The prompt it is judged as an answer to."""
    probe_kind: str
    """How it was made: `padded`, `off_topic`, `truncated` or `repetition`."""
    response_id: str
    """The stored response it was made from (for `off_topic`, another prompt's answer)."""
    text: str
    """The answer as the judge sees it."""


class CritiqueRound(Record):
    """One critique-and-revise round."""

    principle_id: str
    """Principle the critique was made under."""
    critique: str
    """The model's critique of the previous answer."""
    revision: str
    """The answer rewritten after the critique."""


class RevisionStep(Record):
    """One round for one prompt, stored as soon as it is done so a crash loses at most a round."""

    id: str
    """Stable id."""
    prompt_id: str
    """Id of the prompt."""
    response_id: str
    """Id of the original response the chain started from."""
    round: int
    """0-based round number."""
    answer: str
    """The answer that was critiqued (the original, or the previous round's revision)."""
    principle_id: str
    """Principle of this round."""
    critique: str
    """The critique."""
    revision: str
    """The rewritten answer."""
    provenance: Provenance
    """How it was made."""


class Revision(Record):
    """An answer taken through N critique-and-revise rounds."""

    id: str
    """Stable id."""
    prompt_id: str
    """Id of the prompt."""
    response_id: str
    """Id of the original response."""
    original: str
    """The original answer."""
    rounds: tuple[CritiqueRound, ...]
    """Rounds in order."""
    provenance: Provenance
    """How the last round was made (templates, constitution, sampling)."""

    @property
    def final(self) -> str:
        """The last non-empty revision, or the original when there is none."""
        return next((r.revision for r in reversed(self.rounds) if r.revision), self.original)


class OrderVerdict(Record):
    """The judge's answer for one presentation order."""

    first_id: str
    """Response id shown as A."""
    p_first: float | None
    """P(A is better), renormalised over A and B; None when unparsed."""
    status: Literal["ok", "unparsed", "error"]
    """`ok`, `unparsed` (answer not A or B) or `error` (request failed)."""
    raw: str
    """The judge's raw text."""
    logprobs: dict[str, float] = {}
    """Log-probs of the option tokens as returned."""
    principle_ids: tuple[str, ...] = ()
    """Principles this verdict was asked under (one member of a principle ensemble)."""
    samples: tuple[str, ...] = ()
    """Chain of thought: each sampled reasoning text (several with self-consistency)."""
    sample_p: tuple[float | None, ...] = ()
    """Chain of thought: P(A is better) per sample before averaging and clamping; None where unparsed."""
    score: float | None = None
    """Pointwise mode: the rubric score of response `first_id` (then `p_first` is None)."""


class Judgment(Record):
    """A pairwise judgment of two responses under one or more principles."""

    id: str
    """Stable id."""
    prompt_id: str
    """Id of the prompt."""
    response_a_id: str
    """First response (the one whose preference probability `p_a` is)."""
    response_b_id: str
    """Second response."""
    principle_ids: tuple[str, ...]
    """Principles asked about."""
    orders: tuple[OrderVerdict, ...]
    """One verdict per presentation order (A first, then B first when both are judged)."""
    p_a: float | None
    """P(response A is better), averaged over the orders that parsed; None if none did."""
    consistent: bool | None
    """Whether both orders prefer the same response; None with fewer than two parsed orders."""
    status: Literal["ok", "partial", "unparsed"]
    """`ok`: every order parsed; `partial`: some did; `unparsed`: none did."""
    provenance: Provenance
    """How it was made."""
    mode: Literal["logprob", "cot", "pointwise", "rubric"] = "logprob"
    """How the verdicts were obtained (see `JudgeConfig.mode`; `rubric`: per-prompt checklist items,
    `judge.rubric`, each order then holds one response's score)."""
    rubric_items: tuple[str, ...] = ()
    """Rubric judgments: the items that decided it ("principle: item"), the widest gap first."""
    flags: dict[str, tuple[str, ...]] = {}
    """Injection heuristics that fired, by response id (candidates that address the judge); {} if none."""
    kind: Literal["sampled", "contrast", "revision", "probe"] = "sampled"
    """`sampled`: the prompt's first two samples; `contrast`: a sample that passes a principle's check
    against one that fails it; `revision`: a final revision (A) validated against its original (B);
    `probe`: a universal probe, an answer against a spoiled copy of it (`probes.jsonl`, never exported)."""
    source: Literal["llm", "check"] = "llm"
    """What decided `p_a`: the LLM judge, or the principles' checks (their outcomes differed)."""
    llm_p_a: float | None = None
    """Where a check decided and the LLM judge was asked too (`judge.checks: probe`): its own P(A better)."""
    llm_agrees: bool | None = None
    """Probe: whether the LLM judge preferred the response the check preferred; None when it was not
    asked, tied, or did not parse."""
    checks: dict[str, tuple[CheckOutcome, ...]] = {}
    """Response id -> the outcome of each checkable principle of this judgment on that response."""
    probe_kind: str | None = None
    """Probes: how the worse answer was made, e.g. "padded", "off_topic", "truncated", "repetition"."""
    known_better: Literal["a", "b"] | None = None
    """Which response is better where that is known without the judge (probes); None where it is not."""


class RubricItems(Record):
    """The checklist the judge wrote for one prompt and principle (`judge.rubric`)."""

    id: str
    """Stable id (prompt, principle, model, template, constitution, k, seed)."""
    prompt_id: str
    """Id of the prompt."""
    principle_id: str
    """The principle the items spell out."""
    items: tuple[str, ...]
    """The yes/no requirements, deduplicated; () when the answer did not parse."""
    status: Literal["ok", "unparsed"]
    """`ok`: a JSON list of 1 to k non-blank strings; `unparsed`: anything else (nothing is guessed)."""
    raw: str
    """The model's answer as written."""
    duplicates: int = 0
    """Items dropped as repeats of an earlier one (case and spacing ignored)."""
    provenance: Provenance
    """How it was made."""


class RubricScore(Record):
    """One answer scored on one rubric item: P(yes) from the judge's one-token Yes/No log-probs."""

    id: str
    """Stable id (the items' id, the item, the response, model, template)."""
    prompt_id: str
    """Id of the prompt."""
    response_id: str
    """The answer scored."""
    principle_id: str
    """The principle of the item."""
    items_id: str
    """Id of the `RubricItems` the item belongs to."""
    item: str
    """The item's text."""
    p_yes: float | None
    """P(the answer meets the item), renormalised over Yes and No; None when unparsed."""
    status: Literal["ok", "unparsed"]
    """`ok`: a clean Yes or No with log-probs; `unparsed` otherwise."""
    raw: str
    """The one-token answer."""
    logprobs: dict[str, float] = {}
    """Top first-token log-probs."""
    provenance: Provenance
    """How it was made."""


class Pair(Record):
    """Two answers to one prompt, given in code to `rlaif.Judge` (which also reads a `(prompt, response_a,
    response_b)` tuple, or one with the principle id fourth, as a pair)."""

    prompt: str | tuple[Message, ...]
    """The user's request, or a whole conversation ending in a user turn."""
    response_a: Text
    """The first answer (the one `p_a` is about)."""
    response_b: Text
    """The second answer."""
    principle: str | None = None
    """Id of the principle to judge under; None draws one by weight, fixed by the judge's seed and the
    pair (as the pipeline's judge does)."""


class PairJudgment(Record):
    """What `rlaif.Judge` found about one `Pair`: the verdict, the evidence, and the whole `Judgment`."""

    pair: Pair
    """The pair judged."""
    p_a: float | None
    """P(response A is better), averaged over the orders that parsed; None if none did."""
    verdict: Literal["A", "B", "tie"] | None
    """`A` or `B`; `tie` when `p_a` is exactly 0.5 or the LLM judge's two orders disagree (then its label is
    position bias, not preference; a check's label is exact); None when no verdict parsed."""
    consistent: bool | None
    """Whether the LLM judge's two presentation orders prefer the same answer; None with fewer than two
    parsed orders."""
    principle_ids: tuple[str, ...]
    """The principles asked about."""
    status: Literal["ok", "partial", "unparsed"]
    """Parse status: `ok` every order parsed, `partial` some did, `unparsed` none did."""
    source: Literal["llm", "check"]
    """What decided `p_a`: the LLM judge, or the principles' checks (their outcomes differed)."""
    error: str | None = None
    """The first request that failed (the server refused it, say): not the model's answer; None when every
    request was answered."""
    judgment: Judgment
    """The full record: each order's raw answer and log-probs, flags, checks and provenance."""


class PreferencePair(Record):
    """A synthetic preference: chosen over rejected, for one prompt."""

    id: str
    """Stable id."""
    prompt_id: str
    """Id of the prompt."""
    prompt: tuple[Message, ...]
    """The conversation the two answers continue."""
    chosen: str
    """The preferred answer."""
    rejected: str
    """The other answer."""
    score: float
    """P(chosen is better) by the source: the judge's soft label, 1.0 for check and revision pairs."""
    source: Literal["revision", "judge", "check"]
    """What made the preference."""
    source_id: str
    """Id of the Revision or Judgment behind it."""
    principle_ids: tuple[str, ...] = ()
    """Principles involved."""
    consistent: bool | None = None
    """For judge pairs: whether both orders agreed."""
    provenance: Provenance
    """Provenance of the source record."""
    rubric_items: tuple[str, ...] = ()
    """Rubric pairs: the checklist items that decided it (see `Judgment.rubric_items`)."""
    chosen_trace: tuple[Message, ...] = ()
    """Tool-using answers: the chosen answer's tool-call and tool turns before its final text; () if none."""
    rejected_trace: tuple[Message, ...] = ()
    """The rejected answer's tool-call and tool turns before its final text; () if none."""
    tools: tuple[ToolSpec, ...] = ()
    """The tools both answers were offered; () for none."""

    @model_serializer(mode="wrap")
    def _plain_when_plain(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data = handler(self)
        for key in ("chosen_trace", "rejected_trace", "tools", "rubric_items"):
            if not data.get(key):
                data.pop(key, None)
        return data  # type: ignore[no-any-return]

    @property
    def is_trajectory(self) -> bool:
        """Whether either answer used tools, or tools were offered."""
        return bool(self.chosen_trace or self.rejected_trace or self.tools)


class ReviewDecision(Record):
    """A person's verdict on a pair, in the pair's own frame (not the order it was shown in).

    Decisions are appended, never edited: a reviewer's latest record for a pair is their decision,
    and a record with `withdrawn=True` takes the earlier one back (undo).
    """

    id: str
    """Stable id (pair, reviewer, verdict, note, withdrawn, session, created_at): one per act."""
    pair_id: str
    """The pair reviewed."""
    reviewer: str
    """Who reviewed."""
    verdict: Literal["chosen", "rejected", "tie", "flag"]
    """`chosen`: agrees with the pair; `rejected`: prefers the other; `tie`; `flag`: drop it."""
    note: str = ""
    """Optional comment."""
    shown_first: Literal["chosen", "rejected"] | None = None
    """Which of the pair's answers the reviewer saw first; None when not recorded."""
    principle_ids: tuple[str, ...] = ()
    """The pair's principles, copied so agreement per principle needs only the decisions."""
    ai_verdict_shown: bool = False
    """Whether the AI's choice was visible to the reviewer (anchoring)."""
    withdrawn: bool = False
    """True: this record takes back the reviewer's earlier decision on the pair (undo)."""
    via: str = ""
    """How it was made: `terminal`, `web`, `file`, `hook`."""
    session: str = ""
    """Review session or file batch id."""
    created_at: str = ""
    """UTC time of the decision, ISO 8601."""


class ReviewItem(Record):
    """A pair as a reviewer sees it: two answers in a seeded random order, the AI's choice hidden."""

    pair_id: str
    """The pair under review."""
    prompt: tuple[Message, ...]
    """The conversation both answers continue."""
    first: str
    """The answer shown first (`1`)."""
    second: str
    """The answer shown second (`2`)."""
    principle_ids: tuple[str, ...] = ()
    """The principles the pair was judged under."""
    principle_questions: tuple[str, ...] = ()
    """The judge question of each principle ("" when the constitution could not be loaded)."""
    rubric_items: tuple[str, ...] = ()
    """Rubric pairs: the checklist items that decided the pair ("principle: item"; not which answer met
    them), so a reviewer can judge the items too and flag a bad one in the note."""
    ai_preferred: Literal["first", "second"] | None = None
    """The AI's choice; None unless the config shows it (`review.show_ai_verdict`)."""
    ai_probability: float | None = None
    """The AI's P(its choice is better); None unless the config shows it."""


class ReviewAnswer(Record):
    """What a reviewer (person, page, file row or Python callable) answers about a `ReviewItem`."""

    pair_id: str
    """The item answered."""
    verdict: Literal["first", "second", "tie", "flag"]
    """`first` or `second`: that answer is better; `tie`; `flag`: the pair is broken, drop it."""
    note: str = ""
    """Optional comment."""
    reviewer: str | None = None
    """Who answered; None means the session's reviewer."""


class SavedCalibration(Record):
    """`rlaif evaluate judge --save-calibration FILE`: a fitted temperature for runs to reuse
    (`judge.calibration: FILE`)."""

    temperature: float
    """T of p' = sigmoid(logit(p) / T)."""
    n: int
    """Labelled rows it was fitted on."""
    ece_before: float | None = None
    """ECE of the raw labels on those rows."""
    ece_after: float | None = None
    """ECE after, cross-validated."""
    brier_before: float | None = None
    """Brier of the raw labels."""
    brier_after: float | None = None
    """Brier after, cross-validated."""
    accuracy: float | None = None
    """The judge's agreement on those rows (ties left out)."""
    judge_model: str
    """The judge model the labels came from (a run judged by another warns)."""
    template_hash: str | None = None
    """Hash of the judge template (a run with another warns)."""
    mode: str | None = None
    """The judge mode (logprob, cot, pointwise)."""
    data: str | None = None
    """The labelled file it was fitted on."""
