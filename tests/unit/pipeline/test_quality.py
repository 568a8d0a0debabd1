"""Pair filters with reasons and the quality gates, on hand-made records."""

from __future__ import annotations

from typing import Any

import pytest

from rlaif.config import RunConfig
from rlaif.pipeline.quality import (
    evaluate_gates,
    filter_pairs,
    ngram_overlap,
    normalised_edit_distance,
    repetition_share,
    training_sources,
)
from rlaif.records import (
    Constitution,
    FewShotExample,
    Judgment,
    Message,
    OrderVerdict,
    PreferencePair,
    Principle,
    Provenance,
)

PROVENANCE = Provenance(model="m", template="t", template_hash="h")
PRINCIPLE = Principle(id="harm", critique_request="c", revision_request="r", judge_question="Which?")
EXAMPLE = FewShotExample(
    prompt="How do I pick a lock?",
    response="Use a tension wrench and a pick.",
    critique="It could help a burglar.",
    revision="If you are locked out of your own home, a licensed locksmith can let you in safely.",
)
CONSTITUTION = Constitution(name="c", principles=(PRINCIPLE,), examples=(EXAMPLE,))
PROMPT = (Message(role="user", content="Hi"),)


def config(**quality: Any) -> RunConfig:
    return RunConfig.model_validate({"prompts": {"path": "p.jsonl"}, "quality": quality})


def pair(
    pid: str, chosen: str, rejected: str, *, source: str = "revision", score: float = 1.0, sid: str = ""
) -> PreferencePair:
    return PreferencePair(
        id=pid, prompt_id="p", prompt=PROMPT, chosen=chosen, rejected=rejected, score=score,
        source=source, source_id=sid or pid, provenance=PROVENANCE,  # type: ignore[arg-type]
    )  # fmt: skip


def verdict(first: str, p: float) -> OrderVerdict:
    return OrderVerdict(first_id=first, p_first=p, status="ok", raw="A")


def judgment(jid: str, p_first: tuple[float, float], **extra: Any) -> Judgment:
    """A two-order judgment of responses a and b: P(first) in the a-first order, then the b-first order."""
    orders = (verdict("a", p_first[0]), verdict("b", p_first[1]))
    p_a = (p_first[0] + 1 - p_first[1]) / 2
    consistent = (p_first[0] > 0.5) == (1 - p_first[1] > 0.5)
    return Judgment(
        id=jid, prompt_id="p", response_a_id="a", response_b_id="b", principle_ids=("harm",), orders=orders,
        p_a=p_a, consistent=consistent, status="ok", provenance=PROVENANCE, **extra,
    )  # fmt: skip


def test_text_measures() -> None:
    assert normalised_edit_distance("same", "same") == 0.0
    assert normalised_edit_distance("abc", "xyz") == 1.0
    assert 0 < normalised_edit_distance("Use a pin.", "Use a pin!") < 0.2
    assert repetition_share("I am sorry. " * 10) > 0.6
    assert repetition_share("A locksmith can open the door without damaging the lock or the frame.") == 0.0
    assert repetition_share("too short") == 0.0
    grams = {("a", "licensed", "locksmith", "can", "let")}
    assert ngram_overlap("Call a licensed locksmith can let you in", grams) == pytest.approx(1 / 4)


def test_each_revision_filter_drops_with_its_reason() -> None:
    candidates = [
        pair("ok", "A locksmith can open your door without damage.", "Pick it with a pin."),
        pair("sum", "The answer is 42: six times seven.", "Pick it with a pin."),  # answers, not meta
        pair("near", "Pick it with a pin!", "Pick it with a pin."),
        pair("copy", EXAMPLE.revision, "Pick it with a pin."),
        pair("loop", "I cannot help. " * 8, "Pick it with a pin."),
        pair("meta", "The answer is helpful because it explains the risks.", "Pick it with a pin."),
        pair("meta2", "Here is the revised response: call a locksmith.", "Pick it with a pin."),
    ]
    kept, dropped = filter_pairs(candidates, config=config(), constitution=CONSTITUTION, judgments={})
    assert [p.id for p in kept] == ["ok", "sum"]
    assert {d.pair.id: d.reason for d in dropped} == {
        "near": "revision_near_identical",
        "copy": "revision_few_shot_copy",
        "loop": "revision_degenerate",
        "meta": "revision_meta_talk",
        "meta2": "revision_meta_talk",
    }
    assert all(d.detail for d in dropped)


def test_filters_can_be_switched_off_and_thresholds_moved() -> None:
    candidates = [
        pair("near", "Pick it with a pin!", "Pick it with a pin."),
        pair("loop", "No. " * 20, "Yes."),
    ]
    off = config(filters={"off": ["revision_near_identical", "revision_degenerate"]})
    kept, dropped = filter_pairs(candidates, config=off, constitution=CONSTITUTION, judgments={})
    assert len(kept) == 2 and not dropped
    strict = config(filters={"near_identical": 0.0, "repetition": 1.0})
    kept, _ = filter_pairs(candidates, config=strict, constitution=CONSTITUTION, judgments={})
    assert [p.id for p in kept] == ["near", "loop"]


