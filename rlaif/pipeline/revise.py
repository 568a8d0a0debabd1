"""Critique and revise: N rounds of (sample a principle → critique → revision) for every prompt.

Every prompt runs as its own chain and a window of chains runs at once, so the server's batch stays
full without waiting at round boundaries for the slowest prompt. Each finished round is stored at once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from rlaif._version import __version__
from rlaif.backends.protocol import Backend, ChatRequest, chat_messages
from rlaif.backends.window import window_for, windowed
from rlaif.config import ReviseConfig
from rlaif.inputs.constitution import sample_principle
from rlaif.inputs.trajectory import flat_turns
from rlaif.pipeline.reports import StageReport
from rlaif.progress import stage_progress
from rlaif.records import (
    Constitution,
    CritiqueRound,
    Message,
    Principle,
    PromptRecord,
    Provenance,
    Response,
    Revision,
    RevisionStep,
    SamplingParams,
    derive_seed,
    stable_id,
)
from rlaif.store import Stage
from rlaif.templates import SHIPPED, Templates

__all__ = ["critique_conversation", "revise", "revision_turns"]


def _few_shot(
    constitution: Constitution, principle: Principle, count: int, templates: Templates
) -> list[dict[str, str]]:
    turns: list[dict[str, str]] = []
    critique_request = templates.render("critique", principle=principle).text
    revision_request = templates.render("revise", principle=principle).text
    for example in constitution.examples[:count]:
        turns += [
            {"role": "user", "content": example.prompt},
            {"role": "assistant", "content": example.response},
            {"role": "user", "content": critique_request},
            {"role": "assistant", "content": example.critique},
            {"role": "user", "content": revision_request},
            {"role": "assistant", "content": example.revision},
        ]
    return turns


def critique_conversation(
    prompt: PromptRecord,
    answer: str,
    principle: Principle,
    constitution: Constitution,
    few_shot: int,
    *,
    templates: Templates = SHIPPED,
    trace: Sequence[Message] = (),
) -> list[dict[str, str]]:
    """Messages that ask for a critique of `answer` under `principle` (few-shot turns first); a
    tool-using answer's `trace` comes before it as plain turns, so the final answer is critiqued (and
    then revised) given the calls and results that led to it."""
    system = templates.render("respond", system_prompt=constitution.system_prompt).text
    messages = list(chat_messages(system, []))
    messages += _few_shot(constitution, principle, few_shot, templates)
    messages += [{"role": m.role, "content": m.content} for m in flat_turns((*prompt.messages, *trace))]
    messages += [
        {"role": "assistant", "content": answer},
        {"role": "user", "content": templates.render("critique", principle=principle).text},
    ]
    return messages


def revision_turns(
    critique: str, principle: Principle, *, templates: Templates = SHIPPED
) -> list[dict[str, str]]:
    """The turns that follow a critique conversation to ask for the revision: the critique as the
    assistant's answer, then the principle's revision request."""
    return [
        {"role": "assistant", "content": critique},
        {"role": "user", "content": templates.render("revise", principle=principle).text},
    ]


async def revise(
    backend: Backend,
    prompts: Sequence[PromptRecord],
    originals: Mapping[str, Response],
    *,
    constitution: Constitution,
    config: ReviseConfig,
    seed: int,
    steps: Stage[RevisionStep],
    revisions: Stage[Revision],
    quiet: bool = False,
    templates: Templates = SHIPPED,
) -> StageReport:
    """Take each prompt's original answer (`originals[prompt.id]`) through `config.rounds` rounds."""
    sampling = SamplingParams(
        max_tokens=config.max_tokens, temperature=config.temperature, top_p=config.top_p
    )
    hashes = {"critique": templates.hash("critique"), "revise": templates.hash("revise")}
    provenance = Provenance(
        model=backend.label,
        template="critique+revise",
        template_hash=f"{hashes['critique']}+{hashes['revise']}",
        constitution_hash=constitution.hash,
        sampling=sampling,
        rlaif_version=__version__,
    )
    report = StageReport()
    chains = [p for p in prompts if p.id in originals]

    async def request(messages: list[dict[str, str]], request_seed: int) -> str | None:
        result = await backend.chat(
            ChatRequest(
                messages=tuple(messages),
                max_tokens=sampling.max_tokens,
                temperature=sampling.temperature,
                top_p=sampling.top_p,
                seed=request_seed,
            )
        )
        if result.error:
            report.fail(result.error)
            return None
        return result.texts[0].strip()

    async def chain(prompt: PromptRecord, advance: Callable[[], None]) -> None:
        original = originals[prompt.id]
        answer = original.text
        done: list[RevisionStep] = []
        for round_index in range(config.rounds):
            principle = sample_principle(
                constitution, seed=seed, key=f"revise:{prompt.id}:{round_index}", purpose="critique"
            )
            critique_seed = derive_seed(seed, f"critique:{prompt.id}:{round_index}")
            step_id = stable_id(
                "revstep",
                prompt_id=prompt.id,
                response_id=original.id,
                round=round_index,
                answer=answer,
                principle_id=principle.id,
                model=backend.label,
                templates=hashes,
                constitution_hash=constitution.hash,
                sampling=sampling,
                seed=critique_seed,
                few_shot=config.few_shot,
            )
            step = steps.get(step_id)
            if step is None:
                messages = critique_conversation(
                    prompt, answer, principle, constitution, config.few_shot, templates=templates,
                    trace=original.trace,
                )  # fmt: skip
                critique = await request(messages, critique_seed)
                if critique is None:
                    return  # recorded in the report; a rerun retries this chain from here
                messages += revision_turns(critique, principle, templates=templates)
                revision = await request(messages, derive_seed(seed, f"revision:{prompt.id}:{round_index}"))
                if revision is None:
                    return
                step = RevisionStep(
                    id=step_id,
                    prompt_id=prompt.id,
                    response_id=original.id,
                    round=round_index,
                    answer=answer,
                    principle_id=principle.id,
                    critique=critique,
                    revision=revision,
                    provenance=provenance.model_copy(update={"seed": critique_seed}),
                )
                steps.append([step])
            done.append(step)
            # An empty rewrite is kept on the record as the model gave it; the chain goes on from
            # the last non-empty answer.
            answer = step.revision or answer
            advance()
        rounds = tuple(
            CritiqueRound(principle_id=s.principle_id, critique=s.critique, revision=s.revision) for s in done
        )
        revision_id = stable_id("revision", steps=[s.id for s in done])
        if revision_id in revisions:
            report.reused += 1
        else:
            report.made += revisions.append(
                [
                    Revision(
                        id=revision_id,
                        prompt_id=prompt.id,
                        response_id=original.id,
                        original=original.text,
                        rounds=rounds,
                        provenance=provenance,
                    )
                ]
            )

    with stage_progress("critique+revise rounds", len(chains) * config.rounds, quiet=quiet) as advance:
        await windowed((chain(p, advance) for p in chains), window=window_for(backend))
    return report
