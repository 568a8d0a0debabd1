"""The shipped examples load: the quickstart config, the prompt set, the example constitution."""

from pathlib import Path

from rlaif.config import load_config
from rlaif.inputs.constitution import find_constitution, load_constitution
from rlaif.inputs.prompts import load_prompts

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_quickstart_config_loads_with_its_inputs() -> None:
    """The checkable quickstart: a mixed constitution, contrast from 4 samples, DPO on check pairs only."""
    config = load_config(EXAMPLES / "quickstart.yaml")
    assert config.judge.both_orders and config.judge.checks == "probe"
    assert config.generation.samples_per_prompt >= 4 and config.train.dpo.sources == ["check"]
    constitution = load_constitution(find_constitution(config.constitution))
    checked = [p for p in constitution.principles if p.check is not None]
    assert checked and len(checked) < len(constitution.principles)  # LLM-judged principles too
    prompts = load_prompts(config.resolve(config.prompts.path), limit=config.prompts.limit)
    assert len(prompts) == config.prompts.limit == 48


def test_the_quickstart_prompt_sets_do_not_overlap() -> None:
    training = load_prompts(EXAMPLES / "concise_train.jsonl")
    held = load_prompts(EXAMPLES / "concise_heldout.jsonl")
    assert len(held) >= 100 and not {p.id for p in held} & {p.id for p in training}


def test_my_constitution_is_valid() -> None:
    constitution = load_constitution(EXAMPLES / "my_constitution.yaml")
    assert [p.id for p in constitution.principles] == ["explain-steps", "no-false-facts", "encouraging"]
    assert constitution.principles[0].weight == 2


def test_heldout_prompts_are_not_training_prompts() -> None:
    held = load_prompts(EXAMPLES / "heldout_prompts.jsonl")
    training = load_prompts(EXAMPLES / "prompts.jsonl")
    assert len(held) == 32 and not {p.id for p in held} & {p.id for p in training}


def test_the_rounds_config_loads_and_its_held_out_prompts_are_unseen() -> None:
    """`rlaif iterate examples/rounds.yaml`: the quickstart in three rounds of 24 prompts, 64 held out."""
    config = load_config(EXAMPLES / "rounds.yaml")
    assert config.iterate is not None and config.iterate.rounds == 3
    assert config.iterate.prompts_per_round == 24 and config.prompts.limit == 72
    training = load_prompts(config.resolve(config.prompts.path), limit=config.prompts.limit)
    held = load_prompts(config.resolve(config.iterate.heldout), limit=config.iterate.heldout_limit)
    assert len(held) == 64 and not {p.messages[-1].content for p in held} & {
        p.messages[-1].content for p in training
    }
