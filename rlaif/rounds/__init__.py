"""Rounds of the whole loop (`rlaif iterate`): each round's policy answers the next round's prompts,
its failures come back as red-team prompts, stop rules end the loop. See `rlaif.rounds.loop`."""

from rlaif.rounds.loop import iterate, round_config, round_prompts
from rlaif.rounds.reports import IterateReport, RedTeamReport, RoundReport, StopEvent

__all__ = [
    "IterateReport",
    "RedTeamReport",
    "RoundReport",
    "StopEvent",
    "iterate",
    "round_config",
    "round_prompts",
]
