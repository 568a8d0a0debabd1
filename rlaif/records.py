"""Every record that crosses a stage boundary, in one module.

Records are frozen. Each carries a stable id: a hash of an explicit list of the fields that define
it (see `stable_id`), so the same inputs give the same id and a resumed run skips what is done.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "Constitution",
    "CritiqueRound",
    "FewShotExample",
    "Judgment",
    "Message",
    "OrderVerdict",
    "PreferencePair",
    "Principle",
    "PromptRecord",
    "Provenance",
    "Response",
    "ReviewAnswer",
    "ReviewDecision",
    "ReviewItem",
    "Revision",
    "RevisionStep",
    "SamplingParams",
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


class Message(Record):
    """One chat turn in OpenAI / Hugging Face format."""

    role: Literal["system", "user", "assistant"]
    """Who speaks."""
    content: str
    """What is said."""


class Principle(Record):
    """One principle of a constitution."""

    id: str = Field(pattern=r"^[A-Za-z0-9_.-]+$", min_length=1, max_length=80)
    """Short stable name, used in provenance and to pick a principle by hand."""
    critique_request: str = Field(min_length=1)
    """Asks the model to critique its last answer under this principle."""
    revision_request: str = Field(min_length=1)
    """Asks the model to rewrite its answer to address the critique."""
    judge_question: str = Field(min_length=1)
    """Asks a judge which of two answers better follows this principle."""
    tags: tuple[str, ...] = ()
    """Free labels for filtering and per-tag reports."""
    weight: float = Field(default=1.0, gt=0)
    """Relative probability of being sampled."""


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

    name: str = Field(min_length=1)
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

    @property
    def hash(self) -> str:
        """Content hash, recorded in provenance."""
        return hashlib.sha256(canonical_json(self).encode()).hexdigest()[:16]

    def principle(self, principle_id: str) -> Principle:
        """The principle with this id; a `ConstitutionError` naming the known ids if absent."""
        from rlaif.errors import ConstitutionError

        for principle in self.principles:
            if principle.id == principle_id:
                return principle
        known = ", ".join(p.id for p in self.principles)
        raise ConstitutionError(
            f"unknown principle id {principle_id!r} in constitution {self.name!r}; known ids: {known}"
        )


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
    mode: Literal["logprob", "cot", "pointwise"] = "logprob"
    """How the verdicts were obtained (see `JudgeConfig.mode`)."""
    flags: dict[str, tuple[str, ...]] = {}
    """Injection heuristics that fired, by response id (candidates that address the judge); {} if none."""
    kind: Literal["sampled", "contrast", "revision"] = "sampled"
    """`sampled`: the prompt's first two samples; `contrast`: a sample that passes a principle's check
    against one that fails it; `revision`: a final revision (A) validated against its original (B)."""
    source: Literal["llm", "check"] = "llm"
    """What decided `p_a`: the LLM judge, or the principles' checks (their outcomes differed)."""
    llm_p_a: float | None = None
    """Where a check decided and the LLM judge was asked too (`judge.checks: probe`): its own P(A better)."""
    llm_agrees: bool | None = None
    """Probe: whether the LLM judge preferred the response the check preferred; None when it was not
    asked, tied, or did not parse."""


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
