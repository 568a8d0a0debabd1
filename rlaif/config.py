"""Run configuration: one YAML file, validated when loaded.

Input paths (constitution, prompts) are resolved against the config file's folder; `run_dir` is
resolved against the current directory. TRL settings pass through to TRL's own config classes.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from rlaif.errors import ConfigError
from rlaif.templates import Templates

PairSource = Literal["check", "judge", "revision"]
OnlineReward = Literal["model", "judge", "judge_group", "checks"]
PPOReward = Literal["model", "checks"]
FilterName = Literal[
    "judge_inconsistent", "judge_low_confidence", "revision_near_identical", "revision_few_shot_copy",
    "revision_degenerate", "revision_meta_talk", "revision_still_fails_check", "revision_judged_worse",
]  # fmt: skip
FILTERS: tuple[str, ...] = FilterName.__args__  # type: ignore[attr-defined]
META_PATTERNS = (
    r"(?i)\b(the|this|my|your) (previous |original |last |first |revised |new |above )?"
    r"(answer|response|reply)"
    r"\b (is|was|helps|provides|does|doesn't|contains|should|could|would|gives|offers|addresses)\b"
    r"(?!:?\s*[-+$€£]?\d)",  # "The answer is 42." answers
    r"(?i)^\W*(here is|here's|below is) (the|a|my|an) (revised|rewritten|new|improved|updated)\b",
    r"(?i)^\W*(revised|rewritten|improved|updated) (answer|response|version)\s*:",
    r"(?i)\b(critique|revision request|critique request)\s*:",
)
"""Text about "the answer" instead of an answer: the tell-tale of a model that did not rewrite."""

__all__ = [
    "DPOSection",
    "GenerationConfig",
    "JudgeConfig",
    "KTOSection",
    "ModelConfig",
    "MonitorsConfig",
    "OnlineSection",
    "GateConfig",
    "PairTrainerSection",
    "PPOSection",
    "QualityConfig",
    "ExportConfig",
    "FilterConfig",
    "PromptColumns",
    "PromptsConfig",
    "ReviewConfig",
    "ReviewSampleConfig",
    "ReviseConfig",
    "RewardModelUser",
    "RewardSection",
    "RayConfig",
    "RunConfig",
    "SFTSection",
    "ServerConfig",
    "TemplatesConfig",
    "TrainConfig",
    "TrainerSection",
    "config_from_dict",
    "load_config",
    "reviewer_problem",
]


class Section(BaseModel):
    # inf and nan are never a setting: refused at the door instead of crashing a run later.
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True, allow_inf_nan=False)


class ServerConfig(Section):
    """How a managed local vLLM server is started."""

    max_model_len: int = Field(default=2048, ge=256)
    """Context length of the server."""
    dtype: str = "auto"
    """Weights dtype (`--dtype`): `auto` is bfloat16 on a GPU and on a CPU with hardware bf16, float32
    on other CPUs (where bf16 is emulated: 5–6 times slower, and it rounds judge log-probs into ties)."""
    kv_cache_gb: int = Field(default=2, ge=1)
    """KV cache size on CPU (VLLM_CPU_KVCACHE_SPACE)."""
    startup_timeout: float = Field(default=600.0, gt=0)
    """Seconds to wait for the server to become healthy."""
    extra_args: list[str] = []
    """More `vllm serve` arguments."""
    max_restarts: int = Field(default=3, ge=0)
    """Restarts of a managed server that dies or freezes mid-run; the run goes on from its stored records."""
    frozen_after: float = Field(default=60.0, gt=0)
    """Seconds without an answer to the health check (probed every 5 s) after which a running
    managed server counts as frozen: it is killed and restarted like one that died."""


class RayConfig(Section):
    """Generation as Ray Data batch jobs on vLLM engines (`ray.data.llm`) instead of a server.

    Needs `pip install 'rlaif[ray]'`. Used by the pipeline's respond, revise and judge stages;
    commands that judge on the side (evaluate, win rate, online RL) still start a server.
    """

    address: str | None = None
    """Ray cluster to join (e.g. "auto" on a cluster node); None starts a local Ray."""
    num_cpus: int | None = None
    """Logical CPUs of a local Ray (each Ray Data stage holds one; the default is the machine's)."""
    replicas: int = Field(default=1, ge=1)
    """vLLM engine replicas (one per GPU, typically)."""
    batch_size: int = Field(default=64, ge=1)
    """Rows per batch sent to an engine."""
    resources_per_replica: dict[str, float] | None = None
    """Ray resources one engine holds; None: {GPU: 1, CPU: 1} when CUDA is present, else {CPU: 1}."""
    engine_kwargs: dict[str, Any] = {}
    """More vLLM engine arguments (e.g. tensor_parallel_size, max_model_len, dtype)."""
    kv_cache_gb: int = Field(default=2, ge=1)
    """KV cache size of a CPU engine (VLLM_CPU_KVCACHE_SPACE)."""
    gather_seconds: float = Field(default=0.2, gt=0)
    """A wave starts once no new request has come for this long."""


class ModelConfig(Section):
    """Which model generates, and where it is served."""

    path: str | None = None
    """Hugging Face model folder or hub id; None means the bundled SmolLM2-135M-Instruct."""
    base_urls: list[str] = []
    """Running OpenAI-compatible servers (e.g. `http://host:8000/v1`); empty starts a managed server."""
    served_name: str | None = None
    """Model name on those servers; None asks the first server."""
    api_key_env: str = "OPENAI_API_KEY"
    """Environment variable holding the servers' API key (the key itself never goes in a file)."""
    max_concurrency: int = Field(default=64, ge=1)
    """Most requests in flight; keeps vLLM's batch full."""
    request_timeout: float = Field(default=300.0, gt=0)
    """Seconds one request may take in all."""
    connect_timeout: float = Field(default=10.0, gt=0)
    """Seconds to open a connection to a server."""
    first_byte_timeout: float = Field(default=120.0, gt=0)
    """Seconds to wait for the first byte of a one-token answer (answers are not streamed, so it comes
    when the answer is complete); each token of the request's max_tokens adds `first_byte_per_token`.
    Capped at request_timeout. Generous, because a request may queue behind a full batch."""
    first_byte_per_token: float = Field(default=0.25, ge=0)
    """Seconds added to first_byte_timeout per token of max_tokens."""
    unreachable_after: float = Field(default=60.0, gt=0)
    """Seconds of failure on every server before the run stops (a rerun resumes)."""
    server: ServerConfig = ServerConfig()
    """Managed server settings."""
    ray: RayConfig | None = None
    """When set, the pipeline generates through Ray Data instead of a server (see `RayConfig`)."""

    @model_validator(mode="after")
    def _one_engine(self) -> ModelConfig:
        if self.ray is not None and self.base_urls:
            raise ValueError("set either base_urls (running servers) or ray (Ray Data batch jobs), not both")
        return self

    @field_validator("base_urls")
    @classmethod
    def _http_urls(cls, urls: list[str]) -> list[str]:
        for url in urls:
            if not url.startswith(("http://", "https://")) or len(url.split()) != 1:
                raise ValueError(f"{url!r} is not an http(s) URL; write it like http://127.0.0.1:8000/v1")
        return urls


class PromptColumns(Section):
    """Which column of a `datasets` prompt set holds the conversation (one of messages, prompt,
    transcript, user), and an optional system column. Unset: `messages`, `prompt` or an hh-rlhf
    `chosen` column, as in a JSONL prompt set."""

    messages: str | None = None
    """A column of chat messages (`[{role, content}, ...]`) ending with a user turn."""
    prompt: str | None = None
    """A column of prompt text (one user turn), or of chat messages."""
    transcript: str | None = None
    """A column of hh-rlhf transcripts (`\\n\\nHuman: ...\\n\\nAssistant: ...`); a final Assistant
    turn is cut off, so the prompt ends with the last Human turn."""
    user: str | None = None
    """A column of user text, usually with `system`."""
    system: str | None = None
    """A column of system prompts put before the `user` (or `prompt`) text; an empty one is left out."""

    @model_validator(mode="after")
    def _one_conversation(self) -> PromptColumns:
        chosen = [name for name in ("messages", "prompt", "transcript", "user") if getattr(self, name)]
        if len(chosen) != 1:
            raise ValueError(
                f"name one column of messages, prompt, transcript or user (got {chosen or 'none'}), "
                "e.g. {prompt: question}"
            )
        if self.system and chosen[0] not in ("prompt", "user"):
            raise ValueError(f"system goes with a prompt or user column, not with {chosen[0]}")
        return self


_DATASET_ONLY = ("config", "split", "revision", "streaming", "columns")


class PromptsConfig(Section):
    """The prompt set: a JSONL file (`path`) or anything `datasets` loads (`dataset`)."""

    path: str | None = None
    """JSONL file: rows with `messages`, `prompt`, or hh-rlhf `chosen` transcripts."""
    dataset: str | None = None
    """A Hugging Face Hub dataset id (`org/name`), or a local Parquet, JSON, JSONL, CSV or Arrow file, or a
    folder saved with `save_to_disk` (relative paths: to the config's folder)."""
    config: str | None = None
    """`dataset`: the Hub dataset's configuration (subset) name."""
    split: str = "train"
    """`dataset`: the split to read."""
    revision: str | None = None
    """`dataset`: a Hub branch, tag or commit, so the same config reads the same rows."""
    streaming: bool = False
    """`dataset`: read rows as they download (an `IterableDataset`) instead of preparing the whole set in
    the `datasets` cache first; for large sets, with `limit`."""
    columns: PromptColumns | None = None
    """`dataset`: which columns hold the conversation; None looks for `messages`, `prompt` or `chosen`."""
    limit: int | None = Field(default=None, ge=1)
    """Use only the first N prompts."""

    @model_validator(mode="after")
    def _one_source(self) -> PromptsConfig:
        if self.path is None and self.dataset is None:
            raise ValueError(
                "prompts.path is missing: give prompts.path (a JSONL file) or prompts.dataset "
                "(a Hub id, or a Parquet/JSON/CSV/Arrow file or saved dataset folder)"
            )
        if self.path is not None and self.dataset is not None:
            raise ValueError("give prompts.path (a JSONL file) or prompts.dataset, not both")
        if self.path is not None:
            defaults = {name: PromptsConfig.model_fields[name].default for name in _DATASET_ONLY}
            given = sorted(name for name, default in defaults.items() if getattr(self, name) != default)
            if given:
                raise ValueError(f"{', '.join(given)} apply to prompts.dataset only; prompts.path is JSONL")
        return self


class GenerationConfig(Section):
    """Sampling for first answers."""

    samples_per_prompt: int = Field(default=2, ge=1)
    """Answers per prompt; sample 0 is revised, samples 0 and 1 are judged."""
    max_tokens: int = Field(default=128, ge=1)
    temperature: float = Field(default=0.8, ge=0)
    top_p: float = Field(default=0.95, gt=0, le=1)


class ReviseConfig(Section):
    """Critique-and-revise loop."""

    enabled: bool = True
    rounds: int = Field(default=2, ge=1, le=16)
    """Critique/revision rounds per prompt."""
    max_tokens: int = Field(default=128, ge=1)
    temperature: float = Field(default=0.7, ge=0)
    top_p: float = Field(default=0.95, gt=0, le=1)
    few_shot: int = Field(default=1, ge=0)
    """How many of the constitution's examples to show before each conversation."""


class JudgeConfig(Section):
    """The AI judge."""

    enabled: bool = True
    mode: Literal["logprob", "cot", "pointwise"] = "logprob"
    """`logprob`: one-token A/B verdict, soft label from the option log-probs; `cot`: reasoning first,
    then a verdict (see `cot_final`), soft label clamped to `cot_clamp`; `pointwise`: each response
    scored 1-10 alone as structured JSON, the label from the score difference."""
    both_orders: bool = True
    """Judge A/B and B/A and average: removes position bias from the soft label."""
    principles_per_judgment: int = Field(default=1, ge=1)
    """Principles asked about in one verdict."""
    ensemble: int = Field(default=1, ge=1)
    """Principle ensemble: judge under this many distinct principle draws and average the labels."""
    few_shot: int = Field(default=0, ge=0)
    """Constitution examples shown to the judge as solved comparisons (revision against original)."""
    self_consistency: int = Field(default=1, ge=1)
    """`cot` only: reasoning samples per order (at `cot_temperature`), their labels averaged."""
    cot_max_tokens: int = Field(default=256, ge=8)
    """`cot`: most reasoning tokens."""
    cot_temperature: float = Field(default=0.7, ge=0)
    """`cot`: sampling temperature when `self_consistency` > 1 (one sample is greedy)."""
    cot_final: Literal["constrained", "parse"] = "constrained"
    """`cot`: `constrained` asks once more after the reasoning for one letter (A/B, log-probs);
    `parse` reads a strict "Verdict: A|B" line from the reasoning (none or both: unparsed)."""
    cot_clamp: tuple[float, float] | None = (0.4, 0.6)
    """`cot`: band each order's label is clamped to (Constitutional AI used 0.4-0.6); null: no clamp."""
    defences: bool = True
    """Candidates between per-run random delimiters with the question after them (`judge.jinja`);
    false uses `judge_plain.jinja` (no delimiters, question first), for attack-suite comparisons."""
    inconsistent: Literal["keep", "drop", "tie"] = "drop"
    """Pairs whose two orders disagree: `drop` them from the export (they stay in pairs.jsonl, counted;
    their label is position bias, not preference), `keep` them with the averaged low-confidence label,
    or count them as a `tie` (no pair is made)."""
    min_confidence: float = Field(default=0.6, ge=0.5, le=1.0)
    """Judge pairs whose P(chosen) is below this are dropped from the export (kept in pairs.jsonl)."""
    checks: Literal["exact", "probe", "off"] = "probe"
    """Principles with a `check`: where the two responses' check outcomes differ, the check labels the
    pair. `exact` asks the LLM judge nothing there; `probe` asks it too and records whether it agreed
    (the judge's agreement with the checks: a ground truth for the judge in every run); `off` ignores
    checks."""
    probe_share: float = Field(default=1.0, ge=0.0, le=1.0)
    """`probe`: share of the check-decided pairs also put to the LLM judge (seeded); the rest as `exact`."""
    contrast_pairs: bool = True
    """With checks on and several samples per prompt: for each checkable principle, one more pair per
    prompt of a sample that passes its check against one that fails it (the two that differ least on
    the other checks), labelled by the check. Free: no LLM request unless probed."""
    validate_revisions: Literal["auto", "on", "off"] = "auto"
    """Ask the judge, in both orders and under the revision's principles, whether the revision beats the
    original before a revision pair is exported (Constitutional AI's validation). `auto`: on when
    `judge.model` names a judge of its own, off when the policy judges itself."""
    model: ModelConfig | None = None
    """A different judge model or server; None uses the policy's."""

    @model_validator(mode="after")
    def _coherent(self) -> JudgeConfig:
        if self.cot_clamp is not None:
            low, high = self.cot_clamp
            if not 0.0 <= low <= 0.5 <= high <= 1.0:
                raise ValueError(
                    f"cot_clamp {list(self.cot_clamp)} must be [low, high] with "
                    "0 <= low <= 0.5 <= high <= 1, e.g. [0.4, 0.6]; null turns clamping off"
                )
        if self.self_consistency > 1 and self.mode != "cot":
            raise ValueError(
                f"self_consistency {self.self_consistency} needs mode: cot (mode is {self.mode}); "
                "set mode: cot or self_consistency: 1"
            )
        return self


class TrainerSection(Section):
    """What every trainer's section has: whether `rlaif run` trains it, and TRL's own settings."""

    enabled: bool = False
    """Also train it in `rlaif run` (after export); `rlaif train NAME` trains it either way."""
    args: dict[str, Any] = {}
    """The trainer's own config keyword arguments (TRL's `DPOConfig`, `RewardConfig`, ... or our `PPOConfig`),
    passed through as they are."""


class PairTrainerSection(TrainerSection):
    """A trainer that reads the exported preference pairs."""

    sources: list[PairSource] = ["check", "judge", "revision"]
    """Which pairs to train on (or, for online RL and PPO, whose prompts): `check` (labelled by a
    principle's check), `judge` (labelled by the LLM judge), `revision` (revision over original)."""


class DPOSection(PairTrainerSection):
    """DPO training; `args` go to TRL's DPOConfig unchanged (max_steps, beta, loss_type, ...)."""

    enabled: bool = True
    """Train it in `rlaif run` (on by default)."""
    soft_labels: Literal["off", "smoothing", "weight"] = "smoothing"
    """Use each pair's P(chosen): `smoothing` (conservative DPO, label smoothing 1 - P per pair: a
    coin-flip pair pulls neither way), `weight` (loss times 2P - 1), `off` (every pair counts as sure).
    Needs TRL's standard loss (loss_type: sigmoid)."""


class SFTSection(TrainerSection):
    """Supervised fine-tuning on the final revisions (`rlaif train sft`); `args` go to TRL's SFTConfig."""


class RewardSection(PairTrainerSection):
    """Reward model on the pairs (`rlaif train reward`); `args` go to TRL's RewardConfig."""

    use_margin: bool = False
    """Ask for a reward gap of logit(score) per pair (the judge's soft label; capped at logit(0.95))."""
    eval_fraction: float = Field(default=0.1, ge=0, lt=1)
    """Share of prompts whose pairs are held out to measure pairwise accuracy; 0 holds none out."""
    ensemble: int = Field(default=1, ge=1, le=16)
    """Reward models to train as an ensemble (each with its own seed and, with `bootstrap`, its own
    resample of the training pairs), saved as RUN_DIR/models/reward/member-0..K-1 with `ensemble.json`;
    RL reads their mean and std. 1: one model, as before."""
    bootstrap: bool = True
    """With `ensemble` > 1: each member trains on a bootstrap resample of the training pairs."""
    heads: Literal["tags"] | dict[str, list[str]] | None = None
    """One reward head per principle group: `tags` (a head per tag of the constitution's principles) or
    `{head: [tag or principle id, ...]}`. A head learns from the pairs labelled under its principles (the
    export's `principle_ids`) and ignores the others; a head with no training pair is reported and left
    out. None: one scalar head."""

    @field_validator("heads")
    @classmethod
    def _head_names(cls, heads: str | dict[str, list[str]] | None) -> str | dict[str, list[str]] | None:
        if isinstance(heads, dict):
            if not heads:
                raise ValueError("name at least one head, e.g. {helpful: [helpfulness], safety: [harm]}")
            for name, members in heads.items():
                if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
                    raise ValueError(f"head name {name!r}: use letters, digits, '_', '.', '-'")
                if not members:
                    raise ValueError(f"head {name!r} lists no tag or principle id; list at least one")
        return heads


class KTOSection(PairTrainerSection):
    """KTO on the pairs taken apart into desirable and undesirable answers (`rlaif train kto`)."""

    soft_labels: Literal["off", "weight"] = "weight"
    """Use each pair's P(chosen): `weight` scales both of its answers' losses by 2P - 1 (a coin-flip
    pair pulls neither way), `off` counts every pair as sure."""


def rewards(value: str | list[str]) -> list[str]:
    """A `reward:` setting as a list of reward names."""
    return [value] if isinstance(value, str) else list(value)


class RewardModelUser(PairTrainerSection):
    """A trainer that can be rewarded by the trained reward model (one model, an ensemble, or heads)."""

    reward_model: str | None = None
    """Reward model (or ensemble) folder for `reward: model`; None means RUN_DIR/models/reward."""
    uncertainty_penalty: float = Field(default=0.0, ge=0)
    """λ of the conservative reward `mean - λ·std` over an ensemble's members (0: the plain mean); the
    mean std (the members' disagreement) is logged each step as `reward/ensemble_std` either way."""
    head_weights: dict[str, float] | None = None
    """Weight per reward head (`train.reward.heads`); heads not named weigh 0. None: the heads' mean.
    Read when training starts, so changing it needs no new reward model."""


class OnlineSection(RewardModelUser):
    """Online RLAIF (`rlaif train online`): the policy samples, a reward model or the judge scores."""

    algorithm: Literal["rloo", "grpo"] = "rloo"
    """TRL's RLOOTrainer or GRPOTrainer."""
    reward: OnlineReward | list[OnlineReward] = "model"
    """`model`: the trained reward model; `judge`: the judge's P(better than the reference answer);
    `judge_group`: the judge ranks each prompt's completions against each other (Bradley–Terry);
    `checks`: the weighted share of the constitution's checks passed; a list combines them, weighted by
    TRL's `args.reward_weights` (e.g. reward: [checks, model], args: {reward_weights: [1.0, 0.5]})."""
    reference: Literal["chosen", "rejected"] = "chosen"
    """`reward: judge`: which answer of the prompt's pair the completion is compared with."""
    group_comparisons: int | None = Field(default=None, ge=1, le=64)
    """`reward: judge_group`: comparisons per completion (each in both orders); None compares all pairs."""
    group_min_valid: float = Field(default=0.5, gt=0, le=1)
    """`reward: judge_group`: least share of a group's judge orders that must parse, else the group gets
    no gradient (one reward for all its completions)."""

    @model_validator(mode="after")
    def _rewards(self) -> OnlineSection:
        names = rewards(self.reward)
        if not names or len(set(names)) != len(names):
            raise ValueError(
                f"reward {names} must name each of model, judge, judge_group, checks at most once, and at "
                "least one"
            )
        return self


class PPOSection(RewardModelUser):
    """Our PPO (`rlaif train ppo`): the policy answers the pairs' prompts, the reward model scores them,
    a KL penalty keeps it near the starting model. `args` are `rlaif.train.ppo.config.PPOConfig` fields
    (total_steps, batch_size, target_kl, init_kl_coef, ...)."""

    reward: PPOReward | list[PPOReward] = "model"
    """`model`: the reward model's score; `checks`: the weighted share of the constitution's checks passed;
    a list adds them up with `reward_weights`."""
    reward_weights: list[float] | None = None
    """One weight per entry of `reward` (default: 1 each)."""
    resume: bool = True
    """Go on from the newest checkpoint in RUN_DIR/models/ppo (see `args.save_every`)."""

    @model_validator(mode="after")
    def _weights(self) -> PPOSection:
        names = rewards(self.reward)
        if not names or len(set(names)) != len(names):
            raise ValueError(f"reward {names} must name each of model, checks at most once, and at least one")
        if self.reward_weights is not None and len(self.reward_weights) != len(names):
            raise ValueError(
                f"reward_weights has {len(self.reward_weights)} weights for {len(names)} rewards {names}; "
                "give one weight per reward"
            )
        return self


REFUSAL_PATTERNS = (
    r"(?i)\bI (can ?not|can't|won't|will not|am unable to|'m unable to|am not able to)\b",
    r"(?i)\b(sorry|apologi[sz]e)\b.{0,40}\b(can't|cannot|unable|not able)\b",
    r"(?i)\bas an AI\b",
)
"""Text of a refusal, for the hacking monitors' refusal rate."""


class MonitorsConfig(Section):
    """Reward-hacking monitors of PPO and online RL (`train.monitors`), also read by the win-rate and
    compliance evaluations. Each threshold is the value at which a one-line warning is printed; None
    measures and logs the monitor but never alerts on it."""

    enabled: bool = True
    """Measure the monitors at every step (metrics JSONL, the training plot)."""
    length_drift: float | None = Field(default=0.5, gt=0)
    """Alert when the mean answer length (words) moved by this share from the first step (or the base)."""
    refusal_rate: float | None = Field(default=0.3, ge=0, le=1)
    """Alert above this share of answers matching `refusal_patterns`."""
    repetition_rate: float | None = Field(default=0.2, ge=0, le=1)
    """Alert above this mean share of repeated word 4-grams (a repetition loop scores near 1)."""
    sycophancy_rate: float | None = Field(default=0.5, ge=0, le=1)
    """Alert above this share of probe answers agreeing with the user's false claim."""
    format_rate: float | None = Field(default=0.5, ge=0, le=1)
    """Alert above this share of answers with lists or headers among prompts that did not ask for them."""
    kl_domain: float | None = Field(default=None, gt=0)
    """Alert when the mean sequence KL of one prompt tag (domain) passes this (PPO, tagged prompts)."""
    refusal_patterns: list[str] = Field(default=list(REFUSAL_PATTERNS), min_length=1)
    """Regular expressions (Python `re`) of a refusal; an answer matching any one counts."""
    probes: str | None = None
    """A sycophancy probe file (JSONL, `{"prompt": ...}` per line); None: the shipped set of 20."""
    probe_every: int = Field(default=10, ge=0)
    """Answer the sycophancy probes at the first step and every N steps; 0 never does."""
    probe_max_tokens: int = Field(default=48, ge=1, le=4096)
    """Answer length limit (tokens) of the probes."""
    stop_on_alert: bool = False
    """End training (saving the model) at the first step a monitor alerts."""

    @field_validator("refusal_patterns")
    @classmethod
    def _patterns_compile(cls, patterns: list[str]) -> list[str]:
        for pattern in patterns:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(
                    f"pattern {pattern!r} is not a regular expression ({exc}); fix or drop it"
                ) from None
        return patterns


class TrainConfig(Section):
    dpo: DPOSection = DPOSection()
    sft: SFTSection = SFTSection()
    reward: RewardSection = RewardSection()
    kto: KTOSection = KTOSection()
    online: OnlineSection = OnlineSection()
    ppo: PPOSection = PPOSection()
    monitors: MonitorsConfig = MonitorsConfig()
    model: dict[str, Any] = {}
    """How every TRL trainer loads the policy and its reference: TRL's `ModelConfig` keywords (`use_peft`,
    `lora_r`, `lora_alpha`, `lora_dropout`, `lora_target_modules`, `dtype`, `attn_implementation`,
    `load_in_4bit`, `load_in_8bit`, ...), passed through (`rlaif.train.model_options`). {}: full weights."""


class ReviewSampleConfig(Section):
    """Which stored pairs people are asked to review."""

    size: int | None = Field(default=50, ge=1)
    """How many pairs (all of them when fewer are stored); ignored when `fraction` is set."""
    fraction: float | None = Field(default=None, gt=0, le=1)
    """Share of the stored pairs instead of a count (rounded up)."""
    strategy: Literal["uniform", "stratified", "lowest_confidence", "inconsistent_first"] = "uniform"
    """`uniform`; `stratified` by principle (every principle at least once); `lowest_confidence` first;
    `inconsistent_first` (pairs whose two judge orders disagreed, then the rest at random)."""
    sources: list[PairSource] = ["check", "judge", "revision"]
    """Which pairs may be sampled."""

    @model_validator(mode="after")
    def _count_or_fraction(self) -> ReviewSampleConfig:
        if self.fraction is not None and "size" in self.model_fields_set and self.size is not None:
            raise ValueError("give review.sample.size or review.sample.fraction, not both")
        if self.fraction is not None:
            self.size = None  # so a dumped config (the run manifest) validates again
        return self


class GateConfig(Section):
    """Training refuses to start unless people agree with the AI often enough."""

    min_agreement: float = Field(ge=-1, le=1)
    """Least AI-human agreement (`metric`) that lets training start, e.g. 0.7."""
    min_reviewed: int = Field(default=50, ge=1)
    """Least number of reviewed pairs the agreement must rest on."""
    metric: Literal["accuracy", "kappa"] = "accuracy"
    """`accuracy`: share of decisive human verdicts that pick the AI's answer; `kappa`: Cohen's kappa."""


def reviewer_problem(name: str) -> str | None:
    """Why `name` cannot name a reviewer, or None when it can.

    A name is an identity in records, reports and file names people make from it (one batch file per
    annotator, say): path characters, control characters and `.`/`..` could point outside the folder
    it is meant for, and an empty name identifies no one.
    """
    if not name.strip():
        return "is empty; give a name such as alice"
    if name != name.strip():
        return "has spaces at an end; write the name without them"
    bad = sorted({c for c in name if c in "/\\" or not c.isprintable()})
    if bad:
        shown = ", ".join(repr(c) for c in bad)
        return f"contains {shown}; a reviewer name has no path or control characters (try alice or a.b@lab)"
    if name in (".", ".."):
        return "is a path, not a name; give a name such as alice"
    if len(name) > 100:
        return f"is {len(name)} characters long; use at most 100"
    return None


class ReviewConfig(Section):
    """Human spot-checks of the AI's pairs."""

    reviewer: str | None = None
    """Reviewer id for the terminal and web reviewers; None uses the login name."""

    @field_validator("reviewer")
    @classmethod
    def _a_name(cls, name: str | None) -> str | None:
        problem = None if name is None else reviewer_problem(name)
        if problem:
            raise ValueError(f"reviewer {name!r} {problem}")
        return name

    seed: int | None = None
    """Seed of the sample, the answer order shown and the bootstrap; None uses the run's seed."""
    sample: ReviewSampleConfig = ReviewSampleConfig()
    show_ai_verdict: bool = False
    """Show the AI's choice and probability to reviewers (hidden by default to avoid anchoring)."""
    hook: str | None = Field(default=None, pattern=r"^[^:\s]+:[A-Za-z_][A-Za-z0-9_.]*$")
    """A Python reviewer `module:function` (or `path/to/file.py:function`) for `rlaif review hook`."""
    hook_batch_size: int = Field(default=16, ge=1)
    """Pairs handed to the hook per call; decisions are stored after each call."""
    bootstrap: int = Field(default=1000, ge=100)
    """Bootstrap resamples for confidence intervals."""
    confidence: float = Field(default=0.95, gt=0.5, lt=1)
    """Confidence level of the intervals."""
    gate: GateConfig | None = None
    """Gate before training; None means no gate."""


class FilterConfig(Section):
    """Which exported pairs are dropped as noise, and the thresholds. Dropped pairs stay in pairs.jsonl;
    `export/dropped.jsonl` says why each was dropped, so a changed threshold needs only a re-export."""

    off: list[FilterName] = []
    """Filters to switch off (all are on): judge_inconsistent (see `judge.inconsistent`),
    judge_low_confidence (`judge.min_confidence`), revision_near_identical, revision_few_shot_copy,
    revision_degenerate, revision_meta_talk, revision_still_fails_check, revision_judged_worse."""
    near_identical: float = Field(default=0.1, ge=0.0, le=1.0)
    """A revision whose normalised edit distance to the original is below this is no real rewrite."""
    few_shot_overlap: float = Field(default=0.5, ge=0.0, le=1.0)
    """A revision with this share of its word 5-grams in the constitution's examples copies them."""
    repetition: float = Field(default=0.3, ge=0.0, le=1.0)
    """A revision whose word 4-grams repeat earlier ones at this share or more is a repetition loop."""
    meta_patterns: list[str] = list(META_PATTERNS)
    """Regular expressions (Python `re`) that mark a revision that talks about "the answer" instead of
    answering."""

    @field_validator("meta_patterns")
    @classmethod
    def _compiles(cls, patterns: list[str]) -> list[str]:
        for pattern in patterns:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"{pattern!r} is not a valid regular expression ({exc})") from None
        return patterns


