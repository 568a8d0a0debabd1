"""rlaif: RLAIF and Constitutional AI from a constitution file, on vLLM and TRL."""

__version__ = "0.1.0"

from rlaif.agreement import agreement_report  # noqa: E402
from rlaif.backends.fake import FakeBackend  # noqa: E402
from rlaif.backends.openai_api import OpenAIBackend  # noqa: E402
from rlaif.backends.protocol import Backend, ChatRequest, ChatResult, run_batch  # noqa: E402
from rlaif.backends.vllm_server import VLLMServer  # noqa: E402
from rlaif.bundled import ensure_model  # noqa: E402
from rlaif.config import RunConfig, load_config  # noqa: E402
from rlaif.constitution import find_constitution, load_constitution, sample_principle  # noqa: E402
from rlaif.errors import (  # noqa: E402
    BackendError,
    ConfigError,
    ConstitutionError,
    GateError,
    PromptSetError,
    ReviewError,
    RlaifError,
    RunDirError,
    ServerUnreachable,
    TemplateError,
)
from rlaif.gate import check_gate  # noqa: E402
from rlaif.judge import judge  # noqa: E402
from rlaif.promptset import load_prompts  # noqa: E402
from rlaif.records import (  # noqa: E402
    Constitution,
    Judgment,
    Message,
    PreferencePair,
    Principle,
    PromptRecord,
    Response,
    ReviewAnswer,
    ReviewDecision,
    ReviewItem,
    Revision,
)
from rlaif.respond import respond  # noqa: E402
from rlaif.review import ReviewSession  # noqa: E402
from rlaif.review_hook import run_hook  # noqa: E402
from rlaif.review_sample import sample_pairs  # noqa: E402
from rlaif.revise import revise  # noqa: E402
from rlaif.run import run_pipeline  # noqa: E402
from rlaif.store import RunDir  # noqa: E402
from rlaif.winrate import evaluate_winrate  # noqa: E402

__all__ = [
    "Backend",
    "BackendError",
    "ChatRequest",
    "ChatResult",
    "ConfigError",
    "Constitution",
    "ConstitutionError",
    "FakeBackend",
    "GateError",
    "Judgment",
    "Message",
    "OpenAIBackend",
    "PreferencePair",
    "Principle",
    "PromptRecord",
    "PromptSetError",
    "Response",
    "ReviewAnswer",
    "ReviewDecision",
    "ReviewError",
    "ReviewItem",
    "ReviewSession",
    "Revision",
    "RlaifError",
    "RunConfig",
    "RunDir",
    "RunDirError",
    "ServerUnreachable",
    "TemplateError",
    "VLLMServer",
    "__version__",
    "agreement_report",
    "check_gate",
    "ensure_model",
    "evaluate_winrate",
    "find_constitution",
    "judge",
    "load_config",
    "load_constitution",
    "load_prompts",
    "respond",
    "revise",
    "run_batch",
    "run_hook",
    "run_pipeline",
    "sample_pairs",
    "sample_principle",
]
