"""Write the course's own labelled sentiment dataset (kept for provenance; the output is shipped).

Every text is composed here from hand-written fragments (subjects, aspects, judgements, negated
forms, contrasts, full sentences) written by the course team; nothing is copied from an existing
dataset or website. A seeded `random.Random` combines the fragments, so re-running this script
writes byte-identical files:

    .venv/bin/python tools/write_dataset.py                 # into course_utils/data/
    .venv/bin/python tools/write_dataset.py --out-dir /tmp/x

Labels follow the overall verdict of the text. Negations and contrasts appear in both classes
("not bad at all" is positive, "not good at all" is negative; "X was great, but ..." is negative,
"X could have been better, but ..." is positive), so a bag of keywords is not enough to score well.

Templates alone teach a model the templates: it scored 0.99 on their test split and about 0.87 on
independently written reviews. So `sentiment.jsonl` has a second, hand-written portion
(`tools/natural_reviews.txt`, ids "nat-"): reviews where facts carry the verdict ("arrived two days
early"), negated problems, praise of a service without adjectives, complaints told as events, contrasts
with a final verdict, several sentences, slang and non-ASCII text, in 19 domains. Each of its
(domain, label) cells (60 texts) is split 44/8/8, so val and test hold natural texts too.

The script also (re)writes MANIFEST.json. A data file it does not generate (`challenge.jsonl`, the
held-out natural challenge set, written by hand) is hashed and counted when it is present in the output
folder and never modified: re-run the script after editing that file to refresh its manifest entry.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import re
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from course_utils.data import LABELS

SEED = 20240611
PER_CELL = 100  # texts per (domain, label) in the main set
SPLIT_SIZES = {"train": 70, "val": 15, "test": 15}  # per (domain, label) cell; sums to PER_CELL
OOD_PER_CELL = 40  # texts per (domain, label) in the out-of-domain set
DEFAULT_OUT_DIR = Path(__file__).resolve().parent.parent / "course_utils" / "data"
NATURAL_FILE = Path(__file__).resolve().with_name("natural_reviews.txt")
NATURAL_SPLIT_SIZES = {"train": 44, "val": 8, "test": 8}  # per (domain, label) cell of the natural portion
#: Files of the data folder that this script hashes into MANIFEST.json but never writes (hand-made).
EXTERNAL_FILES = ("challenge.jsonl",)
#: Tag codes of natural_reviews.txt; multi_sentence and non_ascii are computed, not written by hand.
#: The data card's files table lies between these markers; `write` keeps it in step with the manifest.
CARD_START, CARD_END = "<!-- manifest:start", "<!-- manifest:end -->"
TAG_CODES = {"i": "implicit", "n": "negation", "c": "contrast", "s": "slang"}
PHENOMENA = ("implicit", "negation", "contrast", "multi_sentence", "slang", "non_ascii")
#: Fields per file: the out-of-domain file keeps its original five, byte for byte.
FIELDS = {
    "sentiment.jsonl": ("id", "text", "label", "domain", "split", "phenomena"),
    "out_of_domain.jsonl": ("id", "text", "label", "domain", "split"),
}

# ---------------------------------------------------------------------------------------------
# Shared fragments
# ---------------------------------------------------------------------------------------------
OPENERS = [
    "",
    "",
    "",
    "Honestly, ",
    "To be honest, ",
    "I have to say ",
    "Overall, ",
    "In short, ",
    "Well, ",
    "Frankly, ",
    "For what it's worth, ",
    "All in all, ",
]
POS_ADJ = [
    "good",
    "great",
    "excellent",
    "fantastic",
    "superb",
    "impressive",
    "solid",
    "outstanding",
    "lovely",
    "brilliant",
    "wonderful",
]
NEG_ADJ = [
    "bad",
    "poor",
    "awful",
    "terrible",
    "disappointing",
    "mediocre",
    "weak",
    "dreadful",
    "subpar",
    "shoddy",
    "horrible",
]
POS_ADV = ["", "", "really ", "truly ", "pretty ", "absolutely ", "surprisingly ", "genuinely "]
NEG_ADV = ["", "", "really ", "truly ", "pretty ", "absolutely ", "painfully ", "utterly "]
# Negated forms that mean the opposite of their keyword: positive texts that contain "bad", "never", "no".
POS_NEGATED = [
    "Not bad at all.",
    "Never disappointed.",
    "I have no complaints whatsoever.",
    "Nothing to complain about.",
    "Couldn't have asked for more.",
    "I can't fault it.",
    "Not a single problem.",
    "It did not let me down.",
    "No regrets at all.",
    "I was never bored.",
]
# Negated forms of praise: negative texts that contain "good", "worth", "great".
NEG_NEGATED = [
    "Not worth it.",
    "Not good at all.",
    "Not worth the money.",
    "Never again.",
    "Nothing special.",
    "I would not recommend it.",
    "It did not live up to the hype.",
    "Not what I was promised.",
    "I can't say I enjoyed it.",
    "Not great, not even close.",
]
POS_CLOSERS = [
    "Highly recommended.",
    "Five stars from me.",
    "I'll be telling my friends.",
    "Ten out of ten.",
    "No complaints here.",
    "Would gladly do it again.",
    "Never disappointed.",
    "Not bad at all!",
    "Really glad I gave it a chance.",
]
NEG_CLOSERS = [
    "Avoid.",
    "Would not recommend.",
    "One star, and that is generous.",
    "Save your money.",
    "Never again.",
    "Not worth it.",
    "Deeply disappointing.",
    "Not good enough.",
    "I regret it.",
]

# ---------------------------------------------------------------------------------------------
# Per-domain fragments: subjects, a noun, aspects, positive/negative claims, full sentences
# ---------------------------------------------------------------------------------------------
DOMAINS: dict[str, dict[str, list[str]]] = {
    "films": {
        "subjects": ["this film", "the movie", "the sequel", "this documentary", "the new thriller"],
        "nouns": ["film", "movie", "sequel", "thriller"],
        "aspects": ["plot", "acting", "soundtrack", "ending", "script", "pacing", "cinematography"],
        "pos": [
            "the plot kept me guessing until the last scene",
            "the lead actor gave a career-best performance",
            "the soundtrack gave me chills",
            "the ending was genuinely moving",
            "every single shot looked beautiful",
            "the jokes actually landed",
            "the two hours flew by",
            "the dialogue felt sharp and natural",
        ],
        "neg": [
            "the plot fell apart in the second half",
            "the acting was wooden from start to finish",
            "the music drowned out half the dialogue",
            "the ending made no sense",
            "the jokes fell flat every time",
            "it dragged on for far too long",
            "the characters were paper thin",
            "the twist was obvious from the first scene",
        ],
        "pos_full": [
            "I laughed, I cried, and I want to watch it again.",
            "Easily the best film I have seen this year.",
            "A quiet little movie that stayed with me for days.",
            "Went in with low expectations and came out grinning.",
            "My whole family loved it, even my teenage son.",
            "Worth every minute of its running time.",
        ],
        "neg_full": [
            "I checked my watch at least ten times.",
            "Two hours of my life I will never get back.",
            "The trailer was better than the whole movie.",
            "We walked out halfway through.",
            "A lazy sequel that nobody asked for.",
            "I fell asleep before the second act.",
        ],
    },
    "books": {
        "subjects": ["this novel", "the book", "this memoir", "the audiobook", "the second volume"],
        "nouns": ["novel", "book", "read", "memoir"],
        "aspects": ["prose", "characters", "plot", "ending", "translation", "narration", "pacing"],
        "pos": [
            "I could not put it down",
            "the characters felt like old friends by the end",
            "the prose is clear and quietly beautiful",
            "the final chapter left me speechless",
            "I finished it in a single weekend",
            "the narrator's voice is perfect for the story",
            "every chapter ends on a hook",
            "it made me think about my own family",
        ],
        "neg": [
            "I gave up after a hundred pages",
            "the characters never came to life",
            "the prose is clumsy and full of cliches",
            "the ending was rushed and unsatisfying",
            "half the chapters could have been cut",
            "the narrator reads everything in the same flat tone",
            "the translation feels stiff and awkward",
            "the story goes nowhere for three hundred pages",
        ],
        "pos_full": [
            "I have already bought copies for two friends.",
            "One of those rare books I will reread.",
            "Finished it at two in the morning and have no regrets.",
            "A gentle, funny and wise little novel.",
            "The best memoir I have read in years.",
            "I underlined something on almost every page.",
        ],
        "neg_full": [
            "I kept waiting for something to happen.",
            "It reads like a first draft.",
            "This went straight into the charity box.",
            "I skimmed the last fifty pages just to be done with it.",
            "The blurb promised far more than the book delivers.",
            "I honestly don't understand the hype around this author.",
        ],
    },
    "restaurants": {
        "subjects": ["this restaurant", "the bistro", "the new pizza place", "this cafe", "the tasting menu"],
        "nouns": ["restaurant", "meal", "dinner", "lunch spot"],
        "aspects": ["food", "service", "pasta", "dessert", "wine list", "atmosphere", "portions"],
        "pos": [
            "the pasta tasted like it was made that morning",
            "our waiter was friendly and attentive",
            "the dessert was worth the trip on its own",
            "every dish arrived hot and beautifully plated",
            "the portions were generous for the price",
            "the staff made my mother feel like royalty",
            "the bread alone was worth coming back for",
            "the kitchen handled my allergy perfectly",
        ],
        "neg": [
            "the soup arrived cold and nobody apologised",
            "we waited an hour for our main course",
            "the steak was overcooked and chewy",
            "the bill included two dishes we never ordered",
            "the waiter ignored us for most of the evening",
            "the fish did not taste fresh",
            "the tables were sticky and the floor was dirty",
            "the portions were tiny for what they charge",
        ],
        "pos_full": [
            "We have already booked our next visit.",
            "The best curry I have eaten outside my grandmother's kitchen.",
            "Cosy room, kind staff, and a lemon tart I still dream about.",
            "Perfect spot for a birthday dinner.",
            "Our kids cleaned their plates, which never happens.",
            "Fresh, simple food cooked with real care.",
        ],
        "neg_full": [
            "I was sick the whole next day.",
            "Overpriced and underseasoned.",
            "We left hungry and forty euros poorer.",
            "The photos online look nothing like what arrived.",
            "They forgot our order twice.",
            "Loud, cramped and overpriced.",
        ],
    },
    "hotels": {
        "subjects": ["this hotel", "the resort", "our room", "the guesthouse", "the hostel"],
        "nouns": ["hotel", "stay", "room", "resort"],
        "aspects": ["room", "bed", "breakfast", "staff", "location", "pool", "shower"],
        "pos": [
            "the bed was the most comfortable I have ever slept in",
            "the staff upgraded us without being asked",
            "the breakfast buffet had something for everyone",
            "the room was spotless and quiet",
            "the view from the balcony was stunning",
            "the location was perfect for walking everywhere",
            "reception sorted out our late check-in with a smile",
            "the pool was clean and never crowded",
        ],
        "neg": [
            "the room smelled of smoke and damp",
            "the air conditioning rattled all night",
            "the shower ran cold every morning",
            "reception lost our booking and shrugged",
            "the walls were so thin we heard every word next door",
            "the breakfast was stale bread and weak coffee",
            "there was hair in the sheets when we arrived",
            "the pool was closed for our entire stay",
        ],
        "pos_full": [
            "We extended our stay by two nights.",
            "Felt like home from the moment we arrived.",
            "Best night's sleep I have had in months.",
            "Small touches everywhere, like fresh flowers and handwritten notes.",
            "We will be back next summer for sure.",
            "Great value for such a central spot.",
        ],
        "neg_full": [
            "The photos must have been taken twenty years ago.",
            "We checked out a day early.",
            "I found a cockroach in the bathroom.",
            "Noisy, dirty and absurdly expensive.",
            "Nobody answered the phone at reception all night.",
            "The worst hotel experience of my life.",
        ],
    },
    "electronics": {
        "subjects": ["this laptop", "the headset", "this phone", "the smartwatch", "the new speaker"],
        "nouns": ["gadget", "device", "laptop", "phone"],
        "aspects": ["battery", "screen", "sound", "build quality", "camera", "keyboard", "charger"],
        "pos": [
            "the battery easily lasts two full days",
            "the screen is bright and sharp even outdoors",
            "the noise cancelling blocks out my whole commute",
            "it set up in under five minutes",
            "the camera takes lovely photos at night",
            "it feels solid and well made",
            "the keyboard is a joy to type on",
            "it charges from empty in under an hour",
        ],
        "neg": [
            "the battery barely lasts half a day",
            "the screen cracked within a week",
            "the sound is tinny and distorted",
            "it overheats when I open a few tabs",
            "the bluetooth drops every few minutes",
            "the charger stopped working after a month",
            "the camera produces blurry, grainy photos",
            "the buttons already feel loose",
        ],
        "pos_full": [
            "Best money I have spent on tech in years.",
            "It just works, every single time.",
            "My old one feels like a toy in comparison.",
            "Light, fast and quiet, exactly what I needed.",
            "I bought a second one for my partner.",
            "Still going strong after a year of daily use.",
        ],
        "neg_full": [
            "It died two days after the warranty ran out.",
            "Returned it the same week.",
            "Cheap plastic that creaks when you pick it up.",
            "The update bricked it and support had no answers.",
            "Looks premium, performs like a toy.",
            "I had to reset it every single morning.",
        ],
    },
    "apps": {
        "subjects": ["this app", "the new update", "the budgeting app", "this game", "the banking app"],
        "nouns": ["app", "update", "tool"],
        "aspects": ["interface", "latest update", "notifications", "sync", "search", "dark mode", "login"],
        "pos": [
            "the interface is clean and easy to learn",
            "it syncs instantly across all my devices",
            "the latest update made everything faster",
            "it has saved me hours every week",
            "support fixed my issue within a day",
            "there are no annoying ads",
            "the free version does everything I need",
            "it has never crashed on me",
        ],
        "neg": [
            "it crashes every time I open the camera",
            "the latest update deleted all my notes",
            "it drains my battery in a couple of hours",
            "there is an ad after every single tap",
            "login fails half the time",
            "the subscription renewed without warning",
            "the search never finds what I type",
            "support never replied to my emails",
        ],
        "pos_full": [
            "Honestly the only app I open every day.",
            "Replaced three other apps on my phone.",
            "Simple, fast, and it respects my privacy.",
            "My grandmother learned it in ten minutes.",
            "Worth the small yearly fee.",
            "The developers clearly listen to feedback.",
        ],
        "neg_full": [
            "Uninstalled after one day.",
            "It wants access to my contacts for no reason.",
            "Every update makes it slower.",
            "I lost a month of data and got a canned apology.",
            "Pay to unlock features that used to be free.",
            "The app store screenshots are pure fiction.",
        ],
    },
    "travel": {
        "subjects": ["this airline", "the train journey", "the ferry", "the guided tour", "our flight"],
        "nouns": ["trip", "journey", "flight", "tour"],
        "aspects": ["crew", "seats", "boarding", "guide", "schedule", "legroom", "luggage handling"],
        "pos": [
            "we left and arrived exactly on time",
            "the crew were warm and helpful",
            "our guide knew every story behind every building",
            "boarding took less than ten minutes",
            "the seats had plenty of legroom",
            "the views from the window were breathtaking",
            "they rebooked us onto an earlier connection for free",
            "our bags arrived first on the carousel",
        ],
        "neg": [
            "the flight was delayed by six hours with no explanation",
            "they lost my luggage and never called back",
            "the seats were cramped and filthy",
            "our guide spent the whole time on his phone",
            "the train was so crowded we stood for three hours",
            "they cancelled the ferry and offered no refund",
            "boarding was pure chaos",
            "the crew were rude to an elderly passenger",
        ],
        "pos_full": [
            "The smoothest trip I have taken in years.",
            "I would book this tour again tomorrow.",
            "Every connection worked like clockwork.",
            "The highlight of our whole holiday.",
            "Comfortable, punctual and surprisingly cheap.",
            "Our kids still talk about the boat ride.",
        ],
        "neg_full": [
            "We missed our connection and slept at the airport.",
            "Six hours on the tarmac with no water.",
            "The tour was a shopping trip in disguise.",
            "I will drive next time, whatever it takes.",
            "Hidden fees at every single step.",
            "Our holiday started with a lost suitcase and ended with a cancelled flight.",
        ],
    },
    "services": {
        "subjects": [
            "this plumber",
            "the cleaning company",
            "the garage",
            "the removal firm",
            "the hairdresser",
        ],
        "nouns": ["service", "company", "firm", "job"],
        "aspects": ["quote", "communication", "workmanship", "timing", "price", "follow-up", "staff"],
        "pos": [
            "they turned up exactly when they said they would",
            "the quote was clear and they stuck to it",
            "they fixed the leak in twenty minutes",
            "they cleaned up after themselves perfectly",
            "they explained every step before starting",
            "the price was fair for the quality",
            "my car came back running better than ever",
            "my haircut turned out exactly how I asked",
        ],
        "neg": [
            "they turned up three hours late",
            "the final bill was double the quote",
            "the leak came back the very next day",
            "they left mud all over the carpet",
            "nobody answered my calls afterwards",
            "they scratched our table during the move",
            "my car came back with a new rattle",
            "the haircut looked nothing like the photo I showed",
        ],
        "pos_full": [
            "Finally, tradespeople I can trust.",
            "I have already recommended them to my neighbours.",
            "Polite, tidy and fast.",
            "They went well beyond what we paid for.",
            "The whole job was done in a single afternoon.",
            "I will be using them again without hesitation.",
        ],
        "neg_full": [
            "I had to pay someone else to fix their work.",
            "Three missed appointments in a row.",
            "They took the deposit and disappeared for a week.",
            "Rude on the phone and worse in person.",
            "Cheap quote, expensive mistakes.",
            "Still waiting for the refund they promised in May.",
        ],
    },
    "games": {
        "subjects": ["this game", "the expansion", "the board game", "the remaster", "the new puzzle game"],
        "nouns": ["game", "expansion", "puzzle game", "board game"],
        "aspects": ["gameplay", "graphics", "story", "controls", "multiplayer", "level design", "music"],
        "pos": [
            "the controls feel tight and responsive",
            "every level introduces a clever new idea",
            "the story hooked me from the first hour",
            "we played it every night for a month",
            "the art style is gorgeous",
            "the multiplayer is endlessly fun with friends",
            "the puzzles are tricky but always fair",
            "the music is stuck in my head in the best way",
        ],
        "neg": [
            "it crashes whenever I try to save",
            "the controls feel sluggish and imprecise",
            "the story is a mess of half-finished ideas",
            "the servers are down every evening",
            "every level feels like the last one",
            "it is locked behind endless microtransactions",
            "the rules are confusing and the box is missing pieces",
            "the frame rate tanks in every big fight",
        ],
        "pos_full": [
            "Sixty hours in and I still want more.",
            "Our family game night has a new favourite.",
            "A tiny studio made something truly special here.",
            "I bought it for my kids and ended up playing it myself.",
            "Easy to learn, hard to put down.",
            "The best remaster I have ever played.",
        ],
        "neg_full": [
            "Refunded after forty minutes.",
            "Pay to win, plain and simple.",
            "It feels like an early beta sold at full price.",
            "We played one round and put it back on the shelf.",
            "So many bugs I lost count.",
            "A cash grab with a famous name on the box.",
        ],
    },
    "fitness": {
        "subjects": [
            "this gym",
            "the yoga class",
            "the personal trainer",
            "the running club",
            "the spin studio",
        ],
        "nouns": ["gym", "class", "studio", "club"],
        "aspects": ["equipment", "instructor", "changing rooms", "timetable", "membership", "coaching"],
        "pos": [
            "the instructor corrected my form kindly",
            "the equipment is new and always clean",
            "I have never felt fitter",
            "the classes are fun and challenging",
            "the coaches remember everyone's name",
            "the changing rooms are spotless",
            "cancelling my membership was quick and easy",
            "my back pain has eased since I started",
        ],
        "neg": [
            "half the machines are broken",
            "the instructor ignored the beginners",
            "the changing rooms were filthy",
            "cancelling my membership took three months",
            "the classes are always overbooked",
            "the trainer pushed me into an injury",
            "the showers are cold every evening",
            "they raised the fee twice this year",
        ],
        "pos_full": [
            "The friendliest gym I have ever joined.",
            "I actually look forward to Monday mornings now.",
            "Ran my first half marathon thanks to this club.",
            "Worth every cent of the membership.",
            "Welcoming to beginners and tough enough for regulars.",
            "I leave every class smiling.",
        ],
        "neg_full": [
            "Crowded, sweaty and overpriced.",
            "I paid for a year and went twice.",
            "The sales pitch was longer than the workout.",
            "They charged me for months after I left.",
            "Nobody wiped down anything, ever.",
            "Locked into a contract I never agreed to.",
        ],
    },
}


def _cap(text: str) -> str:
    """Capitalise the first letter only (keeps "I", names and acronyms as written)."""
    return text[:1].upper() + text[1:]


def _maybe(rng: random.Random, items: list[str], prob: float) -> str:
    """Return a leading-space fragment from items with probability prob, else ""."""
    return " " + rng.choice(items) if rng.random() < prob else ""


def _was(aspect: str, suffix: str = "") -> str:
    """ "the plot was", "the seats were" (aspects ending in "s" are plural); suffix "n't" negates."""
    return f"{aspect} {'were' if aspect.endswith('s') else 'was'}{suffix}"


def _wasnt(aspect: str) -> str:
    """ "the plot wasn't", "the seats weren't"."""
    return _was(aspect, "n't")


def _a(word: str) -> str:
    """Prefix the right indefinite article ("an excellent", "a good")."""
    return ("an " if word[:1] in "aeiou" else "a ") + word


def _pair(rng: random.Random, aspects: list[str], adjectives: list[str]) -> str:
    """Two different aspects judged with two different adjectives of the same polarity."""
    (a1, a2), (j1, j2) = rng.sample(aspects, 2), rng.sample(adjectives, 2)
    return f"The {_was(a1)} {j1} and the {_was(a2)} {j2}."


def _overall(rng: random.Random, aspects: list[str], adjectives: list[str], claim: str) -> str:
    """ "The X wasn't A, but <claim>, so overall it was B." with A != B of the same polarity."""
    first, overall = rng.sample(adjectives, 2)
    return f"The {_wasnt(rng.choice(aspects))} {first}, but {claim}, so overall it was {overall}."


def _long(rng: random.Random, d: dict[str, list[str]], label: str) -> str:
    """A 25-40 word text: a conceded opposite aspect, two claims of the label's polarity, a closer."""
    pos = label == "positive"
    claims = rng.sample(d["pos" if pos else "neg"], 2)
    conceded = rng.choice(NEG_ADJ if pos else POS_ADJ)
    subject, aspect = rng.choice(d["subjects"]), _was(rng.choice(d["aspects"]))
    start = "I almost gave up on" if pos else "I wanted to love"
    lead = f"{start} {subject}, and to be fair the {aspect} {conceded}"
    closer = rng.choice(POS_CLOSERS if pos else NEG_CLOSERS)
    return f"{lead}, but {claims[0]}, and {claims[1]}. {closer}"