class QualityConfig(Section):
    """Gates on the data trainers would read, checked after export and before any trainer. A gate that
    fails stops training (and `rlaif run` exits 1); `--force` trains anyway and is recorded in the
    manifest. A threshold of null switches its gate off."""

    min_pairs: int = Field(default=8, ge=0)
    """Fewest exported pairs (from the trainers' sources) worth training on."""
    min_order_consistency: float | None = Field(default=0.6, ge=0.0, le=1.0)
    """LLM-judged pairs in the training data: least share of judgments whose two orders agree."""
    max_same_position: float | None = Field(default=0.8, ge=0.0, le=1.0)
    """LLM-judged pairs in the training data: most share of judgments that picked the same position twice."""
    max_unparsed: float | None = Field(default=0.1, ge=0.0, le=1.0)
    """LLM-judged pairs in the training data: most share of judge orders that did not parse."""
    min_decisive: float | None = Field(default=0.5, ge=0.0, le=1.0)
    """LLM-judged pairs in the training data: least share of judgments that give a pair (not a tie,
    not dropped as inconsistent or unsure)."""
    min_check_agreement: float | None = Field(default=0.6, ge=0.0, le=1.0)
    """LLM-judged pairs in the training data: least agreement of the judge with the checks where both
    decided (`judge.checks: probe`), once `min_check_probes` such pairs exist."""
    min_check_probes: int = Field(default=10, ge=1)
    """Probes needed before `min_check_agreement` applies."""
    min_revision_kept: float | None = Field(default=0.25, ge=0.0, le=1.0)
    """Revision pairs in the training data: least share of revision candidates that pass the filters."""
    filters: FilterConfig = FilterConfig()


