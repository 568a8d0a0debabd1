"""Answers of a model folder to a prompt set, and the KL divergence between two policies on them.

Generation uses transformers `generate` (small sets: no server start) or a managed vLLM server
(larger sets). Both sample from `softmax(logits / temperature)` with no top-p or top-k, so
`sequence_kl` can score the samples at the same temperature and get an unbiased estimate of
KL(candidate ‖ base) between the two tempered policies.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from rlaif.evaluate.reports import KLEstimate
from rlaif.records import PromptRecord, derive_seed

__all__ = ["Sample", "generate", "sequence_kl"]


@dataclass(frozen=True)
class Sample:
    """One answer."""

    text: str
    token_ids: tuple[int, ...]
    """The answer's tokens, its closing EOS included when it has one."""
    finished: bool
    """False when the answer was cut off at the token limit."""


def _prompt_text(tokenizer: Any, prompt: PromptRecord) -> str:
    messages = [{"role": m.role, "content": m.content} for m in prompt.messages]
    return str(tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True))


def generate(
    model_path: str | Path,
    prompts: Sequence[PromptRecord],
    *,
    max_tokens: int,
    temperature: float,
    seed: int,
    engine: Literal["transformers", "vllm"] = "transformers",
    logs: Path | None = None,
    batch_size: int = 8,
    quiet: bool = False,
) -> list[Sample]:
    """One sampled answer per prompt from the model folder, in prompt order."""
    if engine == "vllm":
        return _generate_vllm(model_path, prompts, max_tokens=max_tokens, temperature=temperature, seed=seed,
                              logs=logs or Path("."), quiet=quiet)  # fmt: skip
    import torch

    from rlaif.train.common import load_policy

    model, tokenizer = load_policy(model_path)
    model.eval()
    tokenizer.padding_side = "left"
    eos = {tokenizer.eos_token_id, *_eos_ids(model)}
    samples: list[Sample] = []
    for start in range(0, len(prompts), batch_size):
        batch = prompts[start : start + batch_size]
        encoded = tokenizer(
            [_prompt_text(tokenizer, p) for p in batch],
            return_tensors="pt",
            padding=True,
            add_special_tokens=False,
        )
        torch.manual_seed(derive_seed(seed, f"samples:{start}"))
        with torch.no_grad():
            output = model.generate(
                **encoded, do_sample=True, temperature=temperature, top_p=1.0, top_k=0,
                max_new_tokens=max_tokens, pad_token_id=tokenizer.pad_token_id, eos_token_id=sorted(eos),
            )  # fmt: skip
        width = encoded["input_ids"].shape[1]
        for row in output[:, width:].tolist():
            # Cut at the first EOS by position: what follows is padding.
            end = next((i + 1 for i, token in enumerate(row) if token in eos), None)
            ids = row[:end] if end is not None else row
            text = tokenizer.decode(ids, skip_special_tokens=True).strip()
            samples.append(Sample(text=text, token_ids=tuple(ids), finished=end is not None))
    return samples


def _eos_ids(model: Any) -> list[int]:
    value = getattr(model.generation_config, "eos_token_id", None)
    if value is None:
        return []
    return [value] if isinstance(value, int) else list(value)


