"""Universal probes: pairs made from the run's own answers whose better side is known without any check.

For a seeded share of prompts (`judge.probes.share`), the prompt's first answer is judged against a
spoiled copy of itself, one probe per kind:

- `padded`: the answer with plainly irrelevant filler appended (shipped sentences, chosen by the seed):
  longer and no better, so the padded copy must lose; a judge that prefers length fails it;
- `off_topic`: another prompt's first answer, in this prompt's place;
- `truncated`: the answer cut off mid-sentence, near half its words;
- `repetition`: its first sentence (or first words) repeated until it is as long as the answer.

Each probe is judged like any pair (both orders, the prompt's sampled principles, the run's judge
settings) with the better answer on a seeded side, and stored as a `Judgment` of kind `probe` in
`probes.jsonl`, apart from the judgments that make pairs: nothing reads it for training. The spoiled
answers, which no stage sampled, are stored in `probe_responses.jsonl`; their ids hash the prompt, the
kind, the source answer and the text, so a rerun builds the same probes and judges none twice. A probe
that cannot be built (no answer, an empty one, one too short to cut or repeat, an answer the server
already cut off) is counted by reason, never guessed.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Container, Iterable, Iterator, Mapping, Sequence
from functools import cache
from importlib import resources
from typing import Literal

from rlaif.backends.protocol import Backend
from rlaif.config import JudgeConfig, ProbesConfig
from rlaif.evaluate.stats import rate
from rlaif.judging.labels import side
from rlaif.judging.modes import Candidate, JudgeItem, draw_principles
from rlaif.pipeline.judge import judge_all
from rlaif.pipeline.reports import ProbeReport, ProbeTally, StageReport
from rlaif.records import (
    Constitution,
    Judgment,
    ProbeResponse,
    PromptRecord,
    Response,
    derive_seed,
    stable_id,
)
from rlaif.store import Stage
from rlaif.templates import SHIPPED, Templates

__all__ = [
    "MIN_TRUNCATE_WORDS",
    "build_probes",
    "fillers",
    "judge_probes",
    "outcome",
    "padded",
    "probe_items",
    "probe_report",
    "probed",
    "probes_on",
    "repeated",
    "run_probe_report",
    "truncated",
]

MIN_TRUNCATE_WORDS = 12
"""An answer needs this many words to be cut off mid-sentence and still read as cut off."""
MIN_REPEAT_WORDS = 3
"""The repeated unit (first sentence or first words) needs this many words."""
PARTNER_TRIES = 8
"""Off-topic probes: how many other prompts are tried for an answer that is not empty and differs."""
PAD_SHARE = 0.5
"""Filler appended to a padded probe: at least this share of the answer's words (and one sentence)."""

_WORD = re.compile(r"\S+")
_SENTENCE = re.compile(r"^.*?[.!?](?=\s|$)", re.DOTALL)
_ENDS_CLAUSE = re.compile(r"[.!?:;,)\]\"'”’]$")