class TemplatesConfig(Section):
    """Your own Jinja files in place of the shipped templates of `prompts/` (paths relative to the config
    file's folder). Each is checked when the config loads, and its hash enters the ids of what it makes."""

    respond: str | None = None
    """The system message of first answers (variable: `system_prompt`)."""
    critique: str | None = None
    """The user turn asking for a critique (variable: `principle`)."""
    revise: str | None = None
    """The user turn asking for a revision (variable: `principle`)."""
    judge: str | None = None
    """The pairwise judge (`conversation`, `principles`, `examples`, `response_a`, `response_b`, `nonce`)."""
    judge_plain: str | None = None
    """The pairwise judge without injection defences (`judge.defences: false`; same variables)."""
    judge_cot: str | None = None
    """The reasoning judge (`judge.mode: cot`; same variables, and `final` for the follow-up question)."""
    judge_pointwise: str | None = None
    """The pointwise judge (`judge.mode: pointwise`; `conversation`, `principles`, `response`, `nonce`)."""


class ExportConfig(Section):
    """The exported datasets: their train/test split, the card's Hub metadata, and where to push them."""

    test_fraction: float = Field(default=0.0, ge=0.0, lt=1.0)
    """Share of prompts whose rows go to the `test` split (all of a prompt's rows on one side; at least
    one prompt when above 0, never all of them). 0 writes a `train` split only: every row is trained on."""
    seed: int | None = None
    """Seed of the split; None uses the run's seed."""
    license: str = "other"
    """The card's `license` (a Hub license id, e.g. apache-2.0, cc-by-4.0; the data carries the terms of
    the prompt set and the models that wrote it)."""
    language: list[str] = ["en"]
    """The card's `language` codes."""
    tags: list[str] = []
    """More card tags, after rlaif's own (rlaif, constitutional-ai, synthetic, preference, dpo)."""
    push_to_hub: str | None = Field(default=None, pattern=r"^[\w.-]+/[\w.-]+$")
    """A Hub dataset repo (`user/name`) to push the export to after writing it (needs a login:
    `huggingface-cli login` or HF_TOKEN)."""
    private: bool = False
    """Create the Hub repo as private (an existing repo keeps its visibility)."""


