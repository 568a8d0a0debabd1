"""Converting the bundled model: several processes asking at once on a fresh machine convert it once."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from rlaif.backends import bundled


def test_callers_at_once_convert_once_and_all_get_the_whole_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two test lanes on a fresh machine each converted into the same `.partial` folder and one lost
    its files mid-write (45 integration tests errored); now one converts, the others wait for it."""
    converting: list[int] = []
    at_once = conversions = 0

    def convert(gguf: Path, out: Path) -> None:
        nonlocal at_once, conversions
        conversions += 1
        converting.append(1)
        at_once = max(at_once, len(converting))
        time.sleep(0.3)
        out.mkdir(parents=True)
        (out / "config.json").write_text("{}")
        (out / "model.safetensors").write_bytes(b"weights")
        converting.pop()

    calls: list[Path] = []
    monkeypatch.setattr(bundled, "_convert", convert)
    monkeypatch.setattr(bundled, "gguf_path", lambda: tmp_path / "model.gguf")
    monkeypatch.setattr(bundled, "check_version", lambda *a, **k: None)
    target = tmp_path / "models" / bundled.BUNDLED_NAME
    threads = [threading.Thread(target=lambda: calls.append(bundled.ensure_model(target))) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert calls == [target] * 4
    assert at_once == conversions == 1
    assert (target / "model.safetensors").read_bytes() == b"weights"
    assert not target.with_name(target.name + ".partial").exists()
