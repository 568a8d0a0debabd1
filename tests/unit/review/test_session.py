"""Sampling, the answer order, decisions and review sessions, and Python callables as reviewers."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from rlaif.config import ReviewSampleConfig
from rlaif.errors import ConfigError, ReviewError
from rlaif.records import ReviewAnswer, ReviewDecision
from rlaif.review.hook import load_hook, run_hook
from rlaif.review.sample import allocate, sample_pairs
from rlaif.review.session import (
    ReviewSession,
    consensus,
    current_decisions,
    review_settings,
    sampled_pairs,
    shown_first,
    to_pair_verdict,
)
from rlaif.store import RunDir
from tests.support.review import decision, make_pair, make_pairs, run_with_pairs, settings

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


def sample(pairs, seed=0, **config):  # type: ignore[no-untyped-def]
    return sample_pairs(pairs, ReviewSampleConfig(**config), seed=seed)


# --- sampling ------------------------------------------------------------------------------------


def test_count_fraction_and_small_pools() -> None:
    pairs = make_pairs(40)
    assert len(sample(pairs, size=10)) == 10
    assert len(sample(pairs, fraction=0.26)) == 11  # rounded up
    assert len(sample(pairs, size=100)) == 40
    assert sample([], size=5) == []


def test_uniform_is_seeded_and_stable_when_pairs_are_added() -> None:
    pairs = make_pairs(60)
    first = [p.id for p in sample(pairs, seed=1, size=10)]
    assert first == [p.id for p in sample(list(reversed(pairs)), seed=1, size=10)]
    assert first != [p.id for p in sample(pairs, seed=2, size=10)]
    more = pairs + [make_pair(1000 + i) for i in range(20)]
    grown = {p.id for p in sample(more, seed=1, size=10)}
    assert grown <= set(first) | {p.id for p in more[60:]}  # old picks leave only for new ones


def test_stratified_covers_every_principle_in_proportion() -> None:
    pairs = [make_pair(i, principle="common") for i in range(80)]
    pairs += [make_pair(100 + i, principle="rare") for i in range(20)]
    pairs += [make_pair(200, principle="once")]
    picked = Counter(p.principle_ids[0] for p in sample(pairs, size=11, strategy="stratified"))
    assert picked == {"common": 8, "rare": 2, "once": 1}
    uniform = Counter(p.principle_ids[0] for p in sample(pairs, size=3, strategy="uniform", seed=4))
    assert sum(uniform.values()) == 3


def test_allocate_with_more_strata_than_draws() -> None:
    alloc = allocate({"a": 5, "b": 5, "c": 5, "d": 5}, 2, seed=0)
    assert sorted(alloc.values()) == [0, 0, 1, 1]
    assert allocate({"a": 2, "b": 1}, 10, seed=0) == {"a": 2, "b": 1}


def test_lowest_confidence_and_inconsistent_first() -> None:
    pairs = [make_pair(i, score=s) for i, s in enumerate([0.9, 0.55, 0.7, 0.51, 1.0])]
    assert [p.score for p in sample(pairs, size=3, strategy="lowest_confidence")] == [0.51, 0.55, 0.7]
    flagged = [make_pair(i, consistent=i not in (3, 7)) for i in range(10)]
    got = sample(flagged, size=4, strategy="inconsistent_first")
    assert {p.id for p in got[:2]} == {"pair-0003", "pair-0007"}
    assert all(p.consistent for p in got[2:])


def test_sources_filter() -> None:
    pairs = [make_pair(i, source="revision" if i % 2 else "judge") for i in range(10)]
    assert {p.source for p in sample(pairs, size=10, sources=["revision"])} == {"revision"}


# --- order and verdicts -------------------------------------------------------------------------------


def test_shown_order_is_seeded_balanced_and_per_reviewer() -> None:
    ids = [f"pair-{i}" for i in range(400)]
    alice = [shown_first(i, reviewer="alice", seed=0) for i in ids]
    assert alice == [shown_first(i, reviewer="alice", seed=0) for i in ids]
    assert 150 < alice.count("chosen") < 250
    assert alice != [shown_first(i, reviewer="bob", seed=0) for i in ids]


@pytest.mark.parametrize(
    ("answer", "first", "verdict"),
    [
        ("first", "chosen", "chosen"),
        ("first", "rejected", "rejected"),
        ("second", "chosen", "rejected"),
        ("second", "rejected", "chosen"),
        ("tie", "rejected", "tie"),
        ("flag", "chosen", "flag"),
    ],
)
def test_positional_answers_map_to_the_pair_frame(answer: str, first: str, verdict: str) -> None:
    assert to_pair_verdict(answer, first) == verdict  # type: ignore[arg-type]


def test_latest_decision_wins_and_withdrawals_remove_it() -> None:
    a, b = make_pair(1), make_pair(2)
    history = [
        decision(a, "chosen"),
        decision(a, "rejected"),
        decision(b, "tie"),
        decision(b, "tie", withdrawn=True),
        decision(b, "flag", reviewer="bob"),
    ]
    standing = current_decisions(history)
    assert standing["pair-0001"]["alice"].verdict == "rejected"
    assert set(standing["pair-0002"]) == {"bob"}
    assert len({d.id for d in history}) == len(history)  # every act its own record


def test_consensus() -> None:
    p = make_pair(1)
    assert consensus([]) is None
    assert consensus([decision(p, "rejected")]) == "rejected"
    assert consensus([decision(p, "chosen"), decision(p, "flag", "bob")]) == "flag"
    assert (
        consensus([decision(p, "chosen"), decision(p, "chosen", "b"), decision(p, "rejected", "c")])
        == "chosen"
    )
    assert consensus([decision(p, "chosen"), decision(p, "rejected", "bob")]) == "tie"


# --- sessions ---------------------------------------------------------------------------------------


def test_session_decides_in_the_pair_frame_and_resumes(tmp_path: Path) -> None:
    pairs = make_pairs(6)
    with run_with_pairs(tmp_path, pairs) as run:
        session = ReviewSession(run, pairs, settings(), via="test")
        assert session.total == 6 and session.done == 0
        item = session.next_item()
        assert item is not None
        pair = next(p for p in pairs if p.id == item.pair_id)
        expected = "chosen" if item.first == pair.chosen else "rejected"
        stored = session.decide(ReviewAnswer(pair_id=item.pair_id, verdict="first", note="ok"))
        assert (stored.verdict, stored.note, stored.reviewer, stored.via) == (expected, "ok", "alice", "test")
        assert stored.shown_first == expected and stored.principle_ids == pair.principle_ids
        assert item.ai_preferred is None and item.ai_probability is None  # hidden by default
        session.skip(session.pending()[0].pair_id)
        assert len(session.pending()) == 4
    with RunDir(tmp_path) as run:
        again = ReviewSession(run, pairs, settings(), via="test")
        assert again.done == 1 and len(again.pending()) == 5  # skips do not outlive the session
        assert item.pair_id not in {i.pair_id for i in again.pending()}
        other = ReviewSession(run, pairs, settings("bob"), via="test")
        assert len(other.pending()) == 6


def test_undo_withdraws_and_shows_the_pair_again(tmp_path: Path) -> None:
    pairs = make_pairs(3)
    with run_with_pairs(tmp_path, pairs) as run:
        session = ReviewSession(run, pairs, settings(), via="test")
        assert session.undo() is None
        first, second = session.pending()[:2]
        session.decide(ReviewAnswer(pair_id=first.pair_id, verdict="tie"))
        session.decide(ReviewAnswer(pair_id=second.pair_id, verdict="flag"))
        back = session.undo()
        assert back is not None and back.pair_id == second.pair_id
        assert session.next_item() == back
        records = list(run.stage("reviews", ReviewDecision))
        assert [r.withdrawn for r in records] == [False, False, True]
        assert set(current_decisions(records)) == {first.pair_id}


def test_ai_verdict_shown_only_when_configured(tmp_path: Path) -> None:
    pairs = [make_pair(1, score=0.83)]
    with run_with_pairs(tmp_path, pairs) as run:
        session = ReviewSession(run, pairs, settings(show_ai_verdict=True), via="test")
        item = session.next_item()
        assert item is not None and item.ai_probability == 0.83
        assert (item.first if item.ai_preferred == "first" else item.second) == pairs[0].chosen
        assert session.decide(ReviewAnswer(pair_id=item.pair_id, verdict="tie")).ai_verdict_shown


def test_review_settings_from_manifest_and_defaults(tmp_path: Path) -> None:
    with RunDir(tmp_path) as run:
        run.save_manifest(config={"seed": 7, "review": {"reviewer": "carol", "sample": {"size": 3}}})
        resolved = review_settings(run)
        assert (resolved.seed, resolved.reviewer, resolved.config.sample.size) == (7, "carol", 3)
        assert review_settings(run, reviewer="dan").reviewer == "dan"
        run.save_manifest(config={"seed": 7, "review": {"sample": {"size": -1}}})
        with pytest.raises(ConfigError, match="manifest.json"):
            review_settings(run)


# --- hooks ---------------------------------------------------------------------------------------------


def test_load_hook_by_module_and_by_file(tmp_path: Path) -> None:
    (tmp_path / "my_reviewers.py").write_text("def always_tie(items):\n    return []\n")
    assert load_hook("my_reviewers:always_tie", base_dir=tmp_path).__name__ == "always_tie"
    assert load_hook("my_reviewers.py:always_tie", base_dir=tmp_path).__name__ == "always_tie"
    with pytest.raises(ReviewError, match="cannot import"):
        load_hook("no_such_module_here:f", base_dir=tmp_path)
    with pytest.raises(ReviewError, match="no attribute"):
        load_hook("my_reviewers:missing", base_dir=tmp_path)
    (tmp_path / "not_callable.py").write_text("value = 3\n")
    with pytest.raises(ReviewError, match="is a int, not a function"):
        load_hook("not_callable.py:value", base_dir=tmp_path)


def test_run_hook_stores_answers_in_batches(tmp_path: Path) -> None:
    pairs = make_pairs(7)
    batches: list[int] = []

    def hook(items):  # type: ignore[no-untyped-def]
        batches.append(len(items))
        # dicts work too; the last item of each batch is left unanswered (skipped this run)
        return [{"pair_id": i.pair_id, "verdict": "first", "reviewer": "bot"} for i in items[:-1]]

    with run_with_pairs(tmp_path, pairs) as run:
        session = ReviewSession(run, pairs, settings("bot"), via="hook")
        assert run_hook(session, hook, batch_size=3) == 4
        assert batches == [3, 3, 1]
        stored = list(run.stage("reviews", ReviewDecision))
        assert {d.reviewer for d in stored} == {"bot"} and len(session.skipped) == 3


def test_async_hook_and_bad_answers(tmp_path: Path) -> None:
    pairs = make_pairs(2)

    async def hook(items):  # type: ignore[no-untyped-def]
        return [ReviewAnswer(pair_id=i.pair_id, verdict="tie") for i in items]

    with run_with_pairs(tmp_path, pairs) as run:
        assert run_hook(ReviewSession(run, pairs, settings(), via="hook"), hook) == 2
        session = ReviewSession(run, pairs, settings("bob"), via="hook")
        with pytest.raises(ReviewError, match="not in its batch"):
            run_hook(session, lambda items: [{"pair_id": "elsewhere", "verdict": "tie"}])
        with pytest.raises(ReviewError, match="verdict"):
            run_hook(session, lambda items: [{"pair_id": items[0].pair_id, "verdict": "maybe"}])


def test_the_example_hook(tmp_path: Path) -> None:
    pairs = [
        make_pair(1, chosen="short", rejected="a much longer answer"),
        make_pair(2, chosen="", rejected="something"),
        make_pair(3, chosen="same", rejected="size"),
    ]
    hook = load_hook("review_callback.py:review", base_dir=EXAMPLES)
    with run_with_pairs(tmp_path, pairs) as run:
        run_hook(ReviewSession(run, pairs, settings("example"), via="hook"), hook)
        verdicts = {
            pid: by["example"].verdict
            for pid, by in current_decisions(run.stage("reviews", ReviewDecision)).items()
        }
    assert verdicts == {"pair-0001": "chosen", "pair-0002": "flag", "pair-0003": "tie"}


def test_pairs_the_filters_dropped_are_not_sampled_for_review(tmp_path: Path) -> None:
    """People's time goes to pairs that can reach training, not to candidates the filters dropped."""
    pairs = make_pairs(6)
    run = run_with_pairs(tmp_path / "run", pairs)
    dropped = pairs[:4]
    run.layout.export.mkdir(parents=True)
    (run.layout.export / "dropped.jsonl").write_text(
        "".join(json.dumps({"pair_id": p.id, "reason": "judge_inconsistent"}) + "\n" for p in dropped)
    )
    sample = sampled_pairs(run, settings(sample={"size": 10}))
    assert {p.id for p in sample} == {p.id for p in pairs[4:]}
    (run.layout.export / "dropped.jsonl").write_text(
        "".join(json.dumps({"pair_id": p.id, "reason": "judge_inconsistent"}) + "\n" for p in pairs)
    )
    with pytest.raises(ReviewError, match="dropped by the quality filters"):
        sampled_pairs(run, settings())