Template = Callable[[random.Random, dict[str, list[str]]], str]


def _positive_templates() -> list[Template]:
    """Templates whose overall verdict is positive, including negated and contrasted forms."""

    def c(d: dict[str, list[str]], rng: random.Random) -> str:
        return rng.choice(d["pos"])

    return [
        lambda r, d: (
            f"{_cap(r.choice(OPENERS) + r.choice(d['subjects']))} was {r.choice(POS_ADV)}"
            f"{r.choice(POS_ADJ)}.{_maybe(r, POS_CLOSERS, 0.4)}"
        ),
        lambda r, d: f"{_pair(r, d['aspects'], POS_ADJ)}{_maybe(r, POS_CLOSERS, 0.3)}",
        lambda r, d: _long(r, d, "positive"),
        lambda r, d: f"{_cap(r.choice(OPENERS) + c(d, r))}.{_maybe(r, POS_CLOSERS, 0.5)}",
        lambda r, d: f"{_cap(c(d, r))}, and {c(d, r)}.{_maybe(r, POS_CLOSERS, 0.3)}",
        lambda r, d: (
            f"I was worried {r.choice(d['subjects'])} would be {r.choice(NEG_ADJ)}, "
            f"but it was {r.choice(POS_ADJ)}."
        ),
        lambda r, d: (
            f"The {_was(r.choice(d['aspects']))} not {r.choice(NEG_ADJ)} at all; "
            f"if anything, {r.choice(POS_ADJ)}.{_maybe(r, POS_CLOSERS, 0.3)}"
        ),
        lambda r, d: f"{r.choice(POS_NEGATED)} {_cap(c(d, r))}.",
        lambda r, d: f"{r.choice(d['pos_full'])}{_maybe(r, POS_CLOSERS, 0.5)}",
        lambda r, d: f"Would I recommend {r.choice(d['subjects'])}? Absolutely, {c(d, r)}.",
        lambda r, d: f"The {r.choice(d['aspects'])} could have been better, but {c(d, r)}.",
        lambda r, d: f"Is {r.choice(d['subjects'])} worth it? Yes! {_cap(c(d, r))}.",
        lambda r, d: r.choice(
            [
                f"Loved {r.choice(d['subjects'])}!",
                f"What {_a(r.choice(POS_ADJ))} {r.choice(d['nouns'])}!",
                f"{_cap(r.choice(d['subjects']))}? Not bad at all!",
                f"Never disappointed by {r.choice(d['subjects'])}.",
                f"{_cap(r.choice(d['subjects']))}: simply {r.choice(POS_ADJ)}.",
            ]
        ),
        lambda r, d: f"I never expected {r.choice(d['subjects'])} to be this {r.choice(POS_ADJ)}!",
        lambda r, d: f"I didn't think I would enjoy {r.choice(d['subjects'])}, but {c(d, r)}.",
        lambda r, d: (
            f"I wanted to dislike {r.choice(d['subjects'])}, but honestly {c(d, r)}."
            f"{_maybe(r, POS_CLOSERS, 0.4)}"
        ),
        lambda r, d: _overall(r, d["aspects"], POS_ADJ, c(d, r)),
    ]


