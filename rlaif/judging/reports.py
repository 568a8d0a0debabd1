"""The reports of the judge engine: what a batch of judgments says about the judge."""

from __future__ import annotations

from pydantic import computed_field

from rlaif.reports import Report

__all__ = ["JudgeStats"]


class JudgeStats(Report):
    """Run-level judge metrics over a set of judgments."""

    judged: int = 0
    """Judgments."""
    parsed_orders: int = 0
    """Presentation orders whose verdict parsed."""
    unparsed_orders: int = 0
    """Presentation orders whose verdict did not parse (or whose request failed)."""
    both_orders: int = 0
    """Judgments with a parsed verdict in both presentation orders."""
    consistent: int = 0
    """Of those, judgments whose two orders preferred the same response."""
    same_position: int = 0
    """Judgments whose two orders both preferred the first (or both the second) position."""

    @computed_field  # type: ignore[prop-decorator]
    @property
    def consistency_rate(self) -> float | None:
        """consistent / both_orders; None without judgments in both orders."""
        return self.consistent / self.both_orders if self.both_orders else None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def same_position_rate(self) -> float | None:
        """same_position / both_orders; None without judgments in both orders."""
        return self.same_position / self.both_orders if self.both_orders else None