# --- several reviewers at once ---------------------------------------------------------------------------


def test_every_reviewer_gets_the_same_sample_in_an_order_of_their_own(tmp_path: Path) -> None:
    run = run_with_pairs(tmp_path / "run", make_pairs(40))
    order = {
        name: [p.id for p in sampled_pairs(run, settings(name, sample={"size": 12}))]
        for name in ("alice", "bob")
    }
    assert set(order["alice"]) == set(order["bob"]) and len(order["alice"]) == 12  # overlapping verdicts
    assert order["alice"] != order["bob"]
    assert order["alice"] == [p.id for p in sampled_pairs(run, settings("alice", sample={"size": 12}))]
    # Where the order is the point (least confident first), everyone keeps it.
    lowest = {"size": 12, "strategy": "lowest_confidence"}
    ranked = [p.id for p in sampled_pairs(run, settings("alice", sample=lowest))]
    assert ranked == [p.id for p in sampled_pairs(run, settings("bob", sample=lowest))]
    scores = {p.id: p.score for p in make_pairs(40)}
    assert [scores[i] for i in ranked] == sorted(scores[i] for i in ranked)
    run.close()


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("", "is empty"),
        ("   ", "is empty"),
        ("../bob", "'/'"),
        ("a\\b", "'\\\\'"),
        ("alice\n", "has spaces at an end"),
        ("al\x00ice", "'\\x00'"),
        ("..", "is a path"),
        ("x" * 101, "at most 100"),
    ],
)
def test_a_reviewer_name_with_path_characters_or_none_is_refused(tmp_path: Path, name: str, why: str) -> None:
    with RunDir(tmp_path) as run:
        with pytest.raises(ConfigError, match="--reviewer") as info:
            review_settings(run, reviewer=name)
        assert why in str(info.value) and "\n" not in str(info.value).strip()
        run.save_manifest(config={"review": {"reviewer": name}})
        with pytest.raises(ConfigError, match="review") as saved:
            review_settings(run)
        assert why in str(saved.value)
    for fine in ("alice", "Zoë Müller", "a.b@lab.org", "team-2_x"):
        with RunDir(tmp_path) as run:
            run.save_manifest(config={"review": {"reviewer": fine}})
            assert review_settings(run).reviewer == fine
            assert review_settings(run, reviewer=fine).reviewer == fine