def _generate_vllm(
    model_path: str | Path,
    prompts: Sequence[PromptRecord],
    *,
    max_tokens: int,
    temperature: float,
    seed: int,
    logs: Path,
    quiet: bool,
) -> list[Sample]:
    from rlaif.backends.bundled import cache_dir
    from rlaif.backends.openai_api import OpenAIBackend
    from rlaif.backends.protocol import ChatRequest, chat_messages, run_batch
    from rlaif.backends.vllm_server import VLLMServer
    from rlaif.progress import stage_progress
    from rlaif.train.common import load_tokenizer

    tokenizer = load_tokenizer(model_path)
    requests = [
        ChatRequest(
            messages=chat_messages("", p.messages),
            max_tokens=max_tokens,
            temperature=temperature,
            top_p=1.0,
            seed=derive_seed(seed, f"samples:{p.id}"),
        )  # fmt: skip
        for p in prompts
    ]
    logs.mkdir(parents=True, exist_ok=True)
    server = VLLMServer(
        model_path, log_path=logs / f"vllm-{Path(model_path).name}.log", cache_dir=cache_dir("vllm")
    )

    async def run() -> list[Any]:
        backend = OpenAIBackend([server.base_url], server.served_name)
        try:
            with stage_progress(f"answers of {Path(model_path).name}", len(requests), quiet=quiet) as advance:
                return await run_batch(backend, requests, advance=advance)
        finally:
            await backend.aclose()

    with server:
        results = asyncio.run(run())
    samples = []
    for result in results:
        text = result.texts[0] if result.texts else ""
        finished = bool(result.finish_reasons) and result.finish_reasons[0] == "stop"
        ids = tokenizer(text, add_special_tokens=False)["input_ids"] + (
            [tokenizer.eos_token_id] if finished else []
        )
        samples.append(Sample(text=text.strip(), token_ids=tuple(ids), finished=finished))
    return samples


def sequence_kl(
    candidate_path: str | Path,
    base_path: str | Path,
    prompts: Sequence[PromptRecord],
    samples: Sequence[Sample],
    *,
    temperature: float = 1.0,
    batch_size: int = 8,
) -> KLEstimate:
    """KL(candidate ‖ base) on the candidate's own samples: per token and per answer.

    Each answer's log-probability under both models (logits divided by `temperature`, as it was
    sampled); the mean difference estimates the KL. `per_token` is the total over all answer tokens
    divided by their number; `per_answer` the mean over answers of each answer's sum.
    """
    import torch

    from rlaif.train.common import load_policy

    candidate, tokenizer = load_policy(candidate_path)
    base, base_tokenizer = load_policy(base_path)
    if base_tokenizer.get_vocab() != tokenizer.get_vocab():
        from rlaif.errors import ConfigError

        raise ConfigError("the KL to the base needs both models to share one tokenizer; these two differ")
    rows = []
    for prompt, sample in zip(prompts, samples, strict=True):
        context = tokenizer(_prompt_text(tokenizer, prompt), add_special_tokens=False)["input_ids"]
        if sample.token_ids:
            rows.append((context, list(sample.token_ids)))
    sums: list[float] = []
    counts: list[int] = []
    for start in range(0, len(rows), batch_size):
        batch = rows[start : start + batch_size]
        width = max(len(c) + len(a) for c, a in batch)
        ids = torch.full((len(batch), width), tokenizer.pad_token_id, dtype=torch.long)
        attention = torch.zeros_like(ids)
        answer = torch.zeros_like(ids, dtype=torch.bool)
        for i, (c, a) in enumerate(batch):
            ids[i, : len(c) + len(a)] = torch.tensor(c + a)
            attention[i, : len(c) + len(a)] = 1
            answer[i, len(c) : len(c) + len(a)] = True  # masks from lengths, never from pad ids
        with torch.no_grad():
            diff = _token_logprobs(candidate, ids, attention, temperature) - _token_logprobs(
                base, ids, attention, temperature
            )
        mask = answer[:, 1:]
        sums.extend((diff * mask).sum(dim=1).tolist())
        counts.extend(mask.sum(dim=1).tolist())
    tokens = sum(counts)
    return KLEstimate(
        per_token=sum(sums) / tokens if tokens else None,
        per_answer=sum(sums) / len(sums) if sums else None,
        answers=len(sums),
        tokens=tokens,
        temperature=temperature,
        estimator="mean of log p_candidate(y) - log p_base(y) over the candidate's samples",
    )


def _token_logprobs(model: Any, ids: Any, attention: Any, temperature: float) -> Any:
    """Log-probability of each next token (positions 1..n), at the sampling temperature."""
    import torch

    logits = model(input_ids=ids, attention_mask=attention).logits[:, :-1].float() / temperature
    return torch.log_softmax(logits, dim=-1).gather(-1, ids[:, 1:].unsqueeze(-1)).squeeze(-1)
