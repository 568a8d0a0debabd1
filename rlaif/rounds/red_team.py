"""`iterate.red_team`: new training prompts between rounds, asked of the policy itself.

The template (`prompts/red_team.jinja`) names the checked principles the last round's policy passed
least often on the held-out prompts and shows some of that round's training prompts whose answers
failed them. Each answer is one candidate prompt: cleaned to its first line, length-checked, and
deduplicated against every prompt known (training, held-out, earlier red-team ones). The kept ones are
recorded with their provenance in `rounds/R/red_team.jsonl` and join round R.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from rlaif.config import RedTeamConfig, RunConfig
from rlaif.evaluate.compliance import pass_rate
from rlaif.evaluate.reports import PassRate
from rlaif.judging.checks import checkable, describe_check, run_check
from rlaif.records import CheckOutcome, Constitution, Message, PromptRecord, Response, derive_seed
from rlaif.rounds.reports import RedTeamReport, RoundReport

__all__ = ["ask_red_team", "normalized", "red_team_rates", "stored_responses", "write_rows"]

_LEAD = re.compile(r"^\s*(?:[-*•]|\d+[.)]|q(?:uestion)?\s*\d*\s*[:.)-]|prompt\s*:)\s*", re.IGNORECASE)


def normalized(text: str) -> str:
    """What two prompts share when they are the same prompt: lower case, single spaces."""
    return " ".join(text.lower().split())


def _cleaned(answer: str) -> str:
    """The first non-empty line, without a list marker, a "Question:" label or quotes."""
    line = next((x for x in answer.splitlines() if x.strip()), "")
    line = _LEAD.sub("", line).strip()
    return line.strip("\"'“”` ").strip()


def stored_responses(folder: Path) -> list[Response]:
    """The round's responses (`responses.jsonl`); a torn last line is skipped."""
    path = folder / "responses.jsonl"
    found: list[Response] = []
    if not path.exists():
        return found
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            found.append(Response.model_validate_json(line))
        except ValueError:
            continue
    return found


def _failing(
    constitution: Constitution, prompts: Sequence[PromptRecord], responses: Iterable[Response], ids: set[str]
) -> list[PromptRecord]:
    """Training prompts whose answers failed a check of `ids`, most failures first."""
    by_id = {p.id: p for p in prompts}
    principles = [p for p in checkable(constitution) if p.id in ids]
    fails: dict[str, int] = {}
    for response in responses:
        prompt = by_id.get(response.prompt_id)
        if prompt is None:
            continue
        for principle in principles:
            if run_check(principle, prompt.messages, response.text).passed is False:
                fails[prompt.id] = fails.get(prompt.id, 0) + 1
    ranked = sorted(fails, key=lambda pid: (-fails[pid], pid))
    return [by_id[pid] for pid in ranked]


def ask_red_team(
    config: RunConfig,
    section: RedTeamConfig,
    *,
    round_number: int,
    policy: str | Path,
    constitution: Constitution,
    previous: RoundReport,
    previous_prompts: Sequence[PromptRecord],
    previous_folder: Path,
    known: Iterable[str],
    quiet: bool = True,
) -> tuple[list[dict[str, object]], RedTeamReport]:
    """Ask `policy` for `section.prompts` new prompts; the rows kept (JSONL prompt rows with provenance)
    and the counts."""
    from rlaif.evaluate.samples import generate

    checked = {p.id: p for p in checkable(constitution)}
    rated = [
        (rate.value, pid)
        for pid, rate in previous.pass_rates.items()
        if pid in checked and rate.value is not None
    ]
    targets = [pid for _, pid in sorted(rated)[: section.principles]] or list(checked)[: section.principles]
    seeds = _failing(constitution, previous_prompts, stored_responses(previous_folder), set(targets))
    seeds = seeds[: section.seeds]
    rendered = config.template_set().render(
        "red_team",
        principles=[{"id": pid, "rule": describe_check(checked[pid].check)} for pid in targets],  # type: ignore[arg-type]
        examples=[p.messages[-1].content for p in seeds],
    )
    request = PromptRecord(
        id=f"red-team-{round_number}", messages=(Message(role="user", content=rendered.text),)
    )
    answers = generate(
        policy, [request] * section.prompts, max_tokens=section.max_tokens, temperature=section.temperature,
        seed=derive_seed(config.seed, f"red_team:{round_number}"), engine="transformers", quiet=quiet,
    )  # fmt: skip
    seen = {normalized(text) for text in known}
    rows: list[dict[str, object]] = []
    dropped: dict[str, int] = {}
    for answer in answers:
        text = _cleaned(answer.text)
        why = None
        if len(text) < section.min_chars:
            why = "too_short"
        elif len(text) > section.max_chars:
            why = "too_long"
        elif normalized(text) in seen:
            why = "duplicate"
        if why is not None:
            dropped[why] = dropped.get(why, 0) + 1
            continue
        seen.add(normalized(text))
        rows.append({
            "prompt": text, "round": round_number, "source_prompt_ids": [p.id for p in seeds],
            "principles": targets, "template": rendered.template, "template_hash": rendered.template_hash,
        })  # fmt: skip
    report = RedTeamReport(
        asked=section.prompts,
        kept=len(rows),
        dropped=dropped,
        principles=targets,
        seeds=[p.id for p in seeds],
    )
    return rows, report


def write_rows(path: Path, rows: Sequence[dict[str, object]]) -> None:
    from rlaif.store import write_atomic

    write_atomic(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def red_team_rates(
    constitution: Constitution, prompts: Sequence[PromptRecord], folder: Path, red: set[str]
) -> tuple[PassRate, PassRate]:
    """Every check passed on the round's training answers: to the red-team prompts, and to the others."""
    principles = checkable(constitution)
    by_id = {p.id: p for p in prompts}
    outcomes: dict[bool, list[CheckOutcome | None]] = {True: [], False: []}
    for response in stored_responses(folder):
        prompt = by_id.get(response.prompt_id)
        if prompt is None:
            continue
        each = [run_check(p, prompt.messages, response.text) for p in principles]
        if any(o.error is not None for o in each):
            outcomes[prompt.id in red].append(None)
            continue
        passed = all(bool(o.passed) for o in each)
        outcomes[prompt.id in red].append(
            CheckOutcome(principle_id=None, score=1.0 if passed else 0.0, passed=passed)
        )
    return pass_rate(outcomes[True]), pass_rate(outcomes[False])
