"""Run configuration: one YAML file, validated when loaded.

Input paths (constitution, prompts) are resolved against the config file's folder; `run_dir` is
resolved against the current directory. TRL settings pass through to TRL's own config classes.

One module per YAML section (`model`, `prompts`, `generation`, `revise`, `judge`, `train`, `review`,
`quality`, `templates`, `export`, `tools`, `iterate`) and `run` for the whole file; this module
re-exports them, so `from rlaif.config import X` is the import to write.
"""

from rlaif.config.base import PairSource, Patterns, Section
from rlaif.config.export import ExportConfig
from rlaif.config.generation import GenerationConfig
from rlaif.config.iterate import IterateConfig, RedTeamConfig, StopConfig
from rlaif.config.judge import PROBE_KINDS, JudgeConfig, ProbesConfig
from rlaif.config.model import ModelConfig, RayConfig, ServerConfig
from rlaif.config.prompts import PromptColumns, PromptsConfig
from rlaif.config.quality import FILTERS, META_PATTERNS, FilterConfig, FilterName, QualityConfig
from rlaif.config.review import GateConfig, ReviewConfig, ReviewSampleConfig, reviewer_problem
from rlaif.config.revise import ReviseConfig
from rlaif.config.run import RunConfig, config_from_dict, dump_config, load_config, set_dotted
from rlaif.config.templates import TemplatesConfig
from rlaif.config.tools import ToolsConfig
from rlaif.config.train import (
    REFUSAL_PATTERNS,
    DPOSection,
    KTOSection,
    MonitorsConfig,
    OnlineReward,
    OnlineSection,
    PairTrainerSection,
    PPOReward,
    PPOSection,
    RewardModelUser,
    RewardSection,
    SFTSection,
    TrainConfig,
    TrainerSection,
    rewards,
)

__all__ = [
    "DPOSection",
    "ExportConfig",
    "FILTERS",
    "FilterConfig",
    "FilterName",
    "GateConfig",
    "GenerationConfig",
    "IterateConfig",
    "JudgeConfig",
    "KTOSection",
    "META_PATTERNS",
    "ModelConfig",
    "MonitorsConfig",
    "OnlineReward",
    "OnlineSection",
    "PPOReward",
    "PPOSection",
    "PROBE_KINDS",
    "ProbesConfig",
    "PairSource",
    "PairTrainerSection",
    "Patterns",
    "PromptColumns",
    "PromptsConfig",
    "QualityConfig",
    "REFUSAL_PATTERNS",
    "RayConfig",
    "RedTeamConfig",
    "ReviewConfig",
    "ReviewSampleConfig",
    "ReviseConfig",
    "RewardModelUser",
    "RewardSection",
    "RunConfig",
    "SFTSection",
    "StopConfig",
    "Section",
    "ServerConfig",
    "TemplatesConfig",
    "ToolsConfig",
    "TrainConfig",
    "TrainerSection",
    "config_from_dict",
    "dump_config",
    "load_config",
    "reviewer_problem",
    "rewards",
    "set_dotted",
]
