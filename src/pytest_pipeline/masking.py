"""Secrets in output: masked in text, and held in strings whose ``repr`` masks them.

:class:`Secret` (a password, a secret key) and :class:`SecretURL` (a URL that holds a password)
*are* the real string for every client (psycopg, boto3, pandas, s3fs, SQLAlchemy take them as
``str``; ``str()`` and f-strings give the real value), while ``repr()`` — what pytest shows
for ``-l`` locals, ``-vv``, assertion summaries and fixture values — masks the secret.

Creating one also records the secret in this process (raw and URL-encoded, each also as
repr, JSON and pytest's %-doubling escape it), so that text derived from it (``dsn + "&x=1"``,
a printed value, a text diff, a repr cut by truncation) is masked by :func:`mask_secrets`, by
the plugin's last pass over test reports, warnings, and its live and file log output.

Standard library only: importing this module is light.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, unquote

__all__ = ["Secret", "SecretURL", "has_secrets", "known_secrets", "mask_secrets", "mask_url"]

#: Shorter values are not replaced in free text: they would mask ordinary words.
MIN_SECRET_LENGTH = 3

# The lookbehind starts a match only where a scheme can start: linear, not quadratic, in a long
# run of letters.
_SCHEME = re.compile(r"(?<![a-zA-Z0-9+.-])[a-zA-Z][a-zA-Z0-9+.-]*://")
# The user part of a URL's userinfo: what follows "scheme://" up to the ':' of the password.
_USER = re.compile(r"[^\s:/?#@\[\]'\"<>]*:")
_SECRET_KEYS = r"password|passwd|secret|secret_key|secret_access_key|sslpassword"
_QUOTED = r"'(?:[^'\\\n]|\\.)*'|\"(?:[^\"\\\n]|\\.)*\""
# password=... (libpq conninfo, query strings, reprs, AWS_SECRET_ACCESS_KEY=...) and
# 'secret': '...' (dict reprs). Key names inside longer names count: my_secret=... is masked.
_SECRET_PARAM = re.compile(rf"(?i)(['\"]?)({_SECRET_KEYS})\1(\s*[=:]\s*)({_QUOTED}|[^&\s,;)}}\]]+)")

#: Shortest run of a secret's start (end) masked where pytest cut a long repr with "...".
MIN_CUT_LENGTH = 4
_CUT = "..."

_known: set[str] = set()
_longest_first: list[str] = []  # _known sorted for mask_known, rebuilt when a secret is added


def _shown_forms(value: str) -> set[str]:
    """How ``value`` can appear in output: as is, escaped by repr or JSON, %-doubled.

    A repr is single-quoted (``'`` escaped) unless the whole string holds ``'`` and no ``"``:
    both bodies are recorded. pytest doubles ``%`` in assertion messages.
    """
    body = repr(value + '"')[1:-2]  # forced single quotes
    forms = {
        value,
        body,
        body.replace("\\'", "'"),
        json.dumps(value)[1:-1],
        json.dumps(value, ensure_ascii=False)[1:-1],
    }
    return forms | {form.replace("%", "%%") for form in forms if "%" in form}


def _remember(value: str) -> None:
    added = False
    for encoded in {value, quote(value, safe=""), quote(value)}:
        for form in _shown_forms(encoded):
            if len(form) >= MIN_SECRET_LENGTH and form not in _known:
                _known.add(form)
                added = True
    if added:
        _longest_first[:] = sorted(_known, key=len, reverse=True)


def has_secrets() -> bool:
    """Whether any secret was recorded in this process (cheap: for per-record checks)."""
    return bool(_known)


def known_secrets() -> frozenset[str]:
    """Every secret value recorded in this process (raw and URL-encoded forms)."""
    return frozenset(_known)


def url_password(url: str) -> str | None:
    """The password part of ``url`` as written (possibly URL-encoded), or None.

    It runs from the first ':' of the user part to the LAST '@' of the line: an unencoded
    password may itself hold '/', ':', '@', spaces or quotes.
    """
    scheme = _SCHEME.match(url)
    found = _password_span(url, scheme.end(), len(url)) if scheme else None
    return url[found[0] : found[1]] if found else None


def _password_span(text: str, start: int, end: int) -> tuple[int, int] | None:
    """Where the password of the URL whose netloc starts at ``start`` is (before ``end``)."""
    newline = text.find("\n", start, end)
    end = newline if newline >= 0 else end
    user = _USER.match(text, start, end)
    if not user:
        return None
    at = text.rfind("@", user.end(), end)
    return (user.end(), at) if at >= 0 else None


def mask_url(text: str) -> str:
    """``text`` with the password of every URL (and password=... parameters) replaced by ***.

    Errs towards masking: with an unencoded password a URL's end cannot be known, so what
    runs from a URL's ``user:`` to the last '@' of its line (before the next URL) is masked.
    """
    # Cheap substring checks first: this runs on every live log line once a secret is known.
    starts = [m.end() for m in _SCHEME.finditer(text)] if "://" in text else []
    pieces: list[str] = []
    done = 0
    for index, start in enumerate(starts):
        limit = starts[index + 1] if index + 1 < len(starts) else len(text)
        span = _password_span(text, start, limit)
        if span:
            pieces += [text[done : span[0]], "***"]
            done = span[1]
    text = "".join([*pieces, text[done:]])
    lowered = text.lower()
    if "pass" not in lowered and "secret" not in lowered:  # in every name of _SECRET_KEYS
        return text
    return _SECRET_PARAM.sub(_masked_param, text)


def _masked_param(match: re.Match[str]) -> str:
    # A quoted value keeps its quotes: a masked repr still reads as one ('secret': '***').
    if match[4] == "None":  # secret_key=None in a repr: nothing set, nothing to hide
        return match[0]
    quote_mark = match[4][0] if match[4][0] in "'\"" else ""
    return f"{match[1]}{match[2]}{match[1]}{match[3]}{quote_mark}***{quote_mark}"


def mask_known(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with each given and each recorded secret value replaced by ***.

    Recorded secrets are also matched escaped (repr, JSON, %-doubled), and a secret that
    pytest's repr truncation cut in two (``'abc...xyz'``) is masked on both sides of the cut.
    """
    given = [s for s in secrets if s and len(s) >= MIN_SECRET_LENGTH and s not in _known]
    values = sorted(given, key=len, reverse=True) + _longest_first if given else _longest_first
    for secret in values:  # longest first: no partial leftovers
        if secret in text:
            text = text.replace(secret, "***")
    if _CUT in text and values:
        text = _mask_cut(text, values)
    return text


def _mask_cut(text: str, values: list[str]) -> str:
    """Mask a secret's start right before each "..." and its end right after it."""
    parts = text.split(_CUT)
    for index, part in enumerate(parts):
        if index < len(parts) - 1:
            part = _strip_run(part, values, at_end=True)
        if index > 0:
            part = _strip_run(part, values, at_end=False)
        parts[index] = part
    return _CUT.join(parts)


def _strip_run(part: str, values: list[str], *, at_end: bool) -> str:
    """``part`` with the longest run of a secret's start (at its end) or end (at its start)."""
    edge = part[-MIN_CUT_LENGTH:] if at_end else part[:MIN_CUT_LENGTH]
    if len(edge) < MIN_CUT_LENGTH:
        return part
    best = 0
    for secret in values:
        if edge not in secret:  # cheap: the run's edge must occur in the secret
            continue
        for size in range(min(len(secret) - 1, len(part)), max(best, MIN_CUT_LENGTH - 1), -1):
            if part.endswith(secret[:size]) if at_end else part.startswith(secret[-size:]):
                best = size
                break
    if not best:
        return part
    return part[:-best] + "***" if at_end else "***" + part[best:]


def mask_secrets(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with URLs masked and each given or recorded secret value replaced by ***."""
    # Known values first: mask_url's span (to the line's last '@') may cut a raw password that
    # follows the URL on the same line, leaving its tail unknown to mask_known.
    return mask_url(mask_known(text, secrets))


class Secret(str):
    """A secret string: the real value for clients, ``'***'`` in every ``repr``."""

    __slots__ = ()

    def __new__(cls, value: str) -> Secret:
        self = super().__new__(cls, value)
        self._record()
        return self

    def _record(self) -> None:
        _remember(str(self))

    def __repr__(self) -> str:
        return "'***'"

    def __reduce__(self) -> tuple[type[Secret], tuple[str]]:
        return (type(self), (str(self),))


class SecretURL(Secret):
    """A URL holding a password: the real URL for clients, the password masked in ``repr``."""

    __slots__ = ()

    def _record(self) -> None:
        password = url_password(self)
        if password:
            _remember(password)
            _remember(unquote(password))

    def __repr__(self) -> str:
        return repr(mask_secrets(str(self)))


# --------------------------------------------------------------------------- reports


def scrub_report(report: Any) -> None:
    """Replace every recorded secret in a pytest report's failure text and captured output.

    The last pass over every test and collection report: it catches what a ``repr`` cannot,
    strings derived from a secret (``dsn + "?x"``), printed output, and text diffs pytest
    makes of fields (a dataclass holding a password).

    Also the xfail reason (``-rA``, junit ``<skipped message>``) and ``record_property``
    values (junit ``<property value>``).
    """
    if not has_secrets():
        return
    report.longrepr = _scrub(report.longrepr, set())
    report.sections = [(title, mask_secrets(content)) for title, content in report.sections]
    if getattr(report, "when", "collect") == "collect":  # a collection report
        return
    reason = getattr(report, "wasxfail", None)  # set only on xfail outcomes
    if isinstance(reason, str):
        report.wasxfail = mask_secrets(reason)
    if report.user_properties:
        report.user_properties = [(n, _scrub_value(v)) for n, v in report.user_properties]


def _scrub_value(value: object) -> object:
    # junit XML shows str(value) of any object: keep the object unless its text holds a secret.
    text = str(value)
    masked = mask_secrets(text)
    return value if masked == text else masked


def _scrub(value: Any, seen: set[int]) -> Any:
    # pytest's failure representations are trees of small objects holding strings
    # (_pytest._code.code.ReprEntry lines, ReprFuncArgs, ReprFileLocation ...).
    if isinstance(value, str):
        return mask_secrets(value)
    if id(value) in seen:
        return value
    seen.add(id(value))
    if isinstance(value, list):
        value[:] = [_scrub(item, seen) for item in value]
    elif isinstance(value, tuple):
        return tuple(_scrub(item, seen) for item in value)
    elif type(value).__module__.startswith("_pytest.") and hasattr(value, "__dict__"):
        for name, attribute in list(vars(value).items()):
            object.__setattr__(value, name, _scrub(attribute, seen))
    return value