def _negative_templates() -> list[Template]:
    """Templates whose overall verdict is negative, mirroring the positive ones."""

    def c(d: dict[str, list[str]], rng: random.Random) -> str:
        return rng.choice(d["neg"])

    return [
        lambda r, d: (
            f"{_cap(r.choice(OPENERS) + r.choice(d['subjects']))} was {r.choice(NEG_ADV)}"
            f"{r.choice(NEG_ADJ)}.{_maybe(r, NEG_CLOSERS, 0.4)}"
        ),
        lambda r, d: f"{_pair(r, d['aspects'], NEG_ADJ)}{_maybe(r, NEG_CLOSERS, 0.3)}",
        lambda r, d: _long(r, d, "negative"),
        lambda r, d: f"{_cap(r.choice(OPENERS) + c(d, r))}.{_maybe(r, NEG_CLOSERS, 0.5)}",
        lambda r, d: f"{_cap(c(d, r))}, and {c(d, r)}.{_maybe(r, NEG_CLOSERS, 0.3)}",
        lambda r, d: f"I wanted to love {r.choice(d['subjects'])}, but {c(d, r)}.",
        lambda r, d: (
            f"The {_was(r.choice(d['aspects']))} not {r.choice(POS_ADJ)} at all; "
            f"if anything, {r.choice(NEG_ADJ)}.{_maybe(r, NEG_CLOSERS, 0.3)}"
        ),
        lambda r, d: f"{r.choice(NEG_NEGATED)} {_cap(c(d, r))}.",
        lambda r, d: f"{r.choice(d['neg_full'])}{_maybe(r, NEG_CLOSERS, 0.5)}",
        lambda r, d: f"Would I recommend {r.choice(d['subjects'])}? No, {c(d, r)}.",
        lambda r, d: f"The {_was(r.choice(d['aspects']))} {r.choice(POS_ADJ)}, but {c(d, r)}.",
        lambda r, d: f"Is {r.choice(d['subjects'])} worth it? Not really. {_cap(c(d, r))}.",
        lambda r, d: r.choice(
            [
                f"Hated {r.choice(d['subjects'])}.",
                f"What {_a(r.choice(NEG_ADJ))} {r.choice(d['nouns'])}.",
                f"{_cap(r.choice(d['subjects']))}? Not good at all.",
                f"{_cap(r.choice(d['subjects']))}: not worth it.",
                f"Stay away from {r.choice(d['subjects'])}.",
            ]
        ),
        lambda r, d: f"I never expected {r.choice(d['subjects'])} to be this {r.choice(NEG_ADJ)}.",
        lambda r, d: f"I really hoped {r.choice(d['subjects'])} would be {r.choice(POS_ADJ)}, but {c(d, r)}.",
        lambda r, d: (
            f"I wanted to like {r.choice(d['subjects'])}, I really did, but {c(d, r)}."
            f"{_maybe(r, NEG_CLOSERS, 0.4)}"
        ),
        lambda r, d: _overall(r, d["aspects"], NEG_ADJ, c(d, r)),
    ]


