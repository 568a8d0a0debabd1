"""Hostile files and paths at the CLI: output paths that are folders, a full disk, a damaged export,
text files in the wrong encoding, and a run that fails on its server. Each ends in one line starting
`error:` with the right exit code (2: a path or file you gave, 3: the machine or a server), no
traceback, and the run's manifest says what happened."""

from __future__ import annotations

import errno
import json
import sys
from pathlib import Path

import pytest
import yaml

from rlaif.cli.main import main
from tests.support.stub import StubServer

pytestmark = pytest.mark.chaos

ROOT = Path(__file__).resolve().parents[2]
PROMPTS = ROOT / "examples" / "prompts.jsonl"


def cli(
    args: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> tuple[int, str]:
    """Run `rlaif ARGS` as the console script does; (exit code, stderr)."""
    monkeypatch.setenv("COLUMNS", "400")
    monkeypatch.setattr(sys, "argv", ["rlaif", *args])
    capsys.readouterr()
    code = 0
    try:
        main()
    except SystemExit as exc:
        code = int(exc.code or 0)
    _, err = capsys.readouterr()
    return code, err


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    return lines[0]


def run_config(tmp_path: Path, **model: object) -> Path:
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump({
        "run_dir": str(tmp_path / "run"), "prompts": {"path": str(PROMPTS), "limit": 2},
        "model": {"served_name": "m", **model}, "train": {"dpo": {"enabled": False}},
    }))  # fmt: skip
    return config


# --- output paths, checked before any work -------------------------------------------------------

OUTPUTS = [
    ["constitution", "bench", "concise-plain", "--json", "{out}"],
    ["evaluate", "compliance", "{config}", "--prompts", str(PROMPTS), "--json", "{out}"],
    ["evaluate", "compliance", "{config}", "--prompts", str(PROMPTS), "--plot", "{out}"],
    ["evaluate", "judge", "--config", "{config}", "--data", "x.jsonl", "--json", "{out}"],
    ["train", "bench", "{config}", "--json", "{out}"],
]


