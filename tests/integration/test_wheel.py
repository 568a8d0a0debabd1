"""The wheel works outside the checkout: built from the sdist, installed into a fresh venv in another folder,
run from a folder with no checkout on the path. Shipped constitutions, templates, the web reviewer's static
files and the probes all come from package data.

Python 3.11 (the lowest supported): the wheel with `--no-deps` into a venv that sees this venv's installed
packages through a `.pth` path line (its own `.pth` files, such as the editable install's, are not read,
so the checkout stays off the path; the test checks that). Python 3.13 (the highest tested): the wheel with
its own dependencies resolved by pip, without the `train` extra, so the judge-only install (no torch) is
tested too; skipped where no python3.13 is found.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from rlaif._version import DISTRIBUTION, __version__
from tests.support.review import make_pair, run_with_pairs
from tests.support.stub import StubServer

pytestmark = [pytest.mark.slow, pytest.mark.registry]

ROOT = Path(__file__).resolve().parents[2]
WHEEL_NAME = f"{DISTRIBUTION.replace('-', '_')}-{__version__}-py3-none-any.whl"
SHIPPED = {
    "prompts": sorted(p.name for p in (ROOT / "prompts").glob("*.jinja")),
    "constitution": sorted(p.name for p in (ROOT / "constitution").glob("*.yaml")),
    "static": sorted(p.name for p in (ROOT / "rlaif" / "review" / "static").iterdir()),
    "probes": sorted(p.name for p in (ROOT / "rlaif" / "train" / "probes").iterdir()),
}


def _hatchling(*args: str, cwd: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "hatchling", "build", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sdist built from the checkout, then the wheel built from that sdist (as pip would build it)."""
    out = tmp_path_factory.mktemp("dist")
    _hatchling("-t", "sdist", "-d", str(out), cwd=ROOT)
    (sdist,) = out.glob("*.tar.gz")
    assert sdist.name == f"{DISTRIBUTION.replace('-', '_')}-{__version__}.tar.gz"
    with tarfile.open(sdist) as archive:
        archive.extractall(out / "src", filter="data")
        names = archive.getnames()
    top = f"{sdist.name.removesuffix('.tar.gz')}/"
    for folder in ("prompts/", "constitution/", "rlaif/review/static/", "rlaif/train/probes/"):
        assert any(name.startswith(top + folder) for name in names), folder
    _hatchling("-t", "wheel", "-d", str(out), cwd=out / "src" / top)
    path = out / WHEEL_NAME
    with zipfile.ZipFile(path) as archive:
        files = set(archive.namelist())
    expected = {
        *(f"rlaif/_data/prompts/{name}" for name in SHIPPED["prompts"]),
        *(f"rlaif/_data/constitution/{name}" for name in SHIPPED["constitution"]),
        *(f"rlaif/review/static/{name}" for name in SHIPPED["static"]),
        *(f"rlaif/train/probes/{name}" for name in SHIPPED["probes"]),
        "rlaif/py.typed",
        "rlaif/cli/main.py",
    }
    assert expected <= files, sorted(expected - files)
    assert not any(name.startswith(("tests/", "examples/")) for name in files)
    return path


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    return {**env, "RLAIF_CACHE": str(home / "cache"), "COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"}


