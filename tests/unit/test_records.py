"""Record ids, seeds and the invariants that live on the record types."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from rlaif.errors import ConstitutionError
from rlaif.records import (
    Constitution,
    CritiqueRound,
    Message,
    Principle,
    Provenance,
    Revision,
    SamplingParams,
    derive_seed,
    stable_id,
)

FIELDS = {
    "prompt_id": "pro-1",
    "sample_index": 0,
    "model": "m",
    "template_hash": "abc",
    "sampling": SamplingParams(max_tokens=64),
    "seed": 7,
}


def principle(pid: str, question: str = "Which is kinder?") -> Principle:
    return Principle(
        id=pid, critique_request="Critique it.", revision_request="Rewrite it.", judge_question=question
    )


def revision(*texts: str, original: str = "first") -> Revision:
    return Revision(
        id="rev-1",
        prompt_id="pro-1",
        response_id="res-1",
        original=original,
        rounds=tuple(CritiqueRound(principle_id="p", critique="c", revision=t) for t in texts),
        provenance=Provenance(model="m", template="t", template_hash="h"),
    )


def test_stable_id_is_deterministic_and_shaped() -> None:
    first = stable_id("response", **FIELDS)
    assert first == stable_id("response", **FIELDS)
    assert first.startswith("res-")
    assert len(first) == 4 + 16
    int(first[4:], 16)


def test_stable_id_ignores_key_order() -> None:
    reordered = dict(reversed(list(FIELDS.items())))
    assert list(reordered) != list(FIELDS)
    assert stable_id("response", **reordered) == stable_id("response", **FIELDS)
    nested_a = stable_id("x", sampling={"a": 1, "b": 2})
    nested_b = stable_id("x", sampling={"b": 2, "a": 1})
    assert nested_a == nested_b


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("prompt_id", "pro-2"),
        ("sample_index", 1),
        ("model", "other"),
        ("template_hash", "abd"),
        ("sampling", SamplingParams(max_tokens=65)),
        ("seed", 8),
    ],
)
def test_stable_id_changes_with_every_field(field: str, value: object) -> None:
    assert stable_id("response", **{**FIELDS, field: value}) != stable_id("response", **FIELDS)


def test_stable_id_depends_on_kind_and_added_fields() -> None:
    assert stable_id("response", **FIELDS) != stable_id("revision", **FIELDS)
    assert stable_id("response", **FIELDS) != stable_id("response", **FIELDS, extra=None)


def test_stable_id_refuses_unhashable_values() -> None:
    with pytest.raises(TypeError, match="cannot hash object"):
        stable_id("x", value=object())


def test_derive_seed_is_deterministic_and_31_bit() -> None:
    assert derive_seed(0, "respond:a:0") == derive_seed(0, "respond:a:0")
    seeds = {derive_seed(seed, f"key{i}") for seed in range(3) for i in range(200)}
    assert len(seeds) == 600
    assert all(0 <= s <= 2**31 - 1 for s in seeds)
    assert derive_seed(0, "k") != derive_seed(1, "k")
    assert derive_seed(0, "k") != derive_seed(0, "k2")


def test_revision_final_is_last_non_empty_revision() -> None:
    assert revision("one", "two").final == "two"
    assert revision("one", "").final == "one"
    assert revision("", "").final == "first"
    assert revision().final == "first"


def test_constitution_hash_changes_with_content() -> None:
    base = Constitution(name="c", principles=(principle("a"),))
    assert base.hash == Constitution(name="c", principles=(principle("a"),)).hash
    assert len(base.hash) == 16
    changed = [
        Constitution(name="d", principles=(principle("a"),)),
        Constitution(name="c", version="2", principles=(principle("a"),)),
        Constitution(name="c", system_prompt="Be nice.", principles=(principle("a"),)),
        Constitution(name="c", principles=(principle("a", "Which is safer?"),)),
        Constitution(name="c", principles=(principle("a"), principle("b"))),
    ]
    hashes = {c.hash for c in changed}
    assert len(hashes) == len(changed)
    assert base.hash not in hashes
    # Computed once, never stale: a copy with changes hashes its own content, and caching leaves
    # equality and the dumped fields alone.
    assert base.model_copy(update={"name": "d"}).hash == changed[0].hash
    assert base.model_copy().hash == base.hash
    assert base == Constitution(name="c", principles=(principle("a"),))
    assert "hash" not in base.model_dump()


def test_constitution_principle_lookup() -> None:
    constitution = Constitution(name="mine", principles=(principle("kind"), principle("safe")))
    assert constitution.principle("safe").id == "safe"
    with pytest.raises(ConstitutionError) as info:
        constitution.principle("honest")
    message = str(info.value)
    assert "'honest'" in message
    assert "'mine'" in message
    assert "known ids: kind, safe" in message


def test_records_are_frozen_and_strict() -> None:
    message = Message(role="user", content="hi")
    with pytest.raises(ValidationError):
        message.content = "changed"  # type: ignore[misc]
    rev = revision("one")
    with pytest.raises(ValidationError):
        rev.original = "x"  # type: ignore[misc]
    with pytest.raises(ValidationError):
        Message(role="user", content="hi", extra="no")  # type: ignore[call-arg]
    with pytest.raises(ValidationError):
        Message(role="robot", content="hi")  # type: ignore[arg-type]
    assert hash(message) == hash(Message(role="user", content="hi"))


def test_check_outcome_is_consistent() -> None:
    from rlaif.records import CheckOutcome

    assert CheckOutcome(principle_id="a", score=1.0, passed=True).status == "pass"
    assert CheckOutcome(score=0.5, passed=True).status == "pass"
    assert CheckOutcome(score=0.0, passed=False, failed=("max_words",)).status == "fail"
    assert CheckOutcome(error="python: boom").status == "check_error"
    for bad in (
        {"score": 1.0, "passed": False},
        {"score": 0.2, "passed": True},
        {"score": 1.0, "passed": True, "error": "x"},
        {"passed": None},
        {"error": "x", "passed": False},
        {"score": 1.5, "passed": True},
    ):
        with pytest.raises(ValidationError):
            CheckOutcome(**bad)  # type: ignore[arg-type]