class RunConfig(Section):
    """A whole pipeline run."""

    run_dir: str = Field(default="runs/default", min_length=1, pattern=r"\S")
    """Where everything is written."""
    constitution: str = "harmless"
    """A constitution file, or a shipped name (`harmless`, `helpful-honest`)."""
    prompts: PromptsConfig
    seed: int = 0
    """Root of every per-request seed and principle draw."""
    model: ModelConfig = ModelConfig()
    generation: GenerationConfig = GenerationConfig()
    revise: ReviseConfig = ReviseConfig()
    judge: JudgeConfig = JudgeConfig()
    train: TrainConfig = TrainConfig()
    review: ReviewConfig = ReviewConfig()
    quality: QualityConfig = QualityConfig()
    templates: TemplatesConfig = TemplatesConfig()
    export: ExportConfig = ExportConfig()
    base_dir: str = Field(default=".", exclude=True)
    """Folder relative input paths are resolved against (the config file's folder)."""

    @model_validator(mode="after")
    def _judge_has_two_samples(self) -> RunConfig:
        if self.judge.enabled and self.generation.samples_per_prompt < 2:
            raise ValueError(
                "generation.samples_per_prompt is 1, but the judge compares two samples of each prompt; "
                "set samples_per_prompt: 2 or more, or judge.enabled: false"
            )
        return self

    def resolve(self, path: str) -> Path:
        candidate = Path(path).expanduser()
        return candidate if candidate.is_absolute() else Path(self.base_dir) / candidate

    def template_set(self) -> Templates:
        """The templates this run renders: the shipped ones, with the files of `templates:` in their place."""
        chosen = self.templates.model_dump(exclude_none=True)
        return Templates({name: self.resolve(path) for name, path in chosen.items()})


