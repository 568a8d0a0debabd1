"""Your own templates (`templates:` in the run config): checked at load, rendered by the stages, their
hashes in the record ids; without them the ids are those of the shipped templates, unchanged."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import pytest

from rlaif.backends.fake import FakeBackend
from rlaif.config import GenerationConfig, JudgeConfig, ReviseConfig, TemplatesConfig, load_config
from rlaif.errors import ConfigError, TemplateError
from rlaif.pipeline.current import iter_current
from rlaif.pipeline.judge import judge
from rlaif.pipeline.respond import respond
from rlaif.pipeline.revise import revise
from rlaif.records import (
    Constitution,
    FewShotExample,
    Judgment,
    Message,
    Principle,
    PromptRecord,
    Response,
    Revision,
    RevisionStep,
    stable_id,
)
from rlaif.store import RunDir
from rlaif.templates import SHIPPED, Templates, prompts_dir

CONSTITUTION = Constitution(
    name="t",
    system_prompt="Be careful.",
    principles=(
        Principle(
            id="kind", critique_request="CRITIQUE kind", revision_request="REVISE kind",
            judge_question="Which is kinder?",
        ),
    ),
    examples=(FewShotExample(prompt="P", response="R", critique="C", revision="F"),),
)  # fmt: skip
PROMPTS = [
    PromptRecord(id=stable_id("prompt", text=t), messages=(Message(role="user", content=t),), source="t")
    for t in ("Hi", "Bye")
]
STAGES = (("responses", Response), ("revision_steps", RevisionStep), ("revisions", Revision),
          ("judgments", Judgment))  # fmt: skip
# The ids these stages made with the shipped templates before `templates:` existed (rlaif 742b001):
# existing run directories resume only while this holds.
SHIPPED_IDS = "57e6851b53383a67"


def run_stages(run: RunDir, backend: FakeBackend, templates: Templates = SHIPPED) -> list[str]:
    """respond, revise (one round, one few-shot example) and judge; the sorted ids of every record."""
    asyncio.run(
        respond(
            backend, PROMPTS, constitution=CONSTITUTION, config=GenerationConfig(samples_per_prompt=2),
            seed=3, stage=run.stage("responses", Response), quiet=True, templates=templates,
        )
    )  # fmt: skip
    groups: dict[str, list[Response]] = {}
    for response in run.stage("responses", Response):
        groups.setdefault(response.prompt_id, []).append(response)
    groups = {k: sorted(v, key=lambda r: r.sample_index) for k, v in groups.items()}
    asyncio.run(
        revise(
            backend, PROMPTS, {k: v[0] for k, v in groups.items()}, constitution=CONSTITUTION,
            config=ReviseConfig(rounds=1, few_shot=1), seed=3,
            steps=run.stage("revision_steps", RevisionStep), revisions=run.stage("revisions", Revision),
            quiet=True, templates=templates,
        )
    )  # fmt: skip
    asyncio.run(
        judge(
            backend, PROMPTS, groups, constitution=CONSTITUTION, config=JudgeConfig(), seed=3,
            stage=run.stage("judgments", Judgment), quiet=True, templates=templates,
        )
    )  # fmt: skip
    return sorted(record.id for name, kind in STAGES for record in run.stage(name, kind))  # type: ignore[attr-defined]


def own_templates(folder: Path) -> Templates:
    shipped_judge = (prompts_dir() / "judge.jinja").read_text(encoding="utf-8")
    files = {
        "respond": "OWN SYSTEM. {{ system_prompt }}",
        "critique": "OWN CRITIQUE: {{ principle.critique_request }}",
        "revise": "OWN REVISION: {{ principle.revision_request }}",
        "judge": "OWN JUDGE.\n" + shipped_judge,
    }
    for name, text in files.items():
        (folder / f"my_{name}.jinja").write_text(text, encoding="utf-8")
    return Templates({name: folder / f"my_{name}.jinja" for name in files})


def test_the_shipped_templates_keep_the_record_ids(tmp_path: Path) -> None:
    with RunDir(tmp_path / "run") as run:
        ids = run_stages(run, FakeBackend())
    assert len(ids) == 10
    assert hashlib.sha256("\n".join(ids).encode()).hexdigest()[:16] == SHIPPED_IDS


def test_own_templates_are_what_the_model_sees_and_make_new_ids(tmp_path: Path) -> None:
    templates = own_templates(tmp_path)
    shipped_backend, own_backend = FakeBackend(), FakeBackend()
    with RunDir(tmp_path / "shipped") as run:
        shipped = run_stages(run, shipped_backend)
    with RunDir(tmp_path / "own") as run:
        own = run_stages(run, own_backend, templates)
        assert not set(own) & set(shipped)  # every record depends on a template that changed
        for name, kind in STAGES:  # today's records are the ones the own templates made
            found = list(iter_current(run, name, kind, PROMPTS, CONSTITUTION, templates=templates))
            assert found and not list(iter_current(run, name, kind, PROMPTS, CONSTITUTION))
    sent = [m["content"] for request in own_backend.requests for m in request.messages]
    assert "OWN SYSTEM. Be careful." in sent
    assert "OWN CRITIQUE: CRITIQUE kind" in sent and "OWN REVISION: REVISE kind" in sent
    assert any(text.startswith("OWN JUDGE.") and "You are a careful judge" in text for text in sent)
    assert not any("OWN" in m["content"] for r in shipped_backend.requests for m in r.messages)


def test_a_changed_template_makes_new_ids_and_the_same_one_resumes(tmp_path: Path) -> None:
    templates = own_templates(tmp_path)
    with RunDir(tmp_path / "run") as run:
        first = run_stages(run, FakeBackend(), templates)
        again = FakeBackend()
        assert run_stages(run, again, templates) == first and again.requests == []  # resumed: nothing sent
        critique = tmp_path / "my_critique.jinja"
        critique.write_text("OWN CRITIQUE, second draft: {{ principle.critique_request }}", encoding="utf-8")
        changed = run_stages(run, FakeBackend(), templates)
    assert set(first) < set(changed)  # the responses stay; new critique steps, revisions


def config_with(tmp_path: Path, templates: dict[str, str]) -> Path:
    (tmp_path / "prompts.jsonl").write_text('{"prompt": "hi"}\n', encoding="utf-8")
    lines = "".join(f"  {name}: {path}\n" for name, path in templates.items())
    path = tmp_path / "run.yaml"
    path.write_text(f"prompts: {{path: prompts.jsonl}}\ntemplates:\n{lines}", encoding="utf-8")
    return path


def test_the_config_resolves_template_paths_against_its_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "prompts_of_mine").mkdir()
    (tmp_path / "prompts_of_mine" / "j.jinja").write_text(
        "MINE " + (prompts_dir() / "judge.jinja").read_text()
    )
    monkeypatch.chdir(tmp_path.parent)  # not the config's folder
    config = load_config(config_with(tmp_path, {"judge": "prompts_of_mine/j.jinja"}))
    assert config.template_set().files == {"judge": tmp_path / "prompts_of_mine" / "j.jinja"}
    assert config.template_set().hash("judge") != SHIPPED.hash("judge")
    assert config.template_set().hash("critique") == SHIPPED.hash("critique")


def test_every_shipped_template_can_be_replaced() -> None:
    assert set(TemplatesConfig.model_fields) == {p.stem for p in prompts_dir().glob("*.jinja")}


@pytest.mark.parametrize(
    ("source", "needles"),
    [
        ("line one\n{% for x in %}\n", ("line 2", "Expected an expression")),
        ("{{ principle.critique_request }}\n{{ principle.nope }}", ("line 2", "has no attribute 'nope'")),
        ("ok\n\n{{ tone }}", ("line 3", "'tone' is undefined")),
        ("{{ principle.__class__.__mro__ }}", ("line 1", "the sandbox refused it")),
    ],
    ids=["syntax", "attribute", "variable", "sandbox"],
)
def test_a_broken_template_is_one_error_naming_the_file_and_line(
    tmp_path: Path, source: str, needles: tuple[str, ...]
) -> None:
    (tmp_path / "my_critique.jinja").write_text(source, encoding="utf-8")
    with pytest.raises(TemplateError) as info:
        load_config(config_with(tmp_path, {"critique": "my_critique.jinja"}))
    message = str(info.value)
    assert "\n" not in message and f"template {tmp_path / 'my_critique.jinja'} line" in message
    for needle in needles:
        assert needle in message


def test_a_missing_template_file_or_a_misspelt_name_names_the_config_line(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError, match=r"run\.yaml, line 3, templates\.judge: template file .*nope\.jinja not found"
    ):
        load_config(config_with(tmp_path, {"judge": "nope.jinja"}))
    with pytest.raises(ConfigError, match=r"unknown key 'critque'; did you mean 'critique'\?"):
        load_config(config_with(tmp_path, {"critque": "x.jinja"}))


def test_the_docs_example_loads_and_renders(tmp_path: Path) -> None:
    page = (Path(__file__).resolve().parents[3] / "docs/guides/generating.md").read_text(encoding="utf-8")
    section = page.split("## Your own templates", 1)[1].split("\n## ", 1)[0]
    settings = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    critique = section.split("```jinja\n", 1)[1].split("```", 1)[0]
    (tmp_path / "my_critique.jinja").write_text(critique, encoding="utf-8")
    (tmp_path / "my_judge.jinja").write_text((prompts_dir() / "judge.jinja").read_text(encoding="utf-8"))
    (tmp_path / "prompts.jsonl").write_text('{"prompt": "hi"}\n', encoding="utf-8")
    (tmp_path / "run.yaml").write_text("prompts: {path: prompts.jsonl}\n" + settings, encoding="utf-8")
    templates = load_config(tmp_path / "run.yaml").template_set()
    assert set(templates.files) == {"critique", "judge"}
    text = templates.render("critique", principle=CONSTITUTION.principles[0]).text
    assert text.startswith("Critique your last answer strictly against this principle: CRITIQUE kind\n")


def test_the_preview_and_the_judge_evaluation_use_own_templates(tmp_path: Path) -> None:
    from rlaif.authoring.preview import principle_requests
    from rlaif.evaluate.judge import judge_rows
    from rlaif.inputs.labelled import LabelledPair

    templates = own_templates(tmp_path)
    requests = principle_requests(
        CONSTITUTION, CONSTITUTION.principles[0], revise=ReviseConfig(), judge=JudgeConfig(), seed=0,
        templates=templates,
    )  # fmt: skip
    shown = {name: messages[-1]["content"] for name, messages, _ in requests}
    assert (
        shown["critique"] == "OWN CRITIQUE: CRITIQUE kind"
        and shown["revision"] == "OWN REVISION: REVISE kind"
    )
    assert shown["judge (A first)"].startswith("OWN JUDGE.")
    pair = LabelledPair(
        line=1, conversation=PROMPTS[0].messages, chosen="Hello!", rejected="Go away.", chosen_reply="Hello!",
        rejected_reply="Go away.",
    )  # fmt: skip
    backend = FakeBackend()
    rows, judgments = asyncio.run(
        judge_rows(backend, [pair], constitution=CONSTITUTION, config=JudgeConfig(), templates=templates)
    )
    assert len(judgments) == 1 and judgments[0].provenance.template_hash == templates.hash("judge")
    assert all(r.messages[0]["content"].startswith("OWN JUDGE.") for r in backend.requests)
