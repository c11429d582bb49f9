"""Find values that look like real personal or payment data in a piece of text.

Each detector pairs a pattern with a check that real values pass and made-up ones mostly do
not, to keep false positives low:

- card numbers: 13-19 digits (single spaces or dashes between them), a known card network
  prefix and a valid Luhn check digit; the networks' published test numbers are not hits;
- IBANs: a known country, that country's length and valid mod-97 check digits; the
  documentation examples of the IBAN standard are not hits;
- e-mail addresses, except reserved domains (``example.com`` / ``.org`` / ``.net`` and their
  subdomains, and the ``.test``, ``.invalid``, ``.example`` and ``.localhost`` TLDs);
- phone numbers in E.164 form (``+``, country code, 8-15 digits in all), except the ranges
  reserved for fiction (NANP 555-0100..0199, UK Ofcom drama numbers, Australian ACMA ranges);
- national IDs with validity rules: US SSN, UK National Insurance number, Spanish DNI/NIE.

Digits that look made up (one or two distinct digits, a run of six equal or consecutive
digits, like ``123456``) are not hits for any kind: real numbers have neither.

A hit carries its kind, its span in the text and its normalised value; :func:`mask` is the
only form a hit is ever shown in.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

__all__ = ["KINDS", "Match", "digest", "find", "mask", "normalize"]

CARD = "card number"
IBAN = "IBAN"
EMAIL = "e-mail address"
PHONE = "phone number"
SSN = "US SSN"
NINO = "UK NINO"
DNI = "ES DNI/NIE"

#: Every kind of hit, in the order detectors run (an earlier kind wins an overlapping span).
KINDS = (IBAN, EMAIL, PHONE, SSN, NINO, DNI, CARD)


@dataclass(frozen=True)
class Match:
    """One value that looks real: its kind, where it is in the text, its normalised value."""

    kind: str
    start: int
    end: int
    value: str

    def __repr__(self) -> str:  # never the value itself: reprs end up in test output
        return f"Match({self.kind!r}, {self.start}, {self.end}, {mask(self.kind, self.value)!r})"


# --------------------------------------------------------------------------- made-up digits

_ASCENDING = "01234567890"
_DESCENDING = "09876543210"


def made_up_digits(digits: str, *, min_distinct: int = 3) -> bool:
    """Whether ``digits`` look typed by a person rather than issued (0000..., 123456...)."""
    if len(set(digits)) < min_distinct:
        return True
    if re.search(r"(\d)\1{5}", digits):
        return True
    return any(
        digits[i : i + 6] in _ASCENDING or digits[i : i + 6] in _DESCENDING
        for i in range(len(digits) - 5)
    )


# --------------------------------------------------------------------------- card numbers

#: Published test card numbers of the card networks and payment providers (Stripe, Adyen,
#: Braintree, PayPal, Worldpay, ...): documented to be safe in tests, so never hits.
TEST_CARDS = frozenset(
    {
        "4242424242424242",
        "4000056655665556",
        "4111111111111111",
        "4012888888881881",
        "4222222222222",
        "4005519200000004",
        "4009348888881881",
        "4012000033330026",
        "4012000077777777",
        "4217651111111119",
        "4500600000000061",
        "4000002500003155",
        "4000002760003184",
        "4000003800000446",
        "4000000000003220",
        "4000000000003063",
        "4000008400001629",
        "4000000000000002",
        "4000000000009995",
        "4000000000009987",
        "4000000000009979",
        "4000000000000069",
        "4000000000000127",
        "4000000000000119",
        "4000000000000101",
        "4000000000000341",
        "4100000000000019",
        "4000000000000077",
        "4000000000000093",
        "4000000760000002",
        "4000001240000000",
        "4000004840008001",
        "4000000400000008",
        "4000002080000001",
        "4035501000000008",
        "4131840000000003",
        "4917610000000000",
        "4988438843884305",
        "4444333322221111",
        "4462030000000000",
        "4917300800000000",
        "4484070000000000",
        "4001919257537193",
        "4007702835532454",
        "5555555555554444",
        "2223003122003222",
        "5200828282828210",
        "5105105105105100",
        "5431111111111111",
        "5454545454545454",
        "2223000048400011",
        "2221000000000009",
        "5101180000000007",
        "5555341244441115",
        "5577000055770004",
        "5136333333333335",
        "5585558555855583",
        "5424000000000015",
        "2222400070000005",
        "2222410740360010",
        "378282246310005",
        "371449635398431",
        "378734493671000",
        "340000000000009",
        "370000000000002",
        "370000000100018",
        "374245455400126",
        "374251018720018",
        "6011111111111117",
        "6011000990139424",
        "6011000991300009",
        "6011601160116611",
        "6445644564456445",
        "6011000400000000",
        "6011000000000004",
        "3056930009020004",
        "36227206271667",
        "30569309025904",
        "38520000023237",
        "36006666333344",
        "36700102000000",
        "36148900647913",
        "3566002020360505",
        "3530111333300000",
        "3566111111111113",
        "3569990010095841",
        "3528000700000000",
        "6200000000000005",
        "6205500000000000004",
        "6250946000000016",
        "6304000000000000",
        "6759649826438453",
        "6799990100000000019",
        "6703444444444449",
    }
)

# Issuer prefixes of the networks: Visa 4, Mastercard 51-55 and 2221-2720, Amex 34/37,
# Discover 6011/644-649/65, JCB 3528-3589, Diners 300-305/36/38/39, UnionPay 62, Maestro 50/56-69.
_CARD_PREFIX = re.compile(
    r"4|5[0-5]|222[1-9]|22[3-9]|2[3-6]|27[01]|2720|3[47]|30[0-5]|3[689]|35(?:2[89]|[3-8])|6"
)
# Lookbehinds come after the first character: a pattern that starts with one is scanned
# position by position in Python's engine, several times slower on a large file.
_CARD = re.compile(r"\d(?<![\w+.,/-]\d)(?:[ -]?\d){12,18}(?![\w.,/:-]?\d)(?!\w)")


def luhn_valid(digits: str) -> bool:
    """The Luhn check of ``digits`` (the last one is the check digit)."""
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def _cards(text: str) -> Iterator[Match]:
    for found in _CARD.finditer(text):
        raw = found.group()
        if " " in raw and "-" in raw:
            continue  # a real card is written with one kind of separator
        digits = raw.replace(" ", "").replace("-", "")
        if (
            _CARD_PREFIX.match(digits)
            and luhn_valid(digits)
            and digits not in TEST_CARDS
            and not made_up_digits(digits, min_distinct=4)
        ):
            yield Match(CARD, found.start(), found.end(), digits)


# --------------------------------------------------------------------------- IBAN

_IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22,
    "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28,
    "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23,
    "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26,
    "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20,
    "LV": 21, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MR": 27, "MT": 31, "MU": 30, "NL": 18,
    "NO": 15, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "SA": 24,
    "SC": 31, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "ST": 25, "SV": 28, "TL": 23, "TN": 24,
    "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
}  # fmt: skip
#: The examples printed in the IBAN standard and in banks' documentation: not real accounts.
EXAMPLE_IBANS = frozenset(
    {
        "GB82WEST12345698765432", "GB29NWBK60161331926819", "GB33BUKB20201555555555",
        "DE89370400440532013000", "DE75512108001245126199", "FR1420041010050500013M02606",
        "FR7630006000011234567890189", "NL91ABNA0417164300", "BE68539007547034",
        "CH9300762011623852957", "ES9121000418450200051332", "IT60X0542811101000000123456",
        "AT611904300234573201", "NO9386011117947", "DK5000400440116243", "FI2112345600000785",
        "SE4550000000058398257466", "IE29AIBK93115212345678", "PL61109010140000071219812874",
        "PT50000201231234567890154", "LU280019400644750000", "CZ6508000000192000145399",
    }
)  # fmt: skip
_IBAN_START = re.compile(r"([A-Z](?<![A-Za-z0-9][A-Z])[A-Z])(\d{2})(?= ?[A-Z0-9])")


def iban_valid(compact: str) -> bool:
    """Country length and mod-97 check digits of an IBAN without spaces."""
    if _IBAN_LENGTHS.get(compact[:2]) != len(compact) or not compact.isalnum():
        return False
    moved = compact[4:] + compact[:4]
    return int("".join(str(int(char, 36)) for char in moved)) % 97 == 1


def _ibans(text: str) -> Iterator[Match]:
    for found in _IBAN_START.finditer(text):
        length = _IBAN_LENGTHS.get(found.group(1))
        if length is None:
            continue
        chars, index = [found.group(1), found.group(2)], found.end()
        taken = 4
        while taken < length and index < len(text):
            char = text[index]
            if char == " " and index + 1 < len(text) and text[index + 1].isalnum():
                index += 1
                continue
            if not (char.isascii() and (char.isdigit() or char.isupper())):
                break
            chars.append(char)
            taken += 1
            index += 1
        if index < len(text) and text[index].isalnum():
            continue  # longer than the country's IBAN: an other identifier
        compact = "".join(chars)
        if iban_valid(compact) and compact not in EXAMPLE_IBANS:
            yield Match(IBAN, found.start(), index, compact)


# --------------------------------------------------------------------------- e-mail

# Found from the "@" (fast to search for), the local part then read backwards.
_EMAIL_DOMAIN = re.compile(
    r"@((?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24})(?![\w-])"
)
_EMAIL_LOCAL = re.compile(r"[A-Za-z0-9._%+-]{1,65}\Z")
_RESERVED_DOMAINS = ("example.com", "example.org", "example.net")
_RESERVED_TLDS = frozenset({"test", "invalid", "example", "localhost"})
# "logo@2x.png" is a file name, not an address.
_FILE_TLDS = frozenset({"png", "jpg", "jpeg", "gif", "svg", "webp", "css", "js", "json", "csv"})


def reserved_domain(domain: str) -> bool:
    """Whether ``domain`` is reserved for examples and tests (RFC 2606 / RFC 6761)."""
    domain = domain.lower().rstrip(".")
    if domain.rpartition(".")[2] in _RESERVED_TLDS:
        return True
    return any(domain == d or domain.endswith("." + d) for d in _RESERVED_DOMAINS)


def _local_part(text: str, at: int) -> str | None:
    """The local part ending at ``at``: at most 64 characters, starting with a letter or digit,
    not glued to a word before it."""
    found = _EMAIL_LOCAL.search(text, max(0, at - 65), at)
    if found is None or len(found.group()) > 64 or not found.group()[0].isalnum():
        return None
    before = found.start() - 1
    if before >= 0 and (text[before].isalnum() or text[before] == "_"):
        return None
    return found.group()


def _emails(text: str) -> Iterator[Match]:
    for found in _EMAIL_DOMAIN.finditer(text):
        domain = found.group(1)
        if reserved_domain(domain) or domain.rpartition(".")[2].lower() in _FILE_TLDS:
            continue
        local = _local_part(text, found.start())
        if local is None:
            continue
        if len(local) == 1 and len(domain.split(".")[-2]) == 1:
            continue  # "a@x.io": a placeholder, like "123456" for digits
        start = found.start() - len(local)
        yield Match(EMAIL, start, found.end(), f"{local}@{domain}".lower())


# --------------------------------------------------------------------------- phone numbers

_PHONE = re.compile(r"\+(?<![\w+]\+)[1-9](?:[ -]?\(?\d\)?){7,14}(?![\w.,]?\d)")
# Numbers reserved for fiction, as digits after the "+" (a prefix; the rest is any digits).
_FICTION_PREFIXES = (
    "44207946",  # UK Ofcom drama ranges: London 020 7946 0xxx ...
    "441134960", "441144960", "441154960", "441164960", "441174960", "441184960",
    "441214960", "441314960", "441414960", "441514960", "441614960",
    "44289649", "442920180", "441632960", "447700900", "448081570", "449098790", "443069990",
    "61491570", "61491571", "61491572", "61491573", "61491574", "61491575", "61491576",
    "61491577", "61491578", "61491579",  # AU ACMA: mobile 0491 57x xxx
    "6125550", "6127010", "6135550", "6137010", "6175550", "6177010", "6185550", "6187010",
)  # fmt: skip


def _phone_real(digits: str) -> bool:
    if not 8 <= len(digits) <= 15 or digits.startswith(_FICTION_PREFIXES):
        return False
    if digits.startswith("1"):  # NANP: +1 NXX NXX XXXX, and 555-0100..0199 is fiction
        nanp = digits[1:]
        if len(nanp) != 10 or nanp[0] in "01" or nanp[3] in "01":
            return False
        if nanp[3:6] == "555" and nanp[6:8] == "01":
            return False
    return not made_up_digits(digits[1:])


def _phones(text: str) -> Iterator[Match]:
    for found in _PHONE.finditer(text):
        digits = re.sub(r"\D", "", found.group())
        if _phone_real(digits):
            yield Match(PHONE, found.start(), found.end(), "+" + digits)


# --------------------------------------------------------------------------- national IDs

_SSN = re.compile(r"(\d{3})(?<![\w-]\d{3})-(\d{2})-(\d{4})(?![\w-])")
#: SSNs printed in advertising (the Woolworth wallet card, a Lifelock ad) and the classic
#: placeholder: issued-looking but public.
_ADVERTISED_SSNS = frozenset({"078051120", "219099999", "457555462", "123456789"})


def ssn_valid(area: str, group: str, serial: str) -> bool:
    """The SSA's rules: no 000, 666 or 9xx area, no 00 group, no 0000 serial."""
    return (
        area not in ("000", "666")
        and not area.startswith("9")
        and group != "00"
        and serial != "0000"
        and area + group + serial not in _ADVERTISED_SSNS
    )