def test_a_hook_answer_under_a_bad_reviewer_name_is_refused(tmp_path: Path) -> None:
    pairs = make_pairs(2)
    with run_with_pairs(tmp_path / "run", pairs) as run:
        session = ReviewSession(run, pairs, settings("alice"), via="hook")
        with pytest.raises(ReviewError, match="reviewer '../x'"):
            session.decide(ReviewAnswer(pair_id=pairs[0].id, verdict="first", reviewer="../x"))
        assert len(run.stage("reviews", ReviewDecision)) == 0


def test_checks_and_hooks_load_through_one_loader(tmp_path: Path) -> None:
    """A check's target and a hook's name are read by `rlaif.callables.load_callable`: the same module
    form, the same failure for a module that raises while it loads."""
    from rlaif.callables import load_callable
    from rlaif.inputs.constitution import import_check

    (tmp_path / "user_fns.py").write_text("def f(*a):\n    return 1.0\nvalue = 3\n")
    (tmp_path / "broken_fns.py").write_text("raise RuntimeError('boom at import')\n")
    assert import_check("user_fns:f", base_dir=tmp_path)() == 1.0
    assert load_hook("user_fns:f", base_dir=tmp_path)([]) == 1.0
    assert load_callable("user_fns.py:f", base_dir=tmp_path)() == 1.0
    with pytest.raises(ImportError, match=r"cannot import 'broken_fns' \(RuntimeError: boom at import\)"):
        import_check("broken_fns:f", base_dir=tmp_path)
    with pytest.raises(ReviewError, match=r"cannot import 'broken_fns' \(RuntimeError: boom at import\)"):
        load_hook("broken_fns:f", base_dir=tmp_path)
    with pytest.raises(TypeError, match="is a int, not a function"):
        import_check("user_fns:value", base_dir=tmp_path)
    with pytest.raises(ImportError, match="not a target"):
        load_callable("no_colon_here")
