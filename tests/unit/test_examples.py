"""The shipped examples load: the quickstart config, the prompt set, the example constitution."""

from pathlib import Path

from rlaif.config import load_config
from rlaif.inputs.constitution import load_constitution
from rlaif.inputs.prompts import load_prompts

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_quickstart_config_loads_with_its_inputs() -> None:
    config = load_config(EXAMPLES / "quickstart.yaml")
    assert config.revise.rounds == 2 and config.judge.both_orders
    prompts = load_prompts(config.resolve(config.prompts.path))
    assert len(prompts) == 24
    assert sum(len(p.messages) > 1 for p in prompts) >= 12  # whole multi-turn conversations kept


def test_my_constitution_is_valid() -> None:
    constitution = load_constitution(EXAMPLES / "my_constitution.yaml")
    assert [p.id for p in constitution.principles] == ["explain-steps", "no-false-facts", "encouraging"]
    assert constitution.principles[0].weight == 2


def test_heldout_prompts_are_not_training_prompts() -> None:
    held = load_prompts(EXAMPLES / "heldout_prompts.jsonl")
    training = load_prompts(EXAMPLES / "prompts.jsonl")
    assert len(held) == 32 and not {p.id for p in held} & {p.id for p in training}