def _ssns(text: str) -> Iterator[Match]:
    for found in _SSN.finditer(text):
        digits = "".join(found.groups())
        if ssn_valid(*found.groups()) and not made_up_digits(digits):
            yield Match(SSN, found.start(), found.end(), digits)


# First letter: not D, F, I, Q, U, V; second: not D, F, I, O, Q, U, V; suffix A-D.
_NINO = re.compile(
    r"([A-CEGHJ-PR-TW-Z](?<![A-Za-z0-9][A-Z])[A-CEGHJ-NPR-TW-Z])"
    r" ?(\d{2}) ?(\d{2}) ?(\d{2}) ?([A-D])(?![A-Za-z0-9])"
)
_NINO_BARRED = frozenset({"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"})


def _ninos(text: str) -> Iterator[Match]:
    for found in _NINO.finditer(text):
        prefix, *digits, suffix = found.groups()
        number = "".join(digits)
        if prefix not in _NINO_BARRED and not made_up_digits(number):
            yield Match(NINO, found.start(), found.end(), prefix + number + suffix)


_DNI = re.compile(r"(\d{7,8})-?([A-Z])(?![A-Za-z0-9])")
_DNI_LETTERS = "TRWAGMYFPDXBNJZSQVHLCKE"


def _dnis(text: str) -> Iterator[Match]:
    for found in _DNI.finditer(text):
        digits, letter = found.groups()
        start = found.start()
        nie = text[start - 1] if start and text[start - 1] in "XYZ" else ""
        start -= len(nie)
        if start and (text[start - 1].isalnum() or text[start - 1] == "-"):
            continue
        if len(digits) != (7 if nie else 8):
            continue
        number = str("XYZ".index(nie)) + digits if nie else digits
        if _DNI_LETTERS[int(number) % 23] == letter and not made_up_digits(digits):
            yield Match(DNI, start, found.end(), nie + digits + letter)


