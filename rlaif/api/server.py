"""Where the Python API's requests go: running OpenAI-compatible servers, or a vLLM server it starts.

`Server` is a model config seen from code: `served_backend` and `make_backend` do the work, so a base
URL or a managed model means here what it means in a run config. `Client` is what `Judge` and `Reviser`
share: a server (or any `Backend`), owned or borrowed, and a way to run their async work from plain code.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import tempfile
from collections.abc import AsyncIterator, Coroutine, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Generic, Literal, Self, TypeVar

from pydantic import BaseModel, ValidationError

from rlaif.backends.bundled import cache_dir
from rlaif.backends.openai_api import OpenAIBackend
from rlaif.backends.protocol import Backend
from rlaif.backends.serving import served_backend
from rlaif.config import ModelConfig, ServerConfig
from rlaif.errors import ConfigError, ConstitutionError
from rlaif.inputs.constitution import find_constitution, load_constitution
from rlaif.records import Constitution
from rlaif.yamlfile import describe_error

__all__ = ["Client", "Server", "constitution_of", "section_of"]

T = TypeVar("T")
S = TypeVar("S", bound=BaseModel)
C = TypeVar("C", bound=BaseModel)


class Server:
    """Running OpenAI-compatible servers (vLLM's `vllm serve`, or any other), or, through `managed`, a vLLM
    server started for a model and stopped by `close()` or the end of a `with` block.

    Args:
        base_url: A server root such as `http://127.0.0.1:8000/v1`, or several (load-balanced).
        model: The served model name; None asks the first server.
        api_key: The servers' API key; None reads `OPENAI_API_KEY`, as a run config does.
        unreachable_after: Seconds of failed requests on every server before `ServerUnreachable`.
    """

    def __init__(
        self,
        base_url: str | Sequence[str],
        *,
        model: str | None = None,
        api_key: str | None = None,
        unreachable_after: float = 60.0,
    ):
        urls = [base_url] if isinstance(base_url, str) else list(base_url)
        if not urls:
            raise ConfigError(
                "no base URL given; give one such as http://127.0.0.1:8000/v1, or use managed()"
            )
        fields = {"base_urls": urls, "served_name": model, "unreachable_after": unreachable_after}
        self._open(section_of(ModelConfig, fields, "server"), api_key)

    @classmethod
    def managed(
        cls,
        model: str | Path | None = None,
        *,
        max_model_len: int = 2048,
        startup_timeout: float = 600.0,
        log_dir: str | Path | None = None,
    ) -> Self:
        """Start a vLLM server on loopback for `model` (a model folder or hub id; None: the bundled
        SmolLM2-135M-Instruct) and wait until it answers (~30 s for the bundled model on a CPU).

        Its log goes to `log_dir` (default: a new folder under rlaif's cache, named in `log_path`).
        """
        settings = {"max_model_len": max_model_len, "startup_timeout": startup_timeout}
        fields = {
            "path": None if model is None else str(model),
            "server": section_of(ServerConfig, settings, "server"),
        }
        logs = Path(log_dir) if log_dir is not None else None
        if logs is None:
            cache_dir("logs").mkdir(parents=True, exist_ok=True)
            logs = Path(tempfile.mkdtemp(prefix="server-", dir=cache_dir("logs")))
        made = cls.__new__(cls)
        made._open(section_of(ModelConfig, fields, "server"), None, logs=logs)
        return made

    def _open(self, config: ModelConfig, api_key: str | None, *, logs: Path | None = None) -> None:
        self.config = config
        self.log_path: Path | None = None if logs is None else logs / "vllm-api.log"
        """The managed server's log; None for running servers."""
        self._stack = contextlib.ExitStack()
        # For running servers this starts nothing; for a managed one it returns once the server is up.
        self._args: dict[str, Any] = self._stack.enter_context(
            served_backend(config, logs or Path("."), name="api")
        )
        if api_key is not None:
            self._args["api_key"] = api_key

    @property
    def base_urls(self) -> list[str]:
        """The servers' roots."""
        return list(self._args["base_urls"])

    @property
    def model(self) -> str | None:
        """The served model name (None until asked, when it was not given)."""
        return self._args.get("model")  # type: ignore[no-any-return]

    async def connect(self) -> OpenAIBackend:
        """A client for the servers, made in the running event loop (close it with `aclose`). The first
        server is asked for its models first, so a wrong URL is one clear error at once, not a minute of
        retries."""
        client = OpenAIBackend(**self._args)
        try:
            if client.model:
                await client.served_models()
            else:
                await client.resolve_model()
        except BaseException:
            await client.aclose()
            raise
        return client

    @contextlib.asynccontextmanager
    async def backend(self) -> AsyncIterator[Backend]:
        """`connect`, closed at the end of the block."""
        client = await self.connect()
        try:
            yield client
        finally:
            await client.aclose()

    def close(self) -> None:
        """Stop the managed server (nothing to do for running servers); safe to call twice."""
        self._stack.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Client(Generic[C]):
    """What `Judge` and `Reviser` share: where their requests go, the constitution, their config section
    and seed, and running their async methods from synchronous code."""

    section: ClassVar[type[Any]]
    """The config section the subclass takes (`JudgeConfig`, `ReviseConfig`)."""
    purpose: ClassVar[Literal["judge", "critique"]]
    """What the subclass uses principles for."""

    def __init__(
        self,
        server: str | Sequence[str] | Server | Backend,
        *,
        model: str | None = None,
        api_key: str | None = None,
        constitution: Constitution | str | Path = "harmless",
        config: C | Mapping[str, Any] | None = None,
        seed: int = 0,
    ):
        self._owned = False
        self._runner: asyncio.Runner | None = None
        """The event loop of the synchronous methods (made on first use)."""
        self._kept: OpenAIBackend | None = None
        """The client those methods keep between calls."""
        if isinstance(server, str) or (
            isinstance(server, Sequence) and all(isinstance(u, str) for u in server)
        ):
            server = Server(server, model=model, api_key=api_key)
            self._owned = True
        elif model is not None or api_key is not None:
            raise ConfigError("model= and api_key= go with a base URL; a Server or backend already has them")
        elif not isinstance(server, Server) and not callable(getattr(server, "chat", None)):
            raise ConfigError(
                f"cannot send requests to a {type(server).__name__}; give a base URL such as "
                "http://127.0.0.1:8000/v1, an rlaif.Server, or a Backend"
            )
        self.server = server
        """The `Server` (or `Backend`) requests go to."""
        self.constitution = constitution_of(constitution)
        usable = (
            self.constitution.for_judging() if self.purpose == "judge" else self.constitution.for_critique()
        )
        if not usable:
            needs = (
                "a judge_question" if self.purpose == "judge" else "a critique_request and a revision_request"
            )
            raise ConstitutionError(
                f"constitution {self.constitution.name!r} has no principle with {needs}, so it cannot "
                f"be used to {self.purpose}; add {needs} to a principle"
            )
        self.config: C = section_of(
            self.section, config, f"{self.section.__name__.removesuffix('Config').lower()} config"
        )
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise ConfigError(f"seed={seed!r} is a {type(seed).__name__}; give a whole number")
        self.seed = seed

    @classmethod
    def managed(cls, model: str | Path | None = None, **options: Any) -> Self:
        """One on a vLLM server started for `model` (None: the bundled model), stopped by `close()` or at
        the end of a `with` block; `options` are the constructor's keyword arguments."""
        server = Server.managed(model)
        try:
            made = cls(server, **options)
        except BaseException:
            server.close()
            raise
        made._owned = True
        return made

    @contextlib.asynccontextmanager
    async def _backend(self) -> AsyncIterator[Backend]:
        if not isinstance(self.server, Server):
            yield self.server  # the caller's backend: theirs to close
        elif self._runner is not None and asyncio.get_running_loop() is self._runner.get_loop():
            # The synchronous methods' own loop keeps one client for every call: making one costs ~1 s
            # (each of its connection pools sets up TLS), more than judging a few pairs.
            if self._kept is None:
                self._kept = await self.server.connect()
            yield self._kept
        else:
            async with self.server.backend() as backend:
                yield backend

    def _sync(self, work: Coroutine[Any, Any, T]) -> T:
        """Run `work` to its end from synchronous code, on this object's own event loop. Inside a running
        loop (Jupyter, an async function), which cannot be entered again, it runs in a thread of its own."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            if self._runner is None:
                self._runner = asyncio.Runner()
            return self._runner.run(work)
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            return pool.submit(asyncio.run, work).result()

    def close(self) -> None:
        """Close the client the synchronous methods kept, and stop the server this object started
        (`managed`); a server it was given is left running."""
        if self._runner is not None:
            if self._kept is not None:
                self._runner.run(self._kept.aclose())
                self._kept = None
            self._runner.close()
            self._runner = None
        if self._owned and isinstance(self.server, Server):
            self.server.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def constitution_of(value: Constitution | str | Path) -> Constitution:
    """A constitution object, or the one in a file or a shipped constitution of that name."""
    if isinstance(value, Constitution):
        return value
    if not isinstance(value, str | os.PathLike):
        # A bare TypeError from deep in the path code (issue 31) becomes rlaif's own one line.
        raise ConstitutionError(
            f"constitution={value!r} is a {type(value).__name__}; give a Constitution, a constitution file's "
            "path, or a shipped name such as 'harmless'"
        )
    return load_constitution(find_constitution(value))


def section_of(kind: type[S], value: S | Mapping[str, Any] | None, what: str) -> S:
    """A config section given as the object, a mapping of its fields, or None (the defaults); a bad field
    is one `ConfigError` naming it."""
    if isinstance(value, kind):
        return value
    try:
        return kind.model_validate(dict(value or {}))
    except ValidationError as exc:
        raise ConfigError(describe_error(Path(what), exc, lambda loc: None, model=kind)) from None
    except TypeError:
        raise ConfigError(f"{what}: give a {kind.__name__} or a dict of its fields, not {value!r}") from None
