"""Names as text: the normalised form used for comparisons, word counts and the dictionary check.

simplemma lemmatises and knows English words offline (its data ships in the package).
"""

from __future__ import annotations

import re
import unicodedata

import simplemma

WORD = re.compile(r"[^\W_]+(?:['’-][^\W_]+)*")
JOINERS = re.compile(r"['’-]")
LANGUAGE = "en"


def words(text: str) -> list[str]:
    """The words of a text: runs of letters or digits, apostrophes and hyphens inside a word kept."""
    return WORD.findall(unicodedata.normalize("NFKC", text))


def normalise(text: str) -> str:
    """Case-folded, punctuation and extra whitespace dropped, every word lemmatised ('Striped  Cats!': 'stripe cat')."""
    return " ".join(simplemma.lemmatize(word.casefold(), lang=LANGUAGE) for word in words(text))


def _known(word: str) -> bool:
    return word.isdigit() or simplemma.is_known(word.casefold(), lang=LANGUAGE)


def unknown_words(text: str) -> list[str]:
    """The words that are neither English (simplemma's word list) nor numbers; a word joined by a hyphen or an
    apostrophe ("well-lit", "dog's") is known when its parts are (a one-letter part such as 's counts)."""
    return [
        word
        for word in words(text)
        if not _known(word) and not all(len(part) < 2 or _known(part) for part in JOINERS.split(word))
    ]
