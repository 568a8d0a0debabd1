"""mkdocs-gen-files script: the generated pages of the site, written at build time.

- `reference/cli.md`, `reference/config.md`, `reference/reports.md` from the code (`reference.py`);
- the result tables: every `<!-- results:NAME -->` marker in a page becomes the table `results.py` makes
  from `examples/results/*.json`;
- the pictures of `examples/results/` under `assets/results/`, and the constitution format
  (`constitution/README.md`) as `reference/constitution-format.md`, so the site shows the files themselves;
- `gpu.md` while the GPU guide is not in `docs/` yet.
"""

from __future__ import annotations

import sys
from pathlib import Path

import mkdocs_gen_files

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
DOCS = ROOT / "docs"
sys.path[:0] = [str(HERE), str(ROOT)]

import reference  # noqa: E402
import results  # noqa: E402

for name, text in {
    "reference/cli.md": reference.cli_markdown(),
    "reference/config.md": reference.config_markdown(),
    "reference/reports.md": reference.reports_markdown(),
}.items():
    with mkdocs_gen_files.open(name, "w") as page:
        page.write(text)

for path in sorted(DOCS.rglob("*.md")):
    text = path.read_text(encoding="utf-8")
    if results.MARKER.search(text):
        name = path.relative_to(DOCS).as_posix()
        with mkdocs_gen_files.open(name, "w") as page:
            page.write(results.fill(text))

for picture in sorted(results.RESULTS.glob("*.png")):
    with mkdocs_gen_files.open(f"assets/results/{picture.name}", "wb") as out:
        out.write(picture.read_bytes())

constitution = (ROOT / "constitution" / "README.md").read_text(encoding="utf-8")
with mkdocs_gen_files.open("reference/constitution-format.md", "w") as page:
    page.write(
        constitution
        + "\n\n<small>This page is `constitution/README.md`, copied when the site is built.</small>\n"
    )

architecture = (ROOT / "ARCHITECTURE.md").read_text(encoding="utf-8")
with mkdocs_gen_files.open("reference/architecture.md", "w") as page:
    page.write(
        architecture + "\n\n<small>This page is `ARCHITECTURE.md`, copied when the site is built.</small>\n"
    )

if not (DOCS / "gpu.md").exists():
    with mkdocs_gen_files.open("gpu.md", "w") as page:
        page.write(
            "# GPUs\n\nThe GPU guide (LoRA, several GPUs, GPU measurements) is not in this checkout yet. "
            "Until it is, see [Scale](guides/scale.md) for serving and training on several GPUs.\n"
        )
