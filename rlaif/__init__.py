"""rlaif: RLAIF and Constitutional AI from a constitution file, on vLLM and TRL.

This module only re-exports the public API (`__all__`); everything is defined in the subpackages.
"""

from rlaif._version import __version__
from rlaif.api.judge import Judge
from rlaif.api.revise import Reviser
from rlaif.api.run import run
from rlaif.api.server import Server
from rlaif.backends.bundled import ensure_model
from rlaif.backends.fake import FakeBackend
from rlaif.backends.openai_api import OpenAIBackend
from rlaif.backends.protocol import Backend, ChatRequest, ChatResult, run_batch
from rlaif.backends.vllm_server import VLLMServer
from rlaif.config import JudgeConfig, ModelConfig, ReviseConfig, RunConfig, config_from_dict, load_config
from rlaif.errors import (
    BackendError,
    ConfigError,
    ConstitutionError,
    GateError,
    HubError,
    PromptSetError,
    QualityGateError,
    ReviewError,
    RlaifError,
    RunDirError,
    ServerRefused,
    ServerUnreachable,
    TemplateError,
)
from rlaif.evaluate.compliance import evaluate_compliance
from rlaif.evaluate.reports import ComplianceReport
from rlaif.evaluate.winrate import evaluate_winrate
from rlaif.inputs.constitution import find_constitution, load_constitution, sample_principle
from rlaif.inputs.prompts import load_prompts
from rlaif.judging.checks import checkable, run_check
from rlaif.pipeline.judge import judge
from rlaif.pipeline.reports import QualityReport, RunSummary
from rlaif.pipeline.respond import respond
from rlaif.pipeline.revise import revise
from rlaif.pipeline.run import run_pipeline
from rlaif.records import (
    Check,
    CheckOutcome,
    Constitution,
    CritiqueRound,
    Judgment,
    Message,
    OrderVerdict,
    Pair,
    PairJudgment,
    PreferencePair,
    Principle,
    PromptRecord,
    Provenance,
    Response,
    ReviewAnswer,
    ReviewDecision,
    ReviewItem,
    Revision,
)
from rlaif.review.agreement import agreement_report
from rlaif.review.gate import check_gate
from rlaif.review.hook import run_hook
from rlaif.review.sample import sample_pairs
from rlaif.review.session import ReviewSession
from rlaif.store import RunDir
from rlaif.train.reports import TrainResult

__all__ = [
    "Backend",
    "BackendError",
    "ChatRequest",
    "ChatResult",
    "Check",
    "CheckOutcome",
    "ComplianceReport",
    "ConfigError",
    "Constitution",
    "ConstitutionError",
    "CritiqueRound",
    "FakeBackend",
    "GateError",
    "HubError",
    "Judge",
    "JudgeConfig",
    "Judgment",
    "Message",
    "ModelConfig",
    "OpenAIBackend",
    "OrderVerdict",
    "Pair",
    "PairJudgment",
    "PreferencePair",
    "Principle",
    "PromptRecord",
    "PromptSetError",
    "Provenance",
    "QualityGateError",
    "QualityReport",
    "Response",
    "ReviewAnswer",
    "ReviewDecision",
    "ReviewError",
    "ReviewItem",
    "ReviewSession",
    "ReviseConfig",
    "Reviser",
    "Revision",
    "RlaifError",
    "RunConfig",
    "RunDir",
    "RunDirError",
    "RunSummary",
    "Server",
    "ServerRefused",
    "ServerUnreachable",
    "TemplateError",
    "TrainResult",
    "VLLMServer",
    "__version__",
    "agreement_report",
    "check_gate",
    "checkable",
    "config_from_dict",
    "ensure_model",
    "evaluate_compliance",
    "evaluate_winrate",
    "find_constitution",
    "judge",
    "load_config",
    "load_constitution",
    "load_prompts",
    "respond",
    "revise",
    "run",
    "run_batch",
    "run_check",
    "run_hook",
    "run_pipeline",
    "sample_pairs",
    "sample_principle",
]