# --------------------------------------------------------------------------- all of them

_DETECTORS: tuple[Callable[[str], Iterator[Match]], ...] = (
    _ibans,
    _emails,
    _phones,
    _ssns,
    _ninos,
    _dnis,
    _cards,
)
_QUICK = re.compile(r"\d{2}|@")  # every kind needs two digits in a row or an "@"


def find(text: str) -> list[Match]:
    """Every value in ``text`` that looks real, in text order; overlapping spans keep the first
    kind of :data:`KINDS` (an IBAN's digits are not also a card number)."""
    if not _QUICK.search(text):
        return []
    taken: list[Match] = []
    for detector in _DETECTORS:
        for match in detector(text):
            if not any(match.start < t.end and t.start < match.end for t in taken):
                taken.append(match)
    return sorted(taken, key=lambda m: m.start)


# --------------------------------------------------------------------------- showing a hit


def mask(kind: str, value: str) -> str:
    """How a hit is shown: never the full value (cards keep their last 4 digits)."""
    if kind == EMAIL:
        local, _, domain = value.partition("@")
        name, _, tld = domain.rpartition(".")
        return f"{local[:1]}***@{name[:1]}***.{tld}"
    if kind == IBAN:
        return f"{value[:2]}**{'*' * (len(value) - 8)}{value[-4:]}"
    if kind == PHONE:
        return "+" + "*" * (len(value) - 5) + value[-4:]
    if kind == SSN:
        return f"***-**-{value[-4:]}"
    return "*" * (len(value) - 4) + value[-4:]  # card, NINO, DNI


_SPACES = re.compile(r"[\s-]")


def normalize(kind: str, text: str) -> str:
    """``text`` in the normal form a :class:`Match` of ``kind`` has (for allowlist values)."""
    text = text.strip()
    if kind == EMAIL:
        return text.lower()
    if kind == PHONE:
        return "+" + re.sub(r"\D", "", text)
    return _SPACES.sub("", text).upper()


def digest(kind: str, value: str) -> str:
    """A stable fingerprint of a normalised value: what the scan cache keeps instead of it."""
    return hashlib.sha256(f"{kind}\0{value}".encode()).hexdigest()[:32]
