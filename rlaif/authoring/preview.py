"""What the model sees under one principle: the critique, revision and judge requests, rendered by the
pipeline's own functions (`critique_conversation`, `revision_turns`, `judge_prompt`, `Asker.ask`), so the
preview cannot drift from what runs, with token counts per part and the prefix the cache can serve.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rlaif.authoring.reports import PreviewReport, PreviewRequest, PromptPart, RubricPreview
from rlaif.backends.bundled import BUNDLED_NAME, cache_dir
from rlaif.backends.protocol import Backend
from rlaif.config import JudgeConfig, ReviseConfig
from rlaif.errors import ConfigError
from rlaif.judging.modes import Asker, judge_nonce, judge_prompt, judge_template, solved_examples
from rlaif.judging.rubric import RubricAsker, check_items_template, parse_items
from rlaif.pipeline.revise import critique_conversation, revision_turns
from rlaif.records import Constitution, Message, Principle, PromptRecord
from rlaif.templates import SHIPPED, Templates

__all__ = [
    "SAMPLE_ANSWERS",
    "SAMPLE_CONVERSATION",
    "TokenCounter",
    "load_counter",
    "preview_principle",
    "principle_requests",
    "write_rubric",
]

SAMPLE_CONVERSATION = (Message(role="user", content="How do I get back at my neighbour for his loud music?"),)
SAMPLE_ANSWERS = (
    "Talk to him politely first, or ask your landlord or the local council to help.",
    "Slash his tyres at night so he learns his lesson.",
)
CRITIQUE_PLACEHOLDER = "[the critique the model writes]"
ITEM_PLACEHOLDER = "[one of the items the judge writes]"
CHARS_PER_TOKEN = 4  # the usual rule of thumb for English BPE vocabularies
BLOCK = 16  # vLLM's default KV-cache block: the prefix cache serves whole blocks only


@dataclass
class TokenCounter:
    """Counts tokens with a model's tokenizer and chat template, or estimates them (4 characters a token)."""

    description: str
    """How tokens are counted, as reports state it."""
    tokenizer: Any = None

    @property
    def exact(self) -> bool:
        return self.tokenizer is not None

    def text(self, text: str) -> int:
        if self.tokenizer is None:
            return math.ceil(len(text) / CHARS_PER_TOKEN)
        return len(self.tokenizer.encode(text, add_special_tokens=False))

    def ids(self, messages: Sequence[dict[str, str]]) -> list[int] | str:
        """The request as the server tokenizes it (chat template, generation prompt); the estimate
        works on the joined text instead."""
        if self.tokenizer is None:
            return "".join(f"<{m['role']}>\n{m['content']}\n" for m in messages)
        encoded = self.tokenizer.apply_chat_template(
            list(messages), tokenize=True, add_generation_prompt=True
        )
        return list(encoded["input_ids"] if hasattr(encoded, "keys") else encoded)

    def messages(self, messages: Sequence[dict[str, str]]) -> int:
        ids = self.ids(messages)
        return math.ceil(len(ids) / CHARS_PER_TOKEN) if isinstance(ids, str) else len(ids)

    def common_prefix(self, first: Sequence[dict[str, str]], second: Sequence[dict[str, str]]) -> int:
        """Tokens at the start of `second` that `first` starts with too."""
        a, b = self.ids(first), self.ids(second)
        shared = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
        return shared // CHARS_PER_TOKEN if isinstance(a, str) else shared


def load_counter(tokenizer: str = "bundled") -> TokenCounter:
    """`bundled`: the bundled model's tokenizer when `rlaif model prepare` has made its folder, else the
    estimate (said so); `estimate`: 4 characters a token; anything else: a model folder or hub id."""
    estimate = f"estimated ({CHARS_PER_TOKEN} characters a token, chat-template tokens approximated)"
    if tokenizer == "estimate":
        return TokenCounter(estimate)
    folder: str | Path = tokenizer
    if tokenizer == "bundled":
        folder = cache_dir("models") / BUNDLED_NAME
        if not (folder / "tokenizer_config.json").is_file():
            return TokenCounter(f"{estimate}: the bundled model is not prepared (run `rlaif model prepare`)")
    try:
        from transformers import AutoTokenizer

        loaded = AutoTokenizer.from_pretrained(str(folder))
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"--tokenizer {tokenizer}: cannot load a tokenizer ({' '.join(str(exc).split())[:200]}); give a "
            "model folder, `bundled` or `estimate`"
        ) from None
    name = BUNDLED_NAME if tokenizer == "bundled" else str(folder)
    return TokenCounter(f"{name} tokenizer with its chat template", loaded)


def _prompt(conversation: Sequence[Message]) -> PromptRecord:
    return PromptRecord(id="preview", messages=tuple(conversation))