@pytest.mark.parametrize("args", OUTPUTS, ids=lambda a: " ".join(a[:2]) + " " + a[-2])
@pytest.mark.parametrize("kind", ["a folder", "under a file"])
def test_an_output_path_that_cannot_be_a_file_is_refused_before_any_work(
    tmp_path: Path,
    args: list[str],
    kind: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = run_config(tmp_path, base_urls=["http://127.0.0.1:9/v1"])
    (tmp_path / "a-file").write_text("x")
    out = tmp_path if kind == "a folder" else tmp_path / "a-file" / "report.json"
    filled = [a.replace("{out}", str(out)).replace("{config}", str(config)) for a in args]
    code, err = cli(filled, capsys, monkeypatch)
    line = one_line(err)
    assert code == 2, err
    assert args[-2] in line and ("is a folder" in line if kind == "a folder" else "is a file" in line), line
    assert not (tmp_path / "run").exists()  # nothing started


def test_a_full_disk_ends_in_one_line_and_the_run_resumes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The disk fills while the first stage stores its records: exit 3, one line naming the cause and the
    fix; once there is space again, the same command finishes the run."""
    import rlaif.store

    real_append = rlaif.store.Stage.append
    calls = {"n": 0}

    def full_after_one(self: rlaif.store.Stage, records: object) -> int:  # type: ignore[type-arg]
        calls["n"] += 1
        if calls["n"] > 1:
            raise OSError(errno.ENOSPC, "No space left on device", str(self.path))
        return real_append(self, records)  # type: ignore[arg-type]

    with StubServer() as stub:
        config = run_config(tmp_path, base_urls=[stub.base_url], served_name=stub.served_name)
        monkeypatch.setattr(rlaif.store.Stage, "append", full_after_one)
        code, err = cli(["run", str(config), "--quiet"], capsys, monkeypatch)
        line = one_line(err)
        assert code == 3 and "No space left on device" in line and "free some space" in line, err
        manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
        assert manifest["status"] == "failed" and "No space left" in manifest["error"]
        monkeypatch.setattr(rlaif.store.Stage, "append", real_append)
        code, err = cli(["run", str(config), "--quiet"], capsys, monkeypatch)
    assert code == 0, err
    assert json.loads((tmp_path / "run" / "manifest.json").read_text())["status"] == "done"


def test_a_server_that_is_not_vllm_marks_the_run_failed_with_the_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with StubServer() as stub:
        stub.mode = "html"
        config = run_config(
            tmp_path, base_urls=[stub.base_url], served_name=stub.served_name, unreachable_after=1
        )
        code, err = cli(["run", str(config), "--quiet"], capsys, monkeypatch)
    line = one_line(err)
    assert code == 3 and "did not answer like an OpenAI-compatible server" in line, err
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["status"] == "failed" and "OpenAI-compatible" in manifest["error"]


# --- damaged and mis-encoded files ---------------------------------------------------------------


@pytest.mark.parametrize("damage", ["truncated arrow", "broken state.json"])
def test_a_damaged_export_is_one_line_saying_re_export(
    tmp_path: Path, damage: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from datasets import Dataset

    folder = tmp_path / "run" / "export" / "pairs"
    answer = [{"role": "assistant", "content": "a"}]
    rows = [{"prompt": [{"role": "user", "content": f"q{i}"}], "chosen": answer, "rejected": answer,
             "source": "check", "p_chosen": 1.0} for i in range(200)]  # fmt: skip
    Dataset.from_list(rows).save_to_disk(str(folder))
    if damage == "truncated arrow":
        (arrow,) = folder.glob("*.arrow")
        arrow.write_bytes(arrow.read_bytes()[: arrow.stat().st_size // 2])
    else:
        (folder / "state.json").write_text("{")
    config = run_config(tmp_path, base_urls=["http://127.0.0.1:9/v1"])
    code, err = cli(["train", "dpo", str(config), "--quiet"], capsys, monkeypatch)
    line = one_line(err)
    assert code == 2 and str(folder) in line and "re-export" in line, err


def test_a_review_csv_saved_in_cp1252_names_the_line_and_column(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "run").mkdir()
    batch = tmp_path / "batch.csv"
    batch.write_bytes(
        "batch_id,pair_id,verdict,note\nb1,p1,first,ok\nb1,p2,second,très bien\n".encode("cp1252")
    )
    code, err = cli(["review", "import", str(tmp_path / "run"), str(batch)], capsys, monkeypatch)
    line = one_line(err)
    assert code == 2 and f"{batch}:3:" in line and "column 16" in line and "0xe8" in line, err
    assert "CSV UTF-8" in line


@pytest.mark.parametrize("line_number", [1, 4])
def test_a_non_utf8_prompt_file_names_the_line_and_column(
    tmp_path: Path, line_number: int, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The decoder reads in chunks; the message names the line and column, not an offset in a chunk."""
    prompts = tmp_path / "prompts.jsonl"
    good = [json.dumps({"prompt": f"question {i} " + "x" * 5000}).encode() for i in range(6)]
    good[line_number - 1] = '{"prompt": "café"}'.encode("latin-1")
    prompts.write_bytes(b"\n".join(good) + b"\n")
    config = run_config(tmp_path, base_urls=["http://127.0.0.1:9/v1"])
    code, err = cli(["run", str(config), "--quiet", "--set", f"prompts.path={prompts}"], capsys, monkeypatch)
    line = one_line(err)
    assert code == 2 and f"{prompts}:{line_number}:" in line and "column 16" in line and "0xe9" in line, err


# Serial, not in the parallel unit tier: after the limited run the rerun waits ~40 s on the stub before
# it is served (3 s + 43 s measured alone; cause not found), and beside another worker on 2 busy cores
# that wait passed `unreachable_after` (60 s) once. In the integration tier it runs alone.
@pytest.mark.integration
def test_a_file_size_limit_mid_write_tears_nothing(tmp_path: Path) -> None:
    """A real limit, not a mock: `rlaif run` in a process whose files may not grow past 24 KB (ulimit -f).
    The responses file hits it in the middle of a line: one line, exit 3; the rerun without the limit
    repairs the torn tail and finishes with every record once, each a whole line."""
    import resource
    import signal
    import subprocess

    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text(
        "".join(json.dumps({"prompt": f"Question {i}: how do plants drink?"}) + "\n" for i in range(60))
    )
    limit = 24 * 1024

    def limited() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails (EFBIG), not the process
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    with StubServer() as stub:
        config = tmp_path / "run.yaml"
        config.write_text(yaml.safe_dump({
            "run_dir": str(tmp_path / "run"), "prompts": {"path": str(prompts)},
            "model": {"served_name": stub.served_name, "base_urls": [stub.base_url]},
            "revise": {"enabled": False}, "train": {"dpo": {"enabled": False}},
        }))  # fmt: skip
        command = [sys.executable, "-m", "rlaif.cli", "respond", str(config), "--quiet"]
        env = {**__import__("os").environ, "COLUMNS": "400"}
        first = subprocess.run(command, capture_output=True, text=True, preexec_fn=limited, env=env, cwd=ROOT)
        responses = tmp_path / "run" / "responses.jsonl"
        assert first.returncode == 3, first.stderr
        line = one_line(first.stderr)
        assert "File too large" in line and "ulimit -f" in line, line
        assert responses.stat().st_size == limit  # the write stopped inside a line
        assert not responses.read_bytes().endswith(b"\n")
        second = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT)
    assert second.returncode == 0, second.stderr
    ids = [json.loads(line)["id"] for line in responses.read_text().splitlines()]
    assert len(ids) == len(set(ids)) == 60 * 2


def test_one_bad_line_in_a_large_prompt_set_is_named_before_any_request(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """200,000 prompts with one broken line in the middle: the prompt set is validated as it streams in,
    so the error names that line and the server sees nothing (1M lines: measured in docs/guides/scale.md)."""
    prompts = tmp_path / "prompts.jsonl"
    bad = 100_001
    with open(prompts, "w", encoding="utf-8") as handle:
        for i in range(1, 200_001):
            handle.write(
                '{"prompt": "broken\n' if i == bad else json.dumps({"prompt": f"Question {i}?"}) + "\n"
            )
    with StubServer() as stub:
        config = tmp_path / "run.yaml"
        config.write_text(yaml.safe_dump({
            "run_dir": str(tmp_path / "run"), "prompts": {"path": str(prompts)},
            "model": {"served_name": stub.served_name, "base_urls": [stub.base_url]},
        }))  # fmt: skip
        code, err = cli(["run", str(config), "--quiet"], capsys, monkeypatch)
        assert stub.count() == 0
    line = one_line(err)
    assert code == 2 and f"prompts.jsonl:{bad}: not valid JSON" in line, line