@cache
def fillers() -> tuple[str, ...]:
    """The shipped filler sentences (`probe_fillers.txt`, package data)."""
    text = resources.files("rlaif.pipeline").joinpath("probe_fillers.txt").read_text(encoding="utf-8")
    return tuple(line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#"))


def probes_on(config: ProbesConfig) -> bool:
    """Whether any probe is configured (a share above 0 and at least one kind)."""
    return config.share > 0 and bool(config.kinds)


def probed(config: ProbesConfig, seed: int, prompt_id: str) -> bool:
    """Whether a prompt is drawn for probing (seeded by the run's seed and the prompt)."""
    if not probes_on(config):
        return False
    return config.share >= 1.0 or derive_seed(seed, f"probes:{prompt_id}") / 2**31 < config.share


# --- the spoiled answers -------------------------------------------------------------------------------


def padded(answer: str, *, seed: int, key: str) -> str:
    """`answer` with filler sentences appended (from a seeded start in the shipped list) until they add at
    least `PAD_SHARE` of its words."""
    pool = fillers()
    start = derive_seed(seed, f"probe-filler:{key}") % len(pool)
    wanted = max(1, math.ceil(PAD_SHARE * len(_WORD.findall(answer))))
    added: list[str] = []
    words = 0
    for i in range(len(pool)):
        if added and words >= wanted:
            break
        sentence = pool[(start + i) % len(pool)]
        added.append(sentence)
        words += len(sentence.split())
    return f"{answer.rstrip()}\n\n{' '.join(added)}"


def truncated(answer: str) -> str | None:
    """`answer` cut off mid-sentence near half its words (no word that ends a clause is the last one);
    None when it is shorter than `MIN_TRUNCATE_WORDS` words or has no such place to cut."""
    spans = [m.span() for m in _WORD.finditer(answer)]
    if len(spans) < MIN_TRUNCATE_WORDS:
        return None
    middle = len(spans) // 2
    # Nearest cut to the middle, keeping at least 3 words on either side, after a word that ends nothing.
    for offset in range(len(spans)):
        for k in (middle + offset, middle - offset):
            if 3 <= k <= len(spans) - 3 and not _ENDS_CLAUSE.search(answer[slice(*spans[k - 1])]):
                return answer[: spans[k - 1][1]]
    return None


def repeated(answer: str) -> str | None:
    """The answer's first sentence (or, without one, its first 8 words) repeated until it is at least as
    long as the answer, and at least 3 times; None when that unit is under `MIN_REPEAT_WORDS` words."""
    text = answer.strip()
    found = _SENTENCE.match(text)
    unit = found.group(0).strip() if found else " ".join(text.split()[:8])
    unit_words = len(unit.split())
    if unit_words < MIN_REPEAT_WORDS:
        return None
    times = max(3, math.ceil(len(text.split()) / unit_words))
    return " ".join([unit] * times)


# --- which probes a run has -------------------------------------------------------------------------------


def build_probes(
    prompts: Sequence[PromptRecord],
    responses: Mapping[str, Sequence[Response]],
    *,
    config: ProbesConfig,
    seed: int,
    not_built: Counter[str],
    only: Container[str] | None = None,
) -> Iterator[tuple[PromptRecord, Response, ProbeResponse]]:
    """(prompt, its first answer, the spoiled answer) for every probe of the drawn prompts, made as they
    are read; `not_built` counts, as "KIND: reason", the probes that could not be made. With `only` (a
    worker's prompt ids) just those prompts' probes are made, their partners drawn from all `prompts`,
    so N workers build the probes one process builds."""
    partner = _partners(prompts, responses, seed) if "off_topic" in config.kinds else {}
    for prompt in prompts:
        if not probed(config, seed, prompt.id) or (only is not None and prompt.id not in only):
            continue
        samples = responses.get(prompt.id, ())
        answer = next((r for r in samples if r.sample_index == 0), None)
        for kind in config.kinds:
            if answer is None:
                not_built[f"{kind}: no answer"] += 1
                continue
            made = _spoiled(kind, prompt, answer, partner, responses, seed)
            if isinstance(made, str):
                not_built[f"{kind}: {made}"] += 1
                continue
            text, source = made
            yield prompt, answer, ProbeResponse(
                id=stable_id("probe_response", prompt_id=prompt.id, probe_kind=kind, response_id=source,
                             text=text),
                prompt_id=prompt.id, probe_kind=kind, response_id=source, text=text,
            )  # fmt: skip


def _spoiled(
    kind: str,
    prompt: PromptRecord,
    answer: Response,
    partner: Mapping[str, str],
    responses: Mapping[str, Sequence[Response]],
    seed: int,
) -> tuple[str, str] | str:
    """(text, source response id) of one spoiled answer, or why it cannot be made."""
    if not answer.text.strip():
        return "empty answer"
    if kind == "padded":
        return padded(answer.text, seed=seed, key=answer.id), answer.id
    if kind == "truncated":
        if answer.finish_reason == "length":
            return "answer already cut off by max_tokens"
        cut = truncated(answer.text)
        return "answer too short to cut mid-sentence" if cut is None else (cut, answer.id)
    if kind == "repetition":
        loop = repeated(answer.text)
        return "first sentence too short to repeat" if loop is None else (loop, answer.id)
    other_id = partner.get(prompt.id)
    if other_id is None:
        return "no other prompt answered"
    for _ in range(PARTNER_TRIES):  # the next prompts of the cycle, past empty or identical answers
        other = next((r for r in responses.get(other_id, ()) if r.sample_index == 0), None)
        if other is not None and other.text.strip() and other.text.strip() != answer.text.strip():
            return other.text, other.id
        other_id = partner[other_id]
        if other_id == prompt.id:
            break
    return "no other prompt's answer differs from it"


def _partners(
    prompts: Sequence[PromptRecord], responses: Mapping[str, Sequence[Response]], seed: int
) -> dict[str, str]:
    """Prompt id -> the prompt whose answer is its off-topic probe: the next one in a seeded cycle of the
    answered prompts (no prompt is its own partner; the same prompt set gives the same partners)."""
    answered = sorted(
        {p.id for p in prompts if p.id in responses},
        key=lambda pid: (derive_seed(seed, f"probe-cycle:{pid}"), pid),
    )
    if len(answered) < 2:
        return {}
    return {pid: answered[(i + 1) % len(answered)] for i, pid in enumerate(answered)}


def probe_items(
    prompts: Sequence[PromptRecord],
    responses: Mapping[str, Sequence[Response]],
    *,
    constitution: Constitution,
    config: JudgeConfig,
    seed: int,
    texts: Stage[ProbeResponse] | None = None,
    not_built: Counter[str] | None = None,
    only: Container[str] | None = None,
) -> Iterator[JudgeItem]:
    """The judge items of the probes, the better answer on a seeded side; each spoiled answer is stored
    in `texts` before its item is yielded (so every stored probe judgment can be read back)."""
    counter = Counter[str]() if not_built is None else not_built
    for prompt, answer, probe in build_probes(
        prompts, responses, config=config.probes, seed=seed, not_built=counter, only=only
    ):
        if texts is not None:
            texts.append([probe])
        good, bad = Candidate(answer.id, answer.text), Candidate(probe.id, probe.text)
        better_first = derive_seed(seed, f"probe-side:{probe.id}") % 2 == 0
        yield JudgeItem(
            prompt_id=prompt.id, conversation=prompt.messages, a=good if better_first else bad,
            b=bad if better_first else good,
            members=draw_principles(constitution, config, seed=seed, key=f"judge:{prompt.id}"),
            kind="probe", probe_kind=probe.probe_kind, known_better="a" if better_first else "b",
        )  # fmt: skip


async def judge_probes(
    backend: Backend,
    prompts: Sequence[PromptRecord],
    responses: Mapping[str, Sequence[Response]],
    *,
    constitution: Constitution,
    config: JudgeConfig,
    seed: int,
    stage: Stage[Judgment],
    texts: Stage[ProbeResponse],
    quiet: bool = False,
    templates: Templates = SHIPPED,
    only: Container[str] | None = None,
) -> StageReport:
    """Build and judge the run's probes (those judged before are skipped: their ids are stored); `only`:
    just these prompts' probes (a worker's share)."""
    items = probe_items(
        prompts, responses, constitution=constitution, config=config, seed=seed, texts=texts, only=only
    )
    return await judge_all(
        backend, items, constitution=constitution, config=config, seed=seed, stage=stage, quiet=quiet,
        description="judge probes", templates=templates,
    )  # fmt: skip


# --- how the judge did -------------------------------------------------------------------------------


def outcome(judgment: Judgment) -> Literal["right", "wrong", "tie", "unparsed"]:
    """A probe judgment's result against its known better answer: two orders that disagree are a tie."""
    if judgment.p_a is None:
        return "unparsed"
    if judgment.consistent is False or side(judgment.p_a) == 0:
        return "tie"
    return "right" if (side(judgment.p_a) > 0) == (judgment.known_better == "a") else "wrong"


def probe_report(judgments: Iterable[Judgment], *, share: float, prompts: int, not_built: Mapping[str, int],
                 kinds: Sequence[str]) -> ProbeReport:  # fmt: skip
    """Accuracy overall and per kind (Wilson intervals; ties count half, unparsed left out), and the same
    among decided probes (two orders agreeing), of the probe judgments, with the probes that could not be
    built by reason."""
    counts: dict[str, Counter[str]] = {kind: Counter() for kind in kinds}
    for judgment in judgments:
        if judgment.kind == "probe" and judgment.known_better is not None:
            counts.setdefault(judgment.probe_kind or "?", Counter())[outcome(judgment)] += 1
    by_kind = {}
    for kind, found in counts.items():
        missing = {r.split(": ", 1)[1]: n for r, n in sorted(not_built.items()) if r.startswith(f"{kind}: ")}
        by_kind[kind] = _tally(found, missing)
    overall = _tally(sum(counts.values(), Counter[str]()), dict(sorted(not_built.items())))
    return ProbeReport(**overall.model_dump(), share=share, prompts=prompts, by_kind=by_kind)


def _tally(found: Counter[str], not_built: dict[str, int]) -> ProbeTally:
    verdicts = found["right"] + found["wrong"] + found["tie"]
    return ProbeTally(
        judged=verdicts + found["unparsed"], right=found["right"], wrong=found["wrong"], ties=found["tie"],
        unparsed=found["unparsed"], accuracy=rate(found["right"] + found["tie"] / 2, verdicts),
        decided=rate(found["right"], found["right"] + found["wrong"]),
        not_built=not_built,
    )  # fmt: skip


def run_probe_report(
    judgments: Iterable[Judgment],
    prompts: Sequence[PromptRecord],
    responses: Mapping[str, Sequence[Response]],
    *,
    config: ProbesConfig,
    seed: int,
) -> ProbeReport | None:
    """The report of a run's stored probe judgments, the unbuildable probes counted again from the
    answers (building is deterministic); None when nothing is probed."""
    if not probes_on(config):
        return None
    not_built: Counter[str] = Counter()
    drawn = sum(probed(config, seed, p.id) for p in prompts)
    for _ in build_probes(prompts, responses, config=config, seed=seed, not_built=not_built):
        pass
    return probe_report(judgments, share=config.share, prompts=drawn, not_built=not_built, kinds=config.kinds)