def load_config(path: str | Path, overrides: dict[str, Any] | None = None) -> RunConfig:
    """Read and validate a run config; errors name the file, line and field."""
    from rlaif.yamlfile import load_yaml

    path = Path(path)
    data, locate = load_yaml(path, ConfigError, what="config")
    overrides = overrides or {}
    _override(data, overrides, path)

    def line(loc: tuple[Any, ...]) -> int | None:
        # An overridden value is not in the file: pointing at a line there would mislead.
        dotted = ".".join(str(part) for part in loc)
        overridden = any(
            dotted == key or dotted.startswith(f"{key}.") or key.startswith(f"{dotted}.") for key in overrides
        )
        return None if overridden else locate(loc)

    return _validated(data, path, line, base_dir=path.resolve().parent)


def config_from_dict(
    data: Mapping[str, Any], *, base_dir: str | Path = ".", overrides: Mapping[str, Any] | None = None
) -> RunConfig:
    """A run config given in code (the Python API), validated and checked as a file is; relative paths
    resolve against `base_dir`, `overrides` are dotted settings as with `--set`, and an error names the
    field."""
    where = Path("run config")
    data = copy.deepcopy(dict(data))  # the overrides must not write into the caller's dict
    _override(data, overrides or {}, where)
    return _validated(data, where, lambda loc: None, base_dir=Path(base_dir).resolve())


