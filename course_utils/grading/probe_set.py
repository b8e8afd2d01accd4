"""The grader's probe texts: short reviews whose sentiment no reasonable model gets wrong.

Why the grader carries its own texts: a submission is checked on inputs it has never seen, so hard-coding
answers for the course examples does not help. They were written for the grader (not taken from the
course data) and cover the course domains with plain, unhedged verdicts; the threshold leaves room for one
or two honest mistakes of a small model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["PROBES", "PROBE_PASS_FRACTION", "Probe"]


@dataclass(frozen=True, slots=True)
class Probe:
    """A text and the label a working sentiment service must return for it."""

    text: str
    label: Literal["positive", "negative"]


#: Share of probes a submission must label correctly to pass `predict_probes`.
PROBE_PASS_FRACTION = 0.85

PROBES: tuple[Probe, ...] = (
    Probe("Absolutely wonderful film, I loved every minute of it.", "positive"),
    Probe("The hotel staff were friendly and the room was spotless.", "positive"),
    Probe("This blender is fantastic and works perfectly every morning.", "positive"),
    Probe("A brilliant novel with characters I will remember for years.", "positive"),
    Probe("Great service, fair prices, and the repair was done on time.", "positive"),
    Probe("The new update made the game even more fun. Highly recommended!", "positive"),
    Probe("Best headphones I have ever owned: clear sound and a comfortable fit.", "positive"),
    Probe("Our guide was excellent and the whole tour was a delight.", "positive"),
    Probe("The trainer was patient and encouraging, and I feel much stronger now.", "positive"),
    Probe("Delicious food, lovely atmosphere, we will definitely come back.", "positive"),
    Probe("Terrible movie, boring from start to finish.", "negative"),
    Probe("The room was dirty and the staff were rude to us.", "negative"),
    Probe("It broke after two days. A complete waste of money.", "negative"),
    Probe("The plot was dull and the writing was awful.", "negative"),
    Probe("They overcharged me and never fixed the problem. Avoid.", "negative"),
    Probe("The game crashes constantly and the controls are horrible.", "negative"),
    Probe("The battery dies within an hour and the screen flickers. Very disappointed.", "negative"),
    Probe("The worst meal I have had in years: cold, bland and overpriced.", "negative"),
    Probe("The class was chaotic and the instructor ignored everyone.", "negative"),
    Probe("Awful customer support; nobody answered my emails for weeks.", "negative"),
)