def principle_requests(
    constitution: Constitution,
    principle: Principle,
    *,
    revise: ReviseConfig,
    judge: JudgeConfig,
    seed: int,
    conversation: Sequence[Message] = SAMPLE_CONVERSATION,
    answers: tuple[str, str] = SAMPLE_ANSWERS,
    critique: str = CRITIQUE_PLACEHOLDER,
    templates: Templates = SHIPPED,
    rubric: bool = False,
) -> list[tuple[str, list[dict[str, str]], list[tuple[str, int]]]]:
    """The messages of each request the principle takes part in, as the pipeline builds them:
    (name, messages, [(part label, number of messages in it)]). The first answer is the one critiqued.
    With `rubric`, the rubric's two requests follow (item writing, and answer A scored on one item)."""
    requests = []
    if principle.critiques:
        messages = critique_conversation(
            _prompt(conversation), answers[0], principle, constitution, revise.few_shot, templates=templates
        )
        system = len(messages) - 6 * min(revise.few_shot, len(constitution.examples)) - len(conversation) - 2
        examples = [
            (f"few-shot example {i + 1}", 6) for i in range(min(revise.few_shot, len(constitution.examples)))
        ]
        parts = [("system prompt", system)] if system else []
        parts += [*examples, ("conversation", len(conversation)), ("answer", 1), ("critique request", 1)]
        requests.append(("critique", messages, parts))
        requests.append(
            (
                "revision",
                messages + revision_turns(critique, principle, templates=templates),
                [*parts, ("critique", 1), ("revision request", 1)],
            )
        )
    if principle.judges:
        if judge.mode == "pointwise":
            raise ConfigError(
                "the preview shows the pairwise judge (mode logprob or cot); judge.mode is pointwise: "
                "preview with --set judge.mode=logprob"
            )
        examples = solved_examples(constitution, judge.few_shot)
        for name, first, second in (("judge (A first)", *answers), ("judge (B first)", *reversed(answers))):
            text = judge_prompt(
                conversation, (principle,), first, second, judge_nonce(seed),
                template=judge_template(judge), examples=examples, templates=templates,
            ).text  # fmt: skip
            requests.append((name, list(Asker.ask(text)), [("judge prompt", 1)]))
    if rubric and principle.judges:
        asker = RubricAsker(_NoBackend(), judge.rubric_items, seed, judge_nonce(seed), templates)
        written = asker.write_request(conversation, principle, "preview")
        requests.append(("rubric items", list(written.messages), [("item-writing prompt", 1)]))
        scored = asker.score_request(conversation, ITEM_PLACEHOLDER, answers[0], "preview")
        requests.append(("rubric score (answer A, one item)", list(scored.messages), [("score prompt", 1)]))
    return requests


class _NoBackend:
    """The preview renders requests and sends none."""

    model = label = "preview"

    async def chat(self, request: Any) -> Any:
        raise AssertionError("the preview sends no request")

    async def aclose(self) -> None:
        pass


async def write_rubric(
    backend: Backend,
    constitution: Constitution,
    principle: Principle,
    *,
    judge: JudgeConfig,
    seed: int,
    conversation: Sequence[Message] = SAMPLE_CONVERSATION,
    templates: Templates = SHIPPED,
) -> RubricPreview:
    """Ask `backend` to write the principle's items for the conversation, as the rubric stage does."""
    check_items_template(templates)
    asker = RubricAsker(backend, judge.rubric_items, seed, judge_nonce(seed), templates)
    result = await asker.write(conversation, principle, f"rubric:preview:{principle.id}")
    if result.error:
        return RubricPreview(status="error", raw=result.error)
    raw = result.texts[0] if result.texts else ""
    parsed = parse_items(raw, judge.rubric_items)
    return RubricPreview(
        status="ok" if parsed else "unparsed", raw=raw, items=list(parsed[0]) if parsed else [],
        duplicates=parsed[1] if parsed else 0, model=backend.label,
    )  # fmt: skip


def preview_principle(
    constitution: Constitution,
    principle_id: str,
    *,
    revise: ReviseConfig,
    judge: JudgeConfig,
    seed: int,
    counter: TokenCounter,
    max_context: int,
    conversation: Sequence[Message] = SAMPLE_CONVERSATION,
    answers: tuple[str, str] = SAMPLE_ANSWERS,
    templates: Templates = SHIPPED,
    rubric: bool = False,
) -> PreviewReport:
    """Render every request of one principle on a sample conversation, with sizes and shared prefixes
    (with `rubric`, the rubric's requests too)."""
    principle = constitution.principle(principle_id)
    report = PreviewReport(
        constitution=f"{constitution.name} v{constitution.version}",
        principle_id=principle.id,
        tokens=counter.description,
        max_context=max_context,
    )
    previous: list[dict[str, str]] | None = None
    for name, messages, parts in principle_requests(
        constitution, principle, revise=revise, judge=judge, seed=seed, conversation=conversation,
        answers=answers, templates=templates, rubric=rubric,
    ):  # fmt: skip
        shown, start = [], 0
        for label, count in parts:
            group = messages[start : start + count]
            start += count
            text = "\n\n".join(m["content"] for m in group)
            role = "+".join(dict.fromkeys(m["role"] for m in group))
            shown.append(PromptPart(label=label, role=role, text=text, tokens=counter.text(text)))
        total = counter.messages(messages)
        request = PreviewRequest(name=name, messages=messages, parts=shown, tokens=total)
        if name in ("judge (A first)", "rubric items"):
            previous = None  # the judge's first order shares only the chat template with the revision
        if previous is not None:
            cached = counter.common_prefix(previous, messages)
            request.cached_prefix_tokens, request.cached_share = cached, cached / total if total else None
        report.requests.append(request)
        previous = messages
    if principle.critiques:
        report.notes.append(
            f"the revision request follows a placeholder critique {CRITIQUE_PLACEHOLDER!r}; in a run it is "
            "the model's own critique"
        )
    report.notes.append(
        f"cached prefix: tokens a request shares with the one before it; vLLM caches whole blocks of "
        f"{BLOCK} tokens, so it serves up to {BLOCK - 1} fewer"
    )
    if not counter.exact:
        report.notes.append(f"token counts are {counter.description}")
    return report
