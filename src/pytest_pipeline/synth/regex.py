"""Strings that match a regular expression, many at a time (numpy), from Python's own parse.

Each node of the parsed pattern makes ``n`` strings at once; a repeated character class (the
usual ``[a-z0-9_-]{0,63}`` or ``[0-9]+``) is one numpy draw. Unbounded repeats stop at
``min + UNBOUNDED_EXTRA``. Anchors make nothing. Back-references and look-arounds are refused.
"""

from __future__ import annotations

import re
from re import _constants as sre_c  # type: ignore[attr-defined]
from re import _parser as sre_parse  # type: ignore[attr-defined]
from typing import Any

import numpy as np

from pytest_pipeline.errors import RegexNotGeneratable

UNBOUNDED_EXTRA = 8
_MAX_ALPHABET = 4096
_PRINTABLE = [chr(code) for code in range(32, 127)]
_CATEGORIES = {
    sre_c.CATEGORY_DIGIT: [chr(c) for c in range(48, 58)],
    sre_c.CATEGORY_WORD: [c for c in _PRINTABLE if c.isalnum() or c == "_"],
    sre_c.CATEGORY_SPACE: [" ", "\t"],
}
_NEGATED = {
    sre_c.CATEGORY_NOT_DIGIT: sre_c.CATEGORY_DIGIT,
    sre_c.CATEGORY_NOT_WORD: sre_c.CATEGORY_WORD,
    sre_c.CATEGORY_NOT_SPACE: sre_c.CATEGORY_SPACE,
}
_EXACT_ANCHORS = {
    sre_c.AT_BEGINNING,
    sre_c.AT_BEGINNING_STRING,
    sre_c.AT_END,
    sre_c.AT_END_STRING,
}


Rng = np.random.Generator


class _Node:
    def sample(self, rng: Rng, n: int, mode: str) -> list[str]:
        raise NotImplementedError


class _Literal(_Node):
    def __init__(self, text: str) -> None:
        self.text = text

    def sample(self, rng: Rng, n: int, mode: str) -> list[str]:
        return [self.text] * n


class _Chars(_Node):
    def __init__(self, alphabet: list[str]) -> None:
        if not alphabet:
            raise RegexNotGeneratable("a character class that no printable character matches")
        self.alphabet = np.array(alphabet, dtype="<U1")

    def draw(self, rng: Rng, shape: tuple[int, ...], mode: str) -> Any:
        if mode != "random":
            return np.full(shape, self.alphabet[0 if mode == "min" else -1], dtype="<U1")
        return self.alphabet[rng.integers(len(self.alphabet), size=shape)]

    def sample(self, rng: Rng, n: int, mode: str) -> list[str]:
        result: list[str] = self.draw(rng, (n,), mode).tolist()
        return result


class _Sequence(_Node):
    def __init__(self, parts: list[_Node]) -> None:
        merged: list[_Node] = []
        for part in parts:
            if isinstance(part, _Literal) and merged and isinstance(merged[-1], _Literal):
                merged[-1] = _Literal(merged[-1].text + part.text)
            else:
                merged.append(part)
        self.parts = merged

    def sample(self, rng: Rng, n: int, mode: str) -> list[str]:
        if not self.parts:
            return [""] * n
        if len(self.parts) == 1:
            return self.parts[0].sample(rng, n, mode)
        columns = [part.sample(rng, n, mode) for part in self.parts]
        return ["".join(row) for row in zip(*columns, strict=True)]


class _Branch(_Node):
    def __init__(self, options: list[_Node]) -> None:
        self.options = options

    def sample(self, rng: Rng, n: int, mode: str) -> list[str]:
        if mode != "random":
            return self.options[0 if mode == "min" else -1].sample(rng, n, mode)
        picks = rng.integers(len(self.options), size=n)
        out: list[str] = [""] * n
        for index, option in enumerate(self.options):
            rows = np.flatnonzero(picks == index).tolist()
            for row, value in zip(rows, option.sample(rng, len(rows), mode), strict=True):
                out[row] = value
        return out


