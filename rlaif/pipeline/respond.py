"""First answers: `samples_per_prompt` sampled responses for every prompt, a window of requests at a time."""

from __future__ import annotations

from array import array
from collections.abc import Sequence

from rlaif._version import __version__
from rlaif.backends.protocol import Backend, ChatRequest, chat_messages
from rlaif.backends.window import window_for, windowed
from rlaif.config import GenerationConfig
from rlaif.pipeline.reports import StageReport
from rlaif.pipeline.trajectory import ToolUse, run_trajectory
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
from rlaif.store import Stage
from rlaif.templates import SHIPPED, Templates

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
    templates: Templates = SHIPPED,
    tools: ToolUse | None = None,
) -> StageReport:
    """Sample first answers for every prompt that has none yet; store them in `stage`.

    With `tools`, a prompt that offers tools is answered as a trajectory (`run_trajectory`): the model
    may call them over several steps, and the response keeps the calls and results as its `trace`."""
    system = templates.render("respond", system_prompt=constitution.system_prompt)
    sampling = SamplingParams(
        max_tokens=config.max_tokens, temperature=config.temperature, top_p=config.top_p
    )
    report = StageReport()

    def response_id(prompt: PromptRecord, index: int) -> tuple[str, int]:
        request_seed = derive_seed(seed, f"respond:{prompt.id}:{index}")
        made = stable_id(
            "response",
            prompt_id=prompt.id,
            sample_index=index,
            model=backend.label,
            system=system.text,
            template_hash=system.template_hash,
            sampling=sampling,
            seed=request_seed,
            # Only a tool-using answer hashes the tools, so every other id stays what it was.
            **({"tools": [t.model_dump() for t in prompt.tools], "runtime": tools.fingerprint(prompt)}
               if tools is not None and prompt.tools else {}),
        )  # fmt: skip
        return made, request_seed

    # What is missing, as (prompt position, sample index): a few bytes each, not a request each.
    samples = config.samples_per_prompt
    todo = array("q")
    for position, prompt in enumerate(prompts):
        for index in range(samples):
            if response_id(prompt, index)[0] in stage:
                report.reused += 1
            else:
                todo.append(position * samples + index)
    provenance = Provenance(
        model=backend.label,
        template=system.template,
        template_hash=system.template_hash,
        constitution_hash=constitution.hash,
        sampling=sampling,
        rlaif_version=__version__,
    )

    async def one(slot: int) -> None:
        prompt, sample_index = prompts[slot // samples], slot % samples
        record_id, request_seed = response_id(prompt, sample_index)
        if tools is not None and prompt.tools:
            made = await run_trajectory(
                backend, chat_messages(system.text, prompt.messages), prompt, response_id=record_id,
                tools=tools, sampling=sampling, seed=request_seed,
            )  # fmt: skip
            if made.error:
                report.fail(f"prompt {prompt.source}: {made.error}")
                return
            report.made += stage.append([
                Response(
                    id=record_id, prompt_id=prompt.id, sample_index=sample_index, text=made.text.strip(),
                    finish_reason=made.finish_reason, trace=made.trace, trajectory=made.status,
                    provenance=provenance.model_copy(update={"seed": request_seed}),
                )
            ])  # fmt: skip
            return
        result = await backend.chat(
            ChatRequest(
                messages=chat_messages(system.text, prompt.messages),
                max_tokens=sampling.max_tokens,
                temperature=sampling.temperature,
                top_p=sampling.top_p,
                seed=request_seed,
            )
        )
        if result.error:
            report.fail(f"prompt {prompt.source}: {result.error}")
            return
        record = Response(
            id=record_id,
            prompt_id=prompt.id,
            sample_index=sample_index,
            text=result.texts[0].strip(),
            finish_reason=result.finish_reasons[0],
            provenance=provenance.model_copy(update={"seed": request_seed}),
        )
        report.made += stage.append([record])

    with stage_progress("respond", len(todo), quiet=quiet) as advance:
        await windowed((one(slot) for slot in todo), window=window_for(backend), on_done=lambda _: advance())
    return report
