"""First answers: `samples_per_prompt` sampled responses for every prompt, all sent at once."""

from __future__ import annotations

from collections.abc import Sequence

from rlaif._version import __version__
from rlaif.backends.protocol import Backend, ChatRequest, ChatResult, chat_messages, run_batch
from rlaif.config import GenerationConfig
from rlaif.progress import stage_progress
from rlaif.records import (
    Constitution,
    PromptRecord,
    Provenance,
    Response,
    SamplingParams,
    derive_seed,
    stable_id,
)
from rlaif.reports import StageReport
from rlaif.store import Stage
from rlaif.templates import render

__all__ = ["respond"]


async def respond(
    backend: Backend,
    prompts: Sequence[PromptRecord],
    *,
    constitution: Constitution,
    config: GenerationConfig,
    seed: int,
    stage: Stage[Response],
    quiet: bool = False,
) -> StageReport:
    """Sample first answers for every prompt that has none yet; store them in `stage`."""
    system = render("respond", system_prompt=constitution.system_prompt)
    sampling = SamplingParams(
        max_tokens=config.max_tokens, temperature=config.temperature, top_p=config.top_p
    )
    report = StageReport()
    todo: list[tuple[str, PromptRecord, int, int]] = []
    for prompt in prompts:
        for index in range(config.samples_per_prompt):
            request_seed = derive_seed(seed, f"respond:{prompt.id}:{index}")
            response_id = stable_id(
                "response",
                prompt_id=prompt.id,
                sample_index=index,
                model=backend.label,
                system=system.text,
                template_hash=system.template_hash,
                sampling=sampling,
                seed=request_seed,
            )
            if response_id in stage:
                report.reused += 1
            else:
                todo.append((response_id, prompt, index, request_seed))
    requests = [
        ChatRequest(
            messages=chat_messages(system.text, prompt.messages),
            max_tokens=sampling.max_tokens,
            temperature=sampling.temperature,
            top_p=sampling.top_p,
            seed=request_seed,
        )
        for _, prompt, _, request_seed in todo
    ]
    provenance = Provenance(
        model=backend.label,
        template=system.template,
        template_hash=system.template_hash,
        constitution_hash=constitution.hash,
        sampling=sampling,
        rlaif_version=__version__,
    )

    def store(index: int, result: ChatResult) -> None:
        response_id, prompt, sample_index, request_seed = todo[index]
        if result.error:
            report.fail(f"prompt {prompt.source}: {result.error}")
            return
        record = Response(
            id=response_id,
            prompt_id=prompt.id,
            sample_index=sample_index,
            text=result.texts[0].strip(),
            finish_reason=result.finish_reasons[0],
            provenance=provenance.model_copy(update={"seed": request_seed}),
        )
        report.made += stage.append([record])

    with stage_progress("respond", len(requests), quiet=quiet) as advance:
        await run_batch(backend, requests, on_result=store, advance=advance)
    return report