# ---------------------------------------------------------------------------------------------
# Out-of-domain fragments (for the data drift exercises): different register, same two labels
# ---------------------------------------------------------------------------------------------
TICKET_OPENERS = ["Hi team,", "Hello,", "Hi support,", "Dear support,", "", "Re: order update."]
TICKET_POS = [
    "thanks for sorting out my billing issue so quickly",
    "the replacement arrived this morning and works perfectly",
    "your agent Maria walked me through the setup step by step",
    "the refund showed up in my account within two days",
    "my account is unlocked again, thank you",
    "the technician fixed the router and explained what went wrong",
    "I just wanted to say the new self-service page is really helpful",
    "you can close this ticket, everything is working now",
    "the missing parcel turned up and the courier was lovely",
    "thank you for extending my trial without any fuss",
    "the password reset worked on the first try",
    "I appreciate the quick and honest answer",
]
TICKET_NEG = [
    "I have been charged twice for the same order and nobody has replied",
    "the password reset link has not worked for three days",
    "my parcel is marked as delivered but it never arrived",
    "this is the fourth time I am reporting the same bug",
    "the replacement you sent is broken as well",
    "I was promised a call back on Monday and nobody called",
    "my account was locked without any explanation",
    "the invoice still shows the wrong address after two corrections",
    "your chatbot keeps sending me in circles",
    "I cancelled my plan last month and you still took a payment",
    "the installer never showed up and I took a day off for it",
    "I have been on hold for over an hour",
]
TICKET_POS_END = ["Thanks!", "Much appreciated.", "Great job.", "Cheers.", ""]
TICKET_NEG_END = ["Please escalate this.", "This is unacceptable.", "I expect a refund.", "Fix this now.", ""]