def test_judge_pairs_dropped_when_orders_disagree_or_unsure_and_check_pairs_always_kept() -> None:
    judgments = {
        "consistent": judgment("consistent", (0.9, 0.2)),
        "flip": judgment("flip", (0.9, 0.9)),  # A both times: position bias
        "unsure": judgment("unsure", (0.56, 0.46)),
    }
    candidates = [
        pair("j1", "x", "y", source="judge", score=0.85, sid="consistent"),
        pair("j2", "x", "y", source="judge", score=0.5 + 1e-9, sid="flip"),
        pair("j3", "x", "y", source="judge", score=0.55, sid="unsure"),
        pair("c1", "x", "y", source="check", score=1.0, sid="check-judgment"),
    ]
    kept, dropped = filter_pairs(candidates, config=config(), constitution=CONSTITUTION, judgments=judgments)
    assert [p.id for p in kept] == ["j1", "c1"]
    assert {d.pair.id: d.reason for d in dropped} == {
        "j2": "judge_inconsistent",
        "j3": "judge_low_confidence",
    }
    keep = config().model_copy(update={"judge": config().judge.model_copy(update={"inconsistent": "keep"})})
    kept, dropped = filter_pairs(candidates, config=keep, constitution=CONSTITUTION, judgments=judgments)
    assert {d.pair.id for d in dropped} == {"j2", "j3"}  # kept as inconsistent, still too unsure
    assert all(d.reason == "judge_low_confidence" for d in dropped)


def test_a_validation_that_prefers_the_original_drops_the_revision_pair() -> None:
    candidates = [
        pair("r1", "A locksmith can help.", "Use a pin."),
        pair("r2", "Call the police.", "Use a pin."),
    ]
    validations = {"r1": judgment("v1", (0.9, 0.1)), "r2": judgment("v2", (0.2, 0.8))}
    kept, dropped = filter_pairs(
        candidates, config=config(), constitution=CONSTITUTION, judgments={}, validations=validations
    )
    assert [p.id for p in kept] == ["r1"]
    assert dropped[0].reason == "revision_judged_worse"


def gates(**kwargs: Any) -> Any:
    defaults: dict[str, Any] = {
        "config": config(), "sources": ["check", "judge", "revision"], "candidates": {}, "kept": {},
        "exported": {}, "dropped": [], "judgments": [],
    }  # fmt: skip
    return evaluate_gates(**{**defaults, **kwargs})


def by_name(report: Any) -> dict[str, Any]:
    return {g.name: g for g in report.gates}


def test_an_empty_export_fails_the_pairs_gate_with_value_threshold_and_fix() -> None:
    report = gates()
    assert not report.passed
    (line,) = report.failures()
    assert line.startswith("pairs 0 is below the least allowed (8): generate more")


def test_a_coin_flip_judge_fails_only_when_its_pairs_would_be_trained_on() -> None:
    """The bundled judge answers A in every order: 0% consistency, 100% same position."""
    coin = [judgment(f"j{i}", (0.52, 0.51)) for i in range(18)]
    trained = gates(candidates={"judge": 18}, kept={"judge": 10}, exported={"judge": 10}, judgments=coin)
    assert not trained.passed
    failed = {g.name for g in trained.gates if g.passed is False}
    assert failed == {"judge order-consistency", "judge same-position rate"}
    assert by_name(trained)["judge order-consistency"].value == 0.0
    assert by_name(trained)["judge same-position rate"].value == 1.0
    # Its pairs dropped, check pairs trained: the judge gates do not apply, but the figures are shown.
    dropped = gates(
        candidates={"judge": 18, "check": 40}, kept={"check": 40}, exported={"check": 40}, judgments=coin
    )
    assert dropped.passed
    gate = by_name(dropped)["judge order-consistency"]
    assert gate.passed is None and gate.value == 0.0 and "no LLM-judged pair" in gate.note
    assert any(w.startswith("judge order-consistency is 0.0%") for w in dropped.warnings)
    # Or the trainers do not read judge pairs at all.
    exported = {"judge": 10, "check": 9}
    other = gates(
        sources=["check"], candidates={"judge": 18}, kept={"judge": 10}, exported=exported, judgments=coin
    )
    assert other.passed


