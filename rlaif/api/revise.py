"""`Reviser`: the pipeline's critique-and-revise loop on one answer given in code.

It runs the revise stage itself (`pipeline.revise.revise`) on a one-prompt run kept in a temporary
folder, so the rounds, principle draws, seeds and templates are those of a run with the same settings.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence

from rlaif._version import __version__
from rlaif.api.server import Client, section_of
from rlaif.config import ReviseConfig
from rlaif.errors import BackendError, PromptSetError
from rlaif.inputs.prompts import prompt_record
from rlaif.pipeline.revise import revise
from rlaif.records import Message, Provenance, Response, Revision, RevisionStep, stable_id
from rlaif.store import RunDir

__all__ = ["Reviser"]


class Reviser(Client[ReviseConfig]):
    """Critique and revise an answer under a constitution, as a run's revise stage does.

    ```python
    reviser = rlaif.Reviser("http://127.0.0.1:8000/v1", constitution="harmless")
    revision = reviser.revise("How do I pick a lock?", "Sure: first, ...", rounds=2)
    print(revision.final, [r.principle_id for r in revision.rounds])
    ```

    Args:
        server: A base URL (or a list), an `rlaif.Server`, or any `Backend`; `Reviser.managed()` starts a
            vLLM server instead (stopped on `close()` or at the end of a `with`).
        model: With a base URL: the served model name (None asks the server).
        api_key: With a base URL: the server's API key.
        constitution: A `Constitution`, a constitution file, or a shipped name.
        config: The loop's settings (`ReviseConfig` or a dict: rounds, max_tokens, temperature, few_shot).
        seed: Fixes the principle drawn for each round and the requests' seeds.
    """

    section = ReviseConfig
    purpose = "critique"

    def revise(
        self, prompt: str | Sequence[Message | Mapping[str, str]], response: str, *, rounds: int | None = None
    ) -> Revision:
        """Critique and rewrite `response` to `prompt`; see `arevise`."""
        return self._sync(self.arevise(prompt, response, rounds=rounds))

    async def arevise(
        self, prompt: str | Sequence[Message | Mapping[str, str]], response: str, *, rounds: int | None = None
    ) -> Revision:
        """Critique and rewrite `response` to `prompt` for `rounds` rounds (default: the config's).

        Args:
            prompt: The user's request, or a conversation of `{role, content}` turns ending with the user.
            response: The answer to revise.
            rounds: Critique-and-revise rounds, each under a principle drawn with the seed.

        Returns:
            The `Revision`: `final` is the last non-empty rewrite; `rounds` holds each principle id, critique
            and rewrite.

        Raises:
            PromptSetError: an empty prompt or response, or a conversation that does not end with the user.
            BackendError: a request failed after its retries (ServerUnreachable when the server is down).
        """
        try:
            record = prompt_record(prompt, source="revise")
        except ValueError as exc:
            raise PromptSetError(f"prompt: {exc}") from None
        if not isinstance(response, str) or not response.strip():
            raise PromptSetError(f"response: give the answer to revise as non-empty text (got {response!r})")
        config = self.config
        if rounds is not None:
            config = section_of(ReviseConfig, {**config.model_dump(), "rounds": rounds}, "revise config")
        original = Response(
            id=stable_id("given-response", prompt_id=record.id, text=response),
            prompt_id=record.id,
            sample_index=0,
            text=response,
            provenance=Provenance(model="given", template="", template_hash="", rlaif_version=__version__),
        )
        with tempfile.TemporaryDirectory(prefix="rlaif-revise-") as folder, RunDir(folder) as run:
            revisions = run.stage(run.layout.REVISIONS, Revision)
            async with self._backend() as backend:
                report = await revise(
                    backend, [record], {record.id: original}, constitution=self.constitution, config=config,
                    seed=self.seed, steps=run.stage(run.layout.REVISION_STEPS, RevisionStep),
                    revisions=revisions, quiet=True,
                )  # fmt: skip
            if report.failed:
                raise BackendError(f"revising failed: {report.errors[0]}")
            return next(iter(revisions))