SOCIAL_PREFIX = ["", "", "ok so ", "ngl ", "update: ", "not gonna lie, "]
SOCIAL_TAGS = ["", "", " #monday", " #weekend", " #commute", " #life", " #today"]
SOCIAL_POS = [
    "the barista remembered my order and drew a cat on my latte",
    "finally finished the marathon and my legs still work",
    "got the job!!! still can't believe it",
    "sunset from the office roof was unreal tonight",
    "my little sister passed her driving test first time",
    "the new bakery down the road is dangerously good",
    "train was actually early this morning, miracles happen",
    "first swim of the year and the water was perfect",
    "found twenty quid in my old jacket, best day",
    "our dog learned to high five and I am so proud",
    "the neighbours left a bag of tomatoes from their garden on our step",
    "three day weekend, sun out, nothing planned, perfect",
]
SOCIAL_NEG = [
    "spilled coffee all over my laptop five minutes before the meeting",
    "train cancelled again, third time this week",
    "stuck in traffic for two hours and missed the whole concert",
    "my phone screen cracked on literally the first day",
    "the wifi has been down since yesterday and I work from home",
    "someone stole my bike from outside the library",
    "the heating broke and it is freezing in here",
    "got soaked waiting for a bus that never came",
    "the concert was cancelled an hour before doors opened",
    "burnt the birthday cake and the shops are closed",
    "landlord just raised the rent again, brilliant, just brilliant... not",
    "woke up with a cold on the first day of my holiday",
]
SOCIAL_POS_END = ["so happy", "love it", "great start to the day", "can't stop smiling", ""]
SOCIAL_NEG_END = ["so annoyed", "worst day", "I give up", "why is it always me", ""]