class _Repeat(_Node):
    def __init__(self, node: _Node, low: int, high: int) -> None:
        self.node = node
        self.low = low
        self.high = low + UNBOUNDED_EXTRA if high == sre_c.MAXREPEAT else high

    def _lengths(self, rng: Rng, n: int, mode: str) -> Any:
        if mode == "min":
            return np.full(n, self.low)
        if mode == "max":
            return np.full(n, self.high)
        return rng.integers(self.low, self.high + 1, size=n)

    def sample(self, rng: Rng, n: int, mode: str) -> list[str]:
        if self.high == 0 or n == 0:
            return [""] * n
        lengths = self._lengths(rng, n, mode)
        if isinstance(self.node, _Chars):
            # One draw for all rows; positions past a row's length are emptied, and the
            # (n, high) array of single characters read as n strings of up to `high`.
            matrix = self.node.draw(rng, (n, self.high), mode)
            matrix[np.arange(self.high) >= lengths[:, None]] = ""
            strings: list[str] = (
                np.ascontiguousarray(matrix).view(f"<U{self.high}").ravel().tolist()
            )
            return strings
        pieces = [self.node.sample(rng, n, mode) for _ in range(self.high)]
        return [
            "".join(row[:length])
            for row, length in zip(zip(*pieces, strict=True), lengths.tolist(), strict=True)
        ]


class RegexSampler:
    """Makes strings that match ``pattern``; ``exact`` is False when they must be checked."""

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        self.compiled = re.compile(pattern)
        self.exact = True
        self.root = self._node(sre_parse.parse(pattern))

    def sample(self, rng: Rng, n: int, mode: str = "random") -> list[str]:
        """``n`` strings; ``mode`` "min" / "max" makes the shortest / longest form."""
        return self.root.sample(rng, n, mode)

    def matches(self, value: str) -> bool:
        return self.compiled.search(value) is not None

    def _node(self, parsed: Any) -> _Node:
        sequence = _Sequence([self._item(op, av) for op, av in parsed])
        # A lone part stands for itself: `[0-9]+` is then one vectorised draw.
        return sequence.parts[0] if len(sequence.parts) == 1 else sequence

    def _item(self, op: Any, av: Any) -> _Node:
        if op is sre_c.LITERAL:
            return _Literal(chr(av))
        if op is sre_c.NOT_LITERAL:
            return _Chars([c for c in _PRINTABLE if c != chr(av)])
        if op is sre_c.ANY:
            return _Chars(_PRINTABLE)
        if op is sre_c.IN:
            return _Chars(_charset(av))
        if op is sre_c.SUBPATTERN:
            return self._node(av[-1])
        if op is sre_c.BRANCH:
            return _Branch([self._node(option) for option in av[1]])
        if op in (sre_c.MAX_REPEAT, sre_c.MIN_REPEAT, sre_c.POSSESSIVE_REPEAT):
            low, high, sub = av
            return _Repeat(self._node(sub), low, high)
        if op is sre_c.ATOMIC_GROUP:
            return self._node(av)
        if op is sre_c.AT:
            self.exact = self.exact and av in _EXACT_ANCHORS
            return _Literal("")
        raise RegexNotGeneratable(f"{str(op).lower()} (back-references and look-arounds)")


def _charset(items: list[tuple[Any, Any]]) -> list[str]:
    chosen: list[str] = []
    negate = False
    for op, av in items:
        if op is sre_c.NEGATE:
            negate = True
        elif op is sre_c.LITERAL:
            chosen.append(chr(av))
        elif op is sre_c.RANGE:
            low, high = av
            chosen.extend(chr(c) for c in range(low, min(high, low + _MAX_ALPHABET) + 1))
        elif op is sre_c.CATEGORY:
            if av in _CATEGORIES:
                chosen.extend(_CATEGORIES[av])
            else:
                excluded = set(_CATEGORIES.get(_NEGATED.get(av), []))
                chosen.extend(c for c in _PRINTABLE if c not in excluded)
        else:
            raise RegexNotGeneratable(f"{str(op).lower()} inside a character class")
    unique = list(dict.fromkeys(c for c in chosen if not 0xD800 <= ord(c) <= 0xDFFF))
    if negate:
        banned = set(unique)
        return [c for c in _PRINTABLE if c not in banned]
    return unique
