"""The accelerate configs in examples/accelerate load with accelerate's own loader and say how the
effective batch is made."""

from __future__ import annotations

from pathlib import Path

import pytest

ACCELERATE = Path(__file__).resolve().parents[2] / "examples" / "accelerate"
KINDS = {
    "multi_gpu.yaml": "MULTI_GPU", "deepspeed_zero2.yaml": "DEEPSPEED", "deepspeed_zero3.yaml": "DEEPSPEED",
    "fsdp.yaml": "FSDP",
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(KINDS))
def test_each_config_loads_with_accelerate(name: str) -> None:
    from accelerate.commands.config.config_args import load_config_from_file

    path = ACCELERATE / name
    config = load_config_from_file(str(path))  # unknown keys raise here
    assert str(config.distributed_type).endswith(KINDS[name]) and config.num_processes == 8
    assert config.mixed_precision == "bf16"
    if "zero" in name:
        assert config.deepspeed_config["zero_stage"] == int(name[-6])
    text = path.read_text()
    assert "per_device_train_batch_size × gradient_accumulation_steps × num_processes" in text
    assert f"--config_file examples/accelerate/{name} -m rlaif.cli.main train dpo CONFIG" in text


def test_every_config_is_tested() -> None:
    assert {p.name for p in ACCELERATE.glob("*.yaml")} == set(KINDS)