HEADLINE_PLACES = [
    "Riverside",
    "Northfield",
    "Port Alder",
    "Eastbrook",
    "Kingsmere",
    "Lowden",
    "Saltmarsh",
    "Hollin Bay",
    "Westcombe",
    "Marbury",
]
HEADLINE_POS = [
    "clinic cuts waiting times by half",
    "school wins national science prize",
    "volunteers restore century-old park",
    "factory reopens, bringing 400 jobs back",
    "library sees record number of young readers",
    "new bridge opens months ahead of schedule",
    "air quality reaches best level in a decade",
    "local bakery named best in the country",
    "flood defences hold as storm passes safely",
    "charity run raises record sum for children's hospital",
]
HEADLINE_NEG = [
    "factory closure leaves 300 without work",
    "storm leaves thousands without power",
    "hospital waiting lists reach record high",
    "river pollution kills hundreds of fish",
    "bus route cut, leaving villages stranded",
    "rents jump for third year in a row",
    "fire destroys historic market hall",
    "school forced to close over unsafe roof",
    "train strike causes chaos for commuters",
    "crime rise alarms residents",
]

FEEDBACK_OPENERS = ["Quick note:", "Feedback on the sprint:", "From the team survey:", "Manager review:", ""]
FEEDBACK_POS = [
    "the new onboarding made my first week easy",
    "our team lead always makes time to answer questions",
    "the switch to flexible hours has made a real difference",
    "the project wrapped up on time and everyone pitched in",
    "I feel trusted to make decisions on my own work",
    "the training budget helped me learn a lot this year",
    "meetings are shorter and far more useful now",
    "the office move went smoothly and the new space is bright",
    "credit for the launch was shared fairly across the team",
    "my mentor has been generous with her time",
]
FEEDBACK_NEG = [
    "the deadlines keep moving and nobody explains why",
    "I have not had a one-to-one in three months",
    "the new tool slowed everyone down and nobody asked us",
    "overtime has become the norm rather than the exception",
    "decisions are made without the people who do the work",
    "the office is too cold and the laptops are ancient",
    "half the team is burnt out and it is being ignored",
    "the reorganisation was announced by email with no warning",
    "my requests for training keep getting postponed",
    "meetings take up most of the week and achieve nothing",
]
FEEDBACK_POS_END = ["Keep it up.", "Thank you.", "Really positive change.", ""]
FEEDBACK_NEG_END = ["This needs to change.", "Morale is low.", "Please act on this.", ""]