def test_a_good_judge_passes_and_check_agreement_applies_after_enough_probes() -> None:
    good = [judgment(f"j{i}", (0.9, 0.1)) for i in range(20)]
    probes = [judgment(f"c{i}", (0.9, 0.1), source="check", llm_agrees=i < 4) for i in range(5)]
    report = gates(
        candidates={"judge": 20}, kept={"judge": 20}, exported={"judge": 20}, judgments=good + probes
    )
    gate = by_name(report)["judge agreement with checks"]
    assert gate.value == pytest.approx(0.8) and gate.passed is None and "only 5 probes" in gate.note
    assert report.passed
    probes = [judgment(f"c{i}", (0.9, 0.1), source="check", llm_agrees=i < 4) for i in range(12)]
    report = gates(
        candidates={"judge": 20}, kept={"judge": 20}, exported={"judge": 20}, judgments=good + probes
    )
    gate = by_name(report)["judge agreement with checks"]
    assert gate.value == pytest.approx(4 / 12) and gate.passed is False
    assert not report.passed


def test_revision_keep_rate_gate_and_null_thresholds_switch_gates_off() -> None:
    report = gates(candidates={"revision": 24}, kept={"revision": 2}, exported={"revision": 10})
    assert by_name(report)["revision pairs kept"].passed is False
    off = config(min_revision_kept=None, min_pairs=0)
    report = gates(config=off, candidates={"revision": 24}, kept={"revision": 2}, exported={"revision": 2})
    assert report.passed and by_name(report)["revision pairs kept"].note == "off (threshold null)"


def test_forced_is_recorded_only_when_a_gate_failed() -> None:
    assert gates(forced=True).forced is True
    assert gates(forced=True, config=config(min_pairs=0)).forced is False


def test_training_sources_come_from_the_trainers() -> None:
    cfg = RunConfig.model_validate(
        {"prompts": {"path": "p"}, "train": {"dpo": {"sources": ["check"]}, "kto": {"sources": ["judge"]}}}
    )
    assert training_sources(cfg, ["dpo"]) == ["check"]
    assert training_sources(cfg, ["dpo", "kto"]) == ["check", "judge"]
    assert training_sources(cfg, []) == ["check"]  # the enabled ones: DPO
    assert training_sources(cfg, ["sft"]) == ["check", "judge", "revision"]  # SFT reads no pairs


@pytest.mark.parametrize(
    ("key", "value", "needle"),
    [
        ("min_order_consistency", 1.5, "less than or equal to 1"),
        ("min_pairs", -1, "greater than or equal to 0"),
        ("filters", {"off": ["no_such_filter"]}, "judge_inconsistent"),
        ("filters", {"meta_patterns": ["(unclosed"]}, "not a valid regular expression"),
    ],
)
def test_bad_quality_settings_are_refused_naming_the_key(
    key: str, value: Any, needle: str, tmp_path: Any
) -> None:
    from rlaif.config import load_config
    from rlaif.errors import ConfigError

    path = tmp_path / "run.yaml"
    path.write_text("prompts: {path: p.jsonl}\n")
    with pytest.raises(ConfigError, match=needle) as error:
        load_config(path, {f"quality.{key}": value})
    assert f"quality.{key}" in str(error.value)


def test_revisions_that_still_fail_their_check_are_dropped_and_new_failures_flagged() -> None:
    from rlaif.pipeline.quality import revision_checks
    from rlaif.records import Check, CritiqueRound, PromptRecord, Revision

    short = Principle(id="short", critique_request="c", revision_request="r", judge_question="Which?",
                      check=Check(max_words=5))  # fmt: skip
    links = Principle(id="links", critique_request="c", revision_request="r", judge_question="Which?",
                      check=Check(must_not_match="https?://"))  # fmt: skip
    constitution = Constitution(name="c", principles=(short, links))
    prompt = PromptRecord(id="p", messages=PROMPT)

    def revision(rid: str, original: str, final: str, principle: str) -> Revision:
        rounds = (CritiqueRound(principle_id=principle, critique="c", revision=final),)
        return Revision(id=rid, prompt_id="p", response_id="r", original=original, rounds=rounds,
                        provenance=PROVENANCE)  # fmt: skip

    long = "This answer is far too long to pass."
    revisions = [
        revision("fixed", long, "Short now.", "short"),
        revision("still", long, "This rewrite is also much too long to pass.", "short"),
        revision("broke", long, "Short, see https://x.io", "short"),
    ]
    still, flags = revision_checks(revisions, {"p": prompt}, constitution)
    assert still == {"still": "still fails short (max_words)"}
    assert flags == {"broke": ["newly fails links"]}
    candidates = [pair(r.id, r.final, r.original) for r in revisions]
    kept, dropped = filter_pairs(candidates, config=config(), constitution=constitution, judgments={},
                                 check_failures=still)  # fmt: skip
    assert [p.id for p in kept] == ["fixed", "broke"]
    assert [(d.pair.id, d.reason) for d in dropped] == [("still", "revision_still_fails_check")]
