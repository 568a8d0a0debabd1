"""User-facing errors. Each says where the problem is and what to do about it.

Model misbehaviour (a judge answer that does not parse, say) is never an error: it is recorded
on the record with a status. These exceptions are for the user's files, options and servers.
"""

from __future__ import annotations

__all__ = [
    "BackendError",
    "ConfigError",
    "ConstitutionError",
    "GateError",
    "HubError",
    "IncompleteRun",
    "PackageError",
    "PromptSetError",
    "QualityGateError",
    "ReviewError",
    "RlaifError",
    "RunDirError",
    "ServerRefused",
    "ServerUnreachable",
    "TemplateError",
]


class RlaifError(Exception):
    """Base class: a problem the user can fix. The CLI prints it as one line, no traceback.

    `exit_code` is the CLI's exit status: 2 for a mistake in a file, config or option; 3 for a server
    or environment failure; 1 when the data (quality gates) or people (review gate) refuse training.
    """

    exit_code = 2


class ConstitutionError(RlaifError):
    """A constitution file is missing, malformed or refers to something that does not exist."""


class ConfigError(RlaifError):
    """A run configuration or CLI option is invalid."""


class PromptSetError(RlaifError):
    """A prompt set is missing, empty or has an unreadable row; or a prompt, answer or pair given to the
    Python API is malformed."""


class TemplateError(RlaifError):
    """A prompt template is missing or fails to render."""


class BackendError(RlaifError):
    """The generation backend failed in a way retries did not fix."""

    exit_code = 3


class ServerRefused(BackendError):
    """A server answered but refused the requests (wrong API key, model name or URL): a setting to fix."""

    exit_code = 2


class ServerUnreachable(BackendError):
    """No configured server answered within the allowed time."""


class HubError(RlaifError):
    """The Hugging Face Hub refused or could not be reached (not logged in, no access, offline)."""

    exit_code = 3


class RunDirError(RlaifError):
    """The run directory is locked, from another format version, or inconsistent."""


class GateError(RlaifError):
    """A gate (human-review agreement, or the data's quality) refused to let training start."""

    exit_code = 1


class IncompleteRun(RlaifError):
    """Some requests failed after their retries (nothing of theirs was stored; a rerun retries them)."""

    exit_code = 1


class QualityGateError(GateError):
    """The exported data failed a quality gate, or is empty; `summary` is the run's summary so far."""

    def __init__(self, message: str, summary: object = None):
        super().__init__(message)
        self.summary = summary


class ReviewError(RlaifError):
    """A review file, reviewer answer or review hook is invalid."""


class PackageError(RlaifError):
    """A package rlaif needs for this command is missing, or installed at a version rlaif does not support."""

    exit_code = 3