def _ood_text(domain: str, label: str, rng: random.Random) -> str:
    """Compose one out-of-domain text for (domain, label)."""
    pos = label == "positive"
    if domain == "support_tickets":
        body = rng.choice(TICKET_POS if pos else TICKET_NEG)
        end = rng.choice(TICKET_POS_END if pos else TICKET_NEG_END)
        opener = rng.choice(TICKET_OPENERS)
        body = body if opener.endswith(",") else _cap(body)
        return " ".join(p for p in (opener, body + ".", end) if p)
    if domain == "social_media":
        body = rng.choice(SOCIAL_POS if pos else SOCIAL_NEG)
        end = rng.choice(SOCIAL_POS_END if pos else SOCIAL_NEG_END)
        text = rng.choice(SOCIAL_PREFIX) + body + (f", {end}" if end else "")
        return text + rng.choice(SOCIAL_TAGS)
    if domain == "news_headlines":
        event = rng.choice(HEADLINE_POS if pos else HEADLINE_NEG)
        return f"{rng.choice(HEADLINE_PLACES)} {event}"
    if domain == "workplace_feedback":
        body = rng.choice(FEEDBACK_POS if pos else FEEDBACK_NEG)
        end = rng.choice(FEEDBACK_POS_END if pos else FEEDBACK_NEG_END)
        return " ".join(p for p in (rng.choice(FEEDBACK_OPENERS), _cap(body) + ".", end) if p)
    raise ValueError(f"unknown out-of-domain domain {domain!r}")


OOD_DOMAINS = ["support_tickets", "social_media", "news_headlines", "workplace_feedback"]


# ---------------------------------------------------------------------------------------------
# Composition, splitting and writing
# ---------------------------------------------------------------------------------------------
def _unique_texts(make: Callable[[], str], count: int, seen: set[str], what: str) -> list[str]:
    """Call make() until count texts never seen before (case-insensitive) are collected."""
    texts: list[str] = []
    for _ in range(count * 200):
        text = " ".join(make().split())
        key = text.lower()
        if key not in seen:
            seen.add(key)
            texts.append(text)
            if len(texts) == count:
                return texts
    raise RuntimeError(f"only {len(texts)} unique texts for {what}; add fragments")


def build_sentiment(rng: random.Random) -> list[dict[str, str]]:
    """Compose PER_CELL texts per (domain, label), split each cell 70/15/15 and number them."""
    templates = {"positive": _positive_templates(), "negative": _negative_templates()}
    seen: set[str] = set()
    rows: list[dict[str, str]] = []
    for domain, frags in DOMAINS.items():
        for label in LABELS:
            tpls = templates[label]

            def make(tpls: list[Template] = tpls, frags: dict[str, list[str]] = frags) -> str:
                return rng.choice(tpls)(rng, frags)

            texts = _unique_texts(make, PER_CELL, seen, f"{domain}/{label}")
            rng.shuffle(texts)
            start = 0
            for split, size in SPLIT_SIZES.items():
                rows += [
                    {"text": t, "label": label, "domain": domain, "split": split}
                    for t in texts[start : start + size]
                ]
                start += size
    rng.shuffle(rows)
    return [{"id": f"sent-{i:05d}", **row} for i, row in enumerate(rows, start=1)]


def build_out_of_domain(rng: random.Random) -> list[dict[str, str]]:
    """Compose OOD_PER_CELL texts per (out-of-domain domain, label), all in split "ood"."""
    seen: set[str] = set()
    rows: list[dict[str, str]] = []
    for domain in OOD_DOMAINS:
        for label in LABELS:

            def make(domain: str = domain, label: str = label) -> str:
                return _ood_text(domain, label, rng)

            texts = _unique_texts(make, OOD_PER_CELL, seen, f"ood {domain}/{label}")
            rows += [{"text": t, "label": label, "domain": domain, "split": "ood"} for t in texts]
    rng.shuffle(rows)
    return [{"id": f"ood-{i:05d}", **row} for i, row in enumerate(rows, start=1)]


_SENTENCE_END = re.compile(r"[.!?]+[\"”')]*\s+(?=\S)")


def _computed_tags(text: str) -> list[str]:
    """The tags a reader can check mechanically: several sentences, characters outside ASCII."""
    tags = []
    if _SENTENCE_END.search(text):
        tags.append("multi_sentence")
    if any(ord(char) > 127 for char in text):
        tags.append("non_ascii")
    return tags


def read_natural(path: Path = NATURAL_FILE) -> list[dict[str, object]]:
    """Parse natural_reviews.txt into rows with label, domain and sorted phenomena (no split yet)."""
    rows: list[dict[str, object]] = []
    domain = ""
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.startswith("# ") or line == "#":
            continue
        if line.startswith("## "):
            domain = line[3:].strip()
            continue
        head, sep, text = line.partition(" | ")
        sign, _, codes = head.partition(" ")
        if not sep or sign not in ("+", "-") or not domain or not text.strip():
            raise ValueError(f"{path.name} line {number}: expected 'LABEL TAGS | TEXT' under '## domain'")
        unknown = {c for c in codes.split(",") if c not in TAG_CODES} - {"."}
        if unknown:
            raise ValueError(f"{path.name} line {number}: unknown tag codes {sorted(unknown)}")
        tags = {TAG_CODES[c] for c in codes.split(",") if c in TAG_CODES} | set(_computed_tags(text))
        rows.append(
            {
                "text": " ".join(text.split()),
                "label": "positive" if sign == "+" else "negative",
                "domain": domain,
                "phenomena": [p for p in PHENOMENA if p in tags],
            }
        )
    return rows


