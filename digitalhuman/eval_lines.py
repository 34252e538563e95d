"""Held-out dialogue lines for the voice evaluation (``evaluate.voices``, ``benchmarks/bench_voice.py``).

The renderer was tuned on ``voice.persona_voice.REFERENCE_TEXT`` ("The old mill by the river ...
salted fish ...") and the tests use a few short greetings; none of those sentences is reused
here (they share only common words such as "the", "you", "three"). Keep these lines fixed:
changing one changes every figure measured on it, so add a new list (``EVAL_LINES_V2``) rather
than editing this one.

Each line is 5-20 words of game dialogue. Between them they hold questions, exclamations,
commas, a semicolon, a colon, contractions, cardinal numbers written as digits (2 to 250) and one
ordinal (``7th``): the word error rate normalises numbers on both sides (``"3"`` == ``"three"``).
Four-digit numbers, times of day, money signs and abbreviations are left out on purpose: a text
front end and an ASR judge may both be right and still write them differently.
"""

from __future__ import annotations

EVAL_LINES: tuple[str, ...] = (
    "Halt! Nobody enters the castle after dark without a written pass.",
    "I lost 3 sheep to the wolves last night. Can you help me?",
    "That sword will cost you 250 gold coins, not a copper less.",
    "Have you seen my brother? He left for the northern pass 12 days ago.",
    "Careful, stranger. The bridge collapsed in the storm, so take the ford instead.",
    "We need 40 more arrows before the raiders return at dawn.",
    "My grandmother used to say that the forest has eyes.",
    "Take this map to the captain, and don't let anyone read it!",
    "The 7th floor of the tower is sealed; only the wizard holds the key.",
    "You call that a fight? My dog bites harder than you!",
    "Three roads meet at the crossing: north to the sea, east to the hills, south to the city.",
    "Rooms are 5 silver a night, breakfast included.",
    "Why are you still here? The guards will be back any minute.",
    "I can teach you to pick locks, but it will take at least 2 weeks.",
    "Deliver these 6 letters before sunset and I'll pay you double.",
    "The king is dead, and the whole kingdom is holding its breath.",
    "Quiet now. Something is moving behind those rocks.",
    "Our village has had no rain for 90 days; the wells are nearly dry.",
    "Is it true that you defeated the dragon on the mountain?",
    "Welcome to the guild hall. Please sign your name in the book.",
    "I only sell potions to adventurers who have survived at least 10 battles.",
    "Follow the stream for 2 miles, then turn left at the broken statue.",
    "Sorry, friend, the ship to the islands already sailed this morning.",
    "Come back tomorrow; the blacksmith is sick and the forge is cold.",
)
