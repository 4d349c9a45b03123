"""Text -> descriptor changes: the sound designer's rule parser over its lexicon.

"make it much brighter, not harsh and slightly more metallic" ->
{brightness: +1.0 oct, roughness: -0.15, metallic: +0.1}. Clauses split at commas,
semicolons and conjunctions; in each, intensity words multiply the step of the next
timbre word, and a negation ("not", "less", "no") reverses its direction. Unknown
words are an error that lists the closest lexicon words, never a silent no-op.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

import yaml

from ddsp_gym.features.timbre import DESCRIPTORS


@dataclass(frozen=True)
class Lexicon:
    """The parsed lexicon file: words, intensities, negations, steps and bounds."""

    words: dict[str, tuple[str, int]]  # every accepted form, comparatives included
    base_words: frozenset[str]  # the forms the lexicon file lists (for suggestions)
    intensity: dict[str, float]
    negation: frozenset[str]
    filler: frozenset[str]
    conjunctions: frozenset[str]
    steps: dict[str, float]
    bounds: dict[str, float]
    units: dict[str, str]
    coupled: dict[str, tuple[str, ...]]


# Endings of adjectives compared with "more" (long or participle forms), not with -er.
TAKES_MORE = ("ed", "ing", "ic", "al", "ive", "ant", "less", "o", "ful", "ous", "ow")


def comparatives(word: str) -> set[str]:
    """English comparative spellings of an adjective: bright -> brighter, noisy -> noisier,
    wide -> wider, thin -> thinner (the parser also accepts the plain form). Adjectives
    that take "more" instead ("more metallic", "more sustained") get none."""
    if word.endswith(TAKES_MORE):
        return set()
    if word.endswith("e"):
        return {word + "r"}
    if len(word) > 2 and word.endswith("y") and word[-2] not in "aeiou":
        return {word[:-1] + "ier"}
    forms = {word + "er"}
    # One short vowel before one final consonant doubles it: thin -> thinner, fat -> fatter.
    if len(word) >= 3 and word[-1] not in "aeiouwxy" and word[-2] in "aeiou":
        if word[-3] not in "aeiou" and len(word) <= 4:
            forms = {word + word[-1] + "er"}
    return forms


def load_lexicon(text: str | None = None) -> Lexicon:
    """Parse the packaged lexicon (or ``text``, a YAML document of the same shape)."""
    if text is None:
        text = (resources.files("ddsp_gym.design") / "lexicon.yaml").read_text()
    doc: dict[str, Any] = yaml.safe_load(text)
    descriptors = doc["descriptors"]
    unknown = set(descriptors) ^ set(DESCRIPTORS)
    if unknown:
        raise ValueError(f"lexicon descriptors differ from the measured ones: {sorted(unknown)}")
    words: dict[str, tuple[str, int]] = {}
    listed = {**doc["words"], **doc.get("nouns", {})}
    for word, (descriptor, direction) in listed.items():
        if descriptor not in descriptors or direction not in (-1, 1):
            raise ValueError(f"lexicon word {word!r}: bad entry {[descriptor, direction]}")
        forms = {word} | (comparatives(word) if word in doc["words"] else set())
        for form in forms:
            words.setdefault(form, (descriptor, int(direction)))
    return Lexicon(
        words=words,
        base_words=frozenset(listed),
        intensity={k: float(v) for k, v in doc["intensity"].items()},
        negation=frozenset(doc["negation"]),
        filler=frozenset(doc["filler"]),
        conjunctions=frozenset(doc["conjunctions"]),
        steps={k: float(v["step"]) for k, v in descriptors.items()},
        bounds={k: float(v["bound"]) for k, v in descriptors.items()},
        units={k: str(v["unit"]) for k, v in descriptors.items()},
        coupled={k: tuple(v) for k, v in doc.get("coupled", {}).items()},
    )


@lru_cache(maxsize=1)
def default_lexicon() -> Lexicon:
    """The packaged lexicon, parsed once."""
    return load_lexicon()


class PromptError(ValueError):
    """A prompt the parser cannot turn into descriptor changes (the message says why)."""


def _tokens(clause: str) -> list[str]:
    return re.findall(r"[a-z]+(?:'[a-z]+)?", clause.lower())


def _clauses(prompt: str, lexicon: Lexicon) -> list[list[str]]:
    clauses: list[list[str]] = [[]]
    for part in re.split(r"[,;.!]", prompt):
        clauses.append([])
        for token in _tokens(part):
            if token in lexicon.conjunctions:
                clauses.append([])
            else:
                clauses[-1].append(token)
    return [c for c in clauses if c]


def parse_prompt(prompt: str, lexicon: Lexicon | None = None) -> dict[str, float]:
    """Descriptor changes asked for by ``prompt``: {descriptor: signed change in its unit}.

    Raises :class:`PromptError` for unknown words (with the nearest lexicon words),
    for a prompt that asks for nothing, and for one that asks for opposite changes of
    one descriptor ("brighter and darker").
    """
    lexicon = lexicon or default_lexicon()
    goal: dict[str, float] = {}
    # Suggest listed words, and derived comparatives only for a word that looks like one
    # ("brigter" -> brighter, but "metallicc" -> metallic, not "metalliccer").
    listed = lexicon.base_words | set(lexicon.intensity) | lexicon.negation
    for clause in _clauses(prompt, lexicon):
        scale, sign = 1.0, 1
        i = 0
        while i < len(clause):
            pair = " ".join(clause[i : i + 2])
            if pair in lexicon.intensity:  # "a bit", "a lot"
                scale *= lexicon.intensity[pair]
                i += 2
                continue
            token = clause[i]
            i += 1
            if token in lexicon.negation:
                sign = -sign
            elif token in lexicon.words:
                descriptor, direction = lexicon.words[token]
                change = sign * direction * scale * lexicon.steps[descriptor]
                if descriptor in goal and goal[descriptor] * change < 0:
                    raise PromptError(f"{prompt!r} asks for {descriptor} to go both up and down")
                goal[descriptor] = goal.get(descriptor, 0.0) + change
                scale, sign = 1.0, 1
            elif token in lexicon.intensity:
                scale *= lexicon.intensity[token]
            elif token not in lexicon.filler:
                known = listed | set(lexicon.words) if token.endswith("r") else listed
                close = difflib.get_close_matches(token, sorted(known), n=5, cutoff=0.6)
                hint = f"; did you mean {', '.join(close)}?" if close else ""
                raise PromptError(
                    f"unknown word {token!r} in {prompt!r}{hint} "
                    f"(the lexicon: ddsp_gym/design/lexicon.yaml)"
                )
    if not goal:
        raise PromptError(f"{prompt!r} names no timbre word; try e.g. 'brighter, more metallic'")
    return goal


def untouched(goal: dict[str, float], lexicon: Lexicon | None = None) -> list[str]:
    """Descriptors a goal neither names nor frees (coupled ones are free), in order."""
    lexicon = lexicon or default_lexicon()
    free = set(goal)
    for name in goal:
        free |= set(lexicon.coupled.get(name, ()))
    return [d for d in DESCRIPTORS if d not in free]