class Venv:
    """A venv in its own folder; commands run from `work`, a folder with no checkout in it."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.work = folder.parent / "work"
        self.work.mkdir(exist_ok=True)

    @property
    def python(self) -> str:
        return str(self.folder / "bin" / "python")

    def run(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            list(args),
            cwd=self.work,
            env=_env(self.folder.parent),
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def rlaif(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return self.run(str(self.folder / "bin" / "rlaif"), *args, timeout=timeout)

    def where(self) -> dict[str, object]:
        """Where the installed rlaif finds itself and its package data, and what is on sys.path."""
        script = (
            "import json, sys, rlaif, rlaif.templates as t, rlaif.inputs.constitution as c;"
            "from importlib import resources;"
            "print(json.dumps({'file': rlaif.__file__, 'path': sys.path, 'prompts': str(t.prompts_dir()),"
            "'harmless': str(c.find_constitution('harmless')),"
            "'static': str(resources.files('rlaif.review').joinpath('static')),"
            "'probes': str(resources.files('rlaif.train').joinpath('probes/sycophancy.jsonl')),"
            "'torch': 'torch' in sys.modules}))"
        )
        result = self.run(self.python, "-c", script)
        assert result.returncode == 0, result.stderr
        return dict(json.loads(result.stdout))


def _site_packages(venv: Path) -> Path:
    (found,) = glob.glob(str(venv / "lib" / "python3.*" / "site-packages"))
    return Path(found)


def _assert_outside_the_checkout(venv: Venv) -> None:
    where = venv.where()
    site = str(_site_packages(venv.folder))
    for key in ("file", "prompts", "harmless", "static", "probes"):
        assert str(where[key]).startswith(site), (key, where[key])
    # The one entry allowed under the checkout is the dependencies' site-packages, when the checkout's own
    # venv lies inside it (as `make install` puts it): added as a plain path, its .pth files (the
    # editable install's among them) are never read.
    deps = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    paths = [str(entry) for entry in where["path"]]  # type: ignore[union-attr]
    assert not any(entry.startswith(str(ROOT)) and entry not in deps for entry in paths), paths
    assert sorted(os.listdir(str(where["prompts"]))) == SHIPPED["prompts"]
    for name in SHIPPED["prompts"]:
        assert (Path(str(where["prompts"])) / name).read_bytes() == (ROOT / "prompts" / name).read_bytes()
    assert where["torch"] is False  # importing rlaif imports no torch


def _check_constitution_commands(venv: Venv) -> None:
    result = venv.rlaif("constitution", "validate", "harmless")
    assert result.returncode == 0, result.stderr
    assert "harmless v1" in result.stdout and "ok: 16 principles" in result.stdout
    result = venv.rlaif(
        "constitution", "preview", "harmless", "-p", "harm-general", "--tokenizer", "estimate"
    )
    assert result.returncode == 0, result.stderr
    for part in ("critique:", "revision:", "judge", "critique request"):
        assert part in result.stdout, part


def _stages_on_the_stub(venv: Venv, *stages: str) -> list[dict[str, object]]:
    """The bundled quickstart's first stage (respond), and any `stages` after it, their model a stub server
    in this process; the responses."""
    with StubServer() as stub:
        config = yaml.safe_load((ROOT / "examples" / "quickstart.yaml").read_text())
        shutil.copy(ROOT / "examples" / "concise_train.jsonl", venv.work / "concise_train.jsonl")
        config["prompts"]["limit"] = 2
        config["model"].update(base_urls=[stub.base_url], served_name=stub.served_name)
        (venv.work / "quickstart.yaml").write_text(yaml.safe_dump(config))
        for stage in ("respond", *stages):
            result = venv.rlaif(stage, "quickstart.yaml", "--quiet")
            if stage == "export" and result.returncode == 1:
                # The stub judge answers A in both orders: no consistent pair, so the pairs gate refuses.
                assert "error: the export in runs/quickstart/export is empty" in result.stderr, result.stderr
                continue
            assert result.returncode == 0, stage + ": " + result.stdout + result.stderr
    rows = [
        json.loads(line) for line in (venv.work / "runs/quickstart/responses.jsonl").read_text().splitlines()
    ]
    assert len(rows) == 2 * config["generation"]["samples_per_prompt"]
    manifest = json.loads((venv.work / "runs/quickstart/manifest.json").read_text())
    assert manifest["versions"][DISTRIBUTION] == __version__
    return rows


@contextlib.contextmanager
def _review_server(venv: Venv) -> Iterator[str]:
    run_dir = venv.work / "review-run"
    with run_with_pairs(run_dir, [make_pair(i) for i in range(3)]) as run:
        run.save_manifest(config={"seed": 0, "review": {"sample": {"size": 3}}})
    process = subprocess.Popen(
        [str(venv.folder / "bin" / "rlaif"), "review", "serve", str(run_dir), "--reviewer", "alice"],
        cwd=venv.work, env=_env(venv.folder.parent), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        printed = []
        for line in process.stdout:
            printed.append(line)
            if line.startswith("http://127.0.0.1:"):
                yield line.strip()
                break
        else:
            raise AssertionError(f"review serve printed no address: {''.join(printed)}")
    finally:
        process.terminate()
        process.wait(timeout=30)


def _check_review_page(venv: Venv) -> None:
    with _review_server(venv) as address, httpx.Client(follow_redirects=True, timeout=30) as client:
        page = client.get(address)
        assert page.status_code == 200
        assert page.content == (ROOT / "rlaif/review/static/review.html").read_bytes()
        base = address.split("/?")[0]
        for name in SHIPPED["static"]:
            if name != "review.html":
                asset = client.get(f"{base}/{name}")
                assert (
                    asset.status_code == 200
                    and asset.content == (ROOT / "rlaif/review/static" / name).read_bytes()
                )
        state = client.get(f"{base}/api/state").json()["state"]
        assert state["total"] == 3, state


def test_the_wheel_outside_the_checkout_on_python_311(wheel: Path, tmp_path: Path) -> None:
    """Lowest supported Python: the constitution commands, the quickstart's respond stage on a stub server,
    the web reviewer's page and its static files, the templates and the probes, all from the installed
    wheel."""
    venv = Venv(tmp_path / "venv")
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", "--without-pip", str(venv.folder)], check=True, timeout=120)
    installed = subprocess.run(
        [sys.executable, "-m", "pip", "--python", venv.python, "install", "-q", "--no-deps", "--no-index",
         str(wheel)], capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert installed.returncode == 0, installed.stderr
    # This venv's packages (torch, vLLM, ...) without its .pth files: the editable checkout is not among them.
    deps = sorted({sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]})
    (_site_packages(venv.folder) / "zz_deps.pth").write_text("\n".join(deps) + "\n")
    _assert_outside_the_checkout(venv)
    _check_constitution_commands(venv)
    _stages_on_the_stub(venv)
    _check_review_page(venv)
    probes = venv.run(
        venv.python, "-c",
        "from rlaif.train.monitors import load_probes; print(len(load_probes()))",
    )  # fmt: skip
    assert probes.returncode == 0 and int(probes.stdout) > 0, probes.stderr


def _python313() -> str | None:
    """A working python3.13 (pyenv's shim exists but fails where 3.13 is not the selected version)."""
    candidates = sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.13*/bin/python3.13")))
    candidates += [found] if (found := shutil.which("python3.13")) else []
    for candidate in candidates:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            if subprocess.run([candidate, "-c", "pass"], capture_output=True, timeout=60).returncode == 0:
                return candidate
    return None


def test_the_wheel_judge_only_on_python_313_without_torch(wheel: Path, tmp_path: Path) -> None:
    """Highest tested Python, and the judge-only install: pip resolves the wheel's own dependencies (no
    `train` extra, so no torch); the package byte-compiles; the constitution commands, the respond, judge
    and export stages and the web reviewer run; a training command says in one line which extra it needs."""
    python = _python313()
    if python is None:
        pytest.skip("no python3.13 on this machine")
    venv = Venv(tmp_path / "venv")
    subprocess.run([python, "-m", "venv", str(venv.folder)], check=True, timeout=300)
    installed = venv.run(venv.python, "-m", "pip", "install", "-q", str(wheel), timeout=900)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    for heavy in ("torch", "transformers", "trl", "vllm"):
        probe = venv.run(
            venv.python, "-c", f"import importlib.util as u; print(u.find_spec('{heavy}') is None)"
        )
        assert probe.stdout.strip() == "True", f"{heavy} was installed without the train extra"
    compiled = venv.run(venv.python, "-m", "compileall", "-q", str(_site_packages(venv.folder) / "rlaif"))
    assert compiled.returncode == 0, compiled.stdout + compiled.stderr
    _assert_outside_the_checkout(venv)
    _check_constitution_commands(venv)
    _stages_on_the_stub(venv, "judge", "export")  # generate, judge and export: no torch needed
    export = venv.work / "runs/quickstart/export"
    assert (export / "README.md").is_file(), sorted(export.rglob("*"))
    assert DISTRIBUTION in (export / "README.md").read_text()  # the card names the distribution
    _check_review_page(venv)
    trained = venv.rlaif("train", "dpo", "quickstart.yaml")
    assert trained.returncode == 3, trained.stdout + trained.stderr
    (line,) = trained.stderr.strip().splitlines()
    assert line.startswith("error: ") and "not installed" in line and f"'{DISTRIBUTION}[train]'" in line, line