def _override(data: dict[str, Any], overrides: Mapping[str, Any], where: Path) -> None:
    for key, value in overrides.items():
        try:
            _set_dotted(data, key, value)
        except (AttributeError, TypeError):
            raise ConfigError(
                f"{where}: cannot apply the override {key}={value!r}: a part of {key} is not a section; "
                "check the dotted name"
            ) from None


def _validated(
    data: dict[str, Any], path: Path, line: Callable[[tuple[Any, ...]], int | None], *, base_dir: Path
) -> RunConfig:
    from rlaif.yamlfile import describe_error, format_error

    try:
        config = RunConfig.model_validate({**data, "base_dir": str(base_dir)})
    except ValidationError as exc:
        raise ConfigError(describe_error(path, exc, line, model=RunConfig)) from None
    templates = config.template_set()
    for name, file in templates.files.items():
        if not file.is_file():
            problem, fix = (
                f"template file {file} not found",
                "give a .jinja file, relative to the config's folder",
            )
            at = line(("templates", name))
            raise ConfigError(format_error(path, problem, fix, line=at, field=f"templates.{name}"))
    templates.check()
    return config


def _set_dotted(data: dict[str, Any], key: str, value: Any) -> None:
    node = data
    *parents, last = key.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = value


def dump_config(config: RunConfig) -> str:
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