def build_natural(rng: random.Random, seen: set[str]) -> list[dict[str, object]]:
    """Split every (domain, label) cell of the hand-written portion 44/8/8 and number it ("nat-")."""
    cells: dict[tuple[str, str], list[dict[str, object]]] = {}
    for row in read_natural():
        key = str(row["text"]).lower()
        if key in seen:
            raise ValueError(f"natural_reviews.txt repeats a text already in the data: {row['text']!r}")
        seen.add(key)
        cells.setdefault((str(row["domain"]), str(row["label"])), []).append(row)
    per_cell = sum(NATURAL_SPLIT_SIZES.values())
    wrong = {cell: len(rows) for cell, rows in cells.items() if len(rows) != per_cell}
    if wrong:
        raise ValueError(f"natural_reviews.txt needs {per_cell} texts per (domain, label); found {wrong}")
    rows: list[dict[str, object]] = []
    for cell in sorted(cells):
        texts = cells[cell]
        rng.shuffle(texts)
        start = 0
        for split, size in NATURAL_SPLIT_SIZES.items():
            rows += [{**row, "split": split} for row in texts[start : start + size]]
            start += size
    rng.shuffle(rows)
    return [{"id": f"nat-{i:05d}", **row} for i, row in enumerate(rows, start=1)]


def _jsonl(rows: list[dict[str, object]], fields: tuple[str, ...]) -> bytes:
    """One JSON object per line, fixed key order, UTF-8, "\\n" line endings: stable bytes."""
    lines = [json.dumps({k: row.get(k, []) for k in fields}) for row in rows]
    return ("\n".join(lines) + "\n").encode("utf-8")


def _counts(rows: list[dict[str, object]]) -> dict[str, object]:
    """Counts per split, label, domain, phenomenon and (split, label) for the manifest and the data card."""

    def tally(key: str) -> dict[str, int]:
        return dict(sorted(Counter(str(r[key]) for r in rows).items()))

    phenomena = Counter(str(p) for r in rows for p in r.get("phenomena", []))  # type: ignore[attr-defined]

    by_split_label: dict[str, dict[str, int]] = {}
    for r in rows:
        cell = by_split_label.setdefault(str(r["split"]), {label: 0 for label in LABELS})
        cell[str(r["label"])] += 1
    return {
        "by_split": tally("split"),
        "by_label": tally("label"),
        "by_domain": tally("domain"),
        "by_phenomenon": dict(sorted(phenomena.items())),
        "by_split_label": dict(sorted(by_split_label.items())),
    }


def build_main_set(rng: random.Random) -> list[dict[str, object]]:
    """The templated rows ("sent-") and the hand-written ones ("nat-"), interleaved in a fixed order."""
    templated: list[dict[str, object]] = list(build_sentiment(rng))
    seen = {str(row["text"]).lower() for row in templated}
    rows = templated + build_natural(random.Random(SEED + 1), seen)
    random.Random(SEED + 2).shuffle(rows)
    return rows


def _external_rows(path: Path) -> list[dict[str, object]]:
    """Parse a hand-made JSONL file for its manifest counts (its bytes are hashed, never rewritten)."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def write(out_dir: Path) -> dict[str, dict[str, object]]:
    """Write sentiment.jsonl, out_of_domain.jsonl and MANIFEST.json into out_dir; return the manifest.

    EXTERNAL_FILES already in out_dir are hashed and counted into the manifest, byte for byte as they are.
    """
    rng = random.Random(SEED)  # the out-of-domain texts continue the templates' random stream
    files = {
        "sentiment.jsonl": build_main_set(rng),
        "out_of_domain.jsonl": build_out_of_domain(rng),
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest: dict[str, dict[str, object]] = {}
    for name, rows in files.items():
        data = _jsonl(rows, FIELDS[name])
        (out_dir / name).write_bytes(data)
        manifest[name] = {"sha256": hashlib.sha256(data).hexdigest(), "rows": len(rows), **_counts(rows)}
    for name in EXTERNAL_FILES:
        path = out_dir / name
        if path.is_file():
            rows = _external_rows(path)
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            manifest[name] = {"sha256": digest, "rows": len(rows), **_counts(rows)}
    text = json.dumps(manifest, indent=2)
    (out_dir / "MANIFEST.json").write_bytes((text + "\n").encode("utf-8"))
    _update_data_card(out_dir / "README.md", manifest)
    return manifest


def _update_data_card(path: Path, manifest: dict[str, dict[str, object]]) -> None:
    """Rewrite the files table of the data card (between its manifest markers), if the card is there."""
    if not path.is_file():
        return
    card = path.read_text(encoding="utf-8")
    start, end = card.find(CARD_START), card.find(CARD_END)
    if start < 0 or end < start:
        raise ValueError(f"{path} has no '{CARD_START} ... {CARD_END}' section for the files table")
    rows = [f"| `{name}` | {entry['rows']:,} | `{entry['sha256']}` |" for name, entry in manifest.items()]
    table = "\n".join(["| file | rows | sha256 |", "|---|---|---|", *rows])
    head = card[: card.index("\n", start) + 1]
    path.write_text(f"{head}{table}\n{card[end:]}", encoding="utf-8")


def main() -> None:
    """Command line entry point: write the files and print their row counts and sha256s."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out-dir", type=Path, default=DEFAULT_OUT_DIR, help="folder to write into")
    args = parser.parse_args()
    for name, entry in write(args.out_dir).items():
        print(f"{name}: {entry['rows']} rows, sha256 {entry['sha256']}")


if __name__ == "__main__":
    main()
