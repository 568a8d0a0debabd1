"""The `gpu` extra resolves to current releases: pip, in a fresh venv, as a new user runs it against the
package registry (no GPU needed), picks the newest installable vLLM, the torch that vLLM pins, and keeps a
current stack (that torch and the newest transformers vLLM allows) as it is.

pip reads the machine's config files (find-links, local indexes, caps under /etc/xdg/pip) only through
`PIP_*` variables and config files, so the test runs it with `PIP_CONFIG_FILE=/dev/null` and no `PIP_*`
variables but the certificate bundle: what a user's plain pip sees. `--dry-run --report` with
`--use-feature=fast-deps` reads each wheel's metadata with HTTP range requests instead of downloading it:
the registry here serves no separate metadata files (PEP 658), and without range requests one resolution
downloads 3.3 GB of wheels (torch, CUDA libraries, vLLM); with them ~110 MB, nearly all index pages, in
~3.5 min. The newest pip is installed first: pip 23.2 stops at a pin it cannot find ("No matching
distribution found for flashinfer-python==0.7.3", vllm 0.34.0's) instead of backtracking to vllm 0.33.0.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.version import Version

pytestmark = [pytest.mark.slow, pytest.mark.registry]

ROOT = Path(__file__).resolve().parents[2]
RESOLVE_TIMEOUT = 900
MAX_DOWNLOAD = 1_000_000_000  # bytes per resolution: metadata and index pages, never the wheels


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_") and k not in ("PYTHONPATH",)}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1")
    if "PIP_CERT" in os.environ:
        env["PIP_CERT"] = os.environ["PIP_CERT"]  # the machine's CA bundle, not a package setting
    return env


class Pip:
    def __init__(self, venv: Path):
        self.venv = venv
        self.python = str(venv / "bin" / "python")

    def run(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.python, "-m", "pip", *args], env=_env(), cwd=self.venv, capture_output=True, text=True,
            timeout=timeout,
        )  # fmt: skip

    def versions(self, name: str) -> list[Version]:
        """Every version of `name` on the registry, newest first (`pip index versions`)."""
        result = self.run("index", "versions", name)
        match = re.search(r"Available versions: (.*)", result.stdout)
        return [Version(v) for v in match.group(1).split(", ")] if match else []

    def metadata(self, requirement: str) -> dict[str, object]:
        """The core metadata of the distribution `requirement` names (no dependencies, range requests)."""
        report = self.venv / "one.json"
        result = self.run(
            "install", "--dry-run", "--ignore-installed", "--no-deps", "--use-feature=fast-deps", "--report",
            str(report), requirement,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        return dict(json.loads(report.read_text())["install"][0]["metadata"])

    def start_resolution(self, name: str, *requirements: str) -> tuple[subprocess.Popen[str], Path, Path]:
        report, log = self.venv / f"{name}.json", self.venv / f"{name}.log"
        process = subprocess.Popen(
            [self.python, "-m", "pip", "-vv", "install", "--dry-run", "--ignore-installed",
             "--use-feature=fast-deps", "--report", str(report), *requirements],
            env=_env(), cwd=self.venv, stdout=log.open("w"), stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        return process, report, log


def _finish(process: subprocess.Popen[str], report: Path, log: Path) -> dict[str, dict[str, object]]:
    """The resolution's packages by name (their metadata), after checking it read metadata, not wheels."""
    try:
        process.wait(timeout=RESOLVE_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        raise
    text = log.read_text(errors="replace")
    assert process.returncode == 0, text[-3000:]
    fetched = sum(int(size) for size in re.findall(r'"GET [^"]+" 20[06] (\d+)', text))
    assert fetched < MAX_DOWNLOAD, f"the resolution fetched {fetched / 1e6:.0f} MB"
    installs = json.loads(report.read_text())["install"]
    return {str(item["metadata"]["name"]).lower(): dict(item["metadata"]) for item in installs}


def _pins(metadata: dict[str, object]) -> list[Requirement]:
    """The unconditional (or, here, true-marker) exact pins among a distribution's requirements."""
    environment = {**default_environment(), "extra": ""}
    found = []
    for line in metadata.get("requires_dist") or []:  # type: ignore[union-attr]
        requirement = Requirement(str(line))
        if requirement.marker is not None and not requirement.marker.evaluate(environment):
            continue
        if any(spec.operator == "==" for spec in requirement.specifier):
            found.append(requirement)
    return found


def _requirement(metadata: dict[str, object], name: str) -> Requirement:
    return next(
        r
        for r in (Requirement(str(line)) for line in metadata.get("requires_dist") or [])  # type: ignore[union-attr]
        if r.name.lower() == name and r.marker is None
    )


@pytest.fixture(scope="module")
def pip(tmp_path_factory: pytest.TempPathFactory) -> Pip:
    venv = tmp_path_factory.mktemp("resolve") / "venv"
    subprocess.run(["python3", "-m", "venv", str(venv)], check=True, timeout=300, env=_env())
    tool = Pip(venv)
    upgraded = tool.run("install", "-q", "--upgrade", "pip")
    assert upgraded.returncode == 0, upgraded.stderr
    return tool


def test_the_gpu_extra_picks_the_newest_vllm_and_keeps_a_current_stack(pip: Pip) -> None:
    # The newest vLLM whose exact pins the registry has (a newer one may pin a release it never got).
    skipped: dict[str, str] = {}
    for version in pip.versions("vllm")[:4]:
        metadata = pip.metadata(f"vllm=={version}")
        missing = [
            str(pin) for pin in _pins(metadata) if not any(v in pin.specifier for v in pip.versions(pin.name))
        ]
        if not missing:
            newest = metadata
            break
        skipped[str(version)] = ", ".join(missing)
    else:
        pytest.fail(f"no installable vllm among the newest four: {skipped}")
    vllm = Version(str(newest["version"]))
    torch = _requirement(newest, "torch")
    (torch_version,) = [spec.version for spec in torch.specifier if spec.operator == "=="] or [None]
    allowed = _requirement(newest, "transformers").specifier
    transformers = max(v for v in pip.versions("transformers") if v in allowed and not v.is_prerelease)
    # Both at once: a fresh venv, and a current stack given alongside (pip keeps what is installed when
    # it satisfies the requirements, so requiring it is the same question without installing gigabytes).
    fresh = pip.start_resolution("fresh", f"{ROOT}[gpu]")
    stack = [f"torch=={torch_version}"] if torch_version else []
    current = pip.start_resolution("current", f"{ROOT}[gpu]", *stack, f"transformers=={transformers}")
    chosen, kept = _finish(*fresh), _finish(*current)
    for picked in (chosen, kept):
        assert Version(str(picked["vllm"]["version"])) == vllm, (picked["vllm"]["version"], skipped)
        assert Version(str(picked["torch"]["version"])) in torch.specifier
        assert "rlaif-toolkit" in picked
    assert str(kept["transformers"]["version"]) == str(transformers)
    if torch_version:
        assert str(kept["torch"]["version"]) == torch_version
    print(
        f"vllm {vllm} (newer, uninstallable here: {skipped or 'none'}), torch {chosen['torch']['version']}, "
        f"transformers {chosen['transformers']['version']} fresh / {transformers} kept, "
        f"trl {chosen['trl']['version']}"
    )
