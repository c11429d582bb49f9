"""The fixtures_pii detectors: real-looking values are found, published test values are not, and
a hit is only ever shown masked.

The valid values below are built here with the check algorithms written out independently
(Luhn, ISO 7064 mod 97-10, the DNI letter), so a wrong detector cannot agree with itself.
"""

from __future__ import annotations

import pytest

from pytest_pipeline.pii import detectors
from pytest_pipeline.pii.detectors import CARD, DNI, EMAIL, IBAN, NINO, PHONE, SSN


def _luhn_complete(partial: str) -> str:
    """``partial`` plus the digit that makes it pass the Luhn check."""
    for check in "0123456789":
        digits = [int(c) for c in partial + check]
        odd = digits[-1::-2]
        even = [sum(divmod(d * 2, 10)) for d in digits[-2::-2]]
        if (sum(odd) + sum(even)) % 10 == 0:
            return partial + check
    raise AssertionError("unreachable")


def _iban(country: str, bban: str) -> str:
    rearranged = bban + country + "00"
    number = int("".join(str(int(c, 36)) for c in rearranged))
    return f"{country}{98 - number % 97:02d}{bban}"


def _kinds(text: str) -> list[tuple[str, str]]:
    return [(m.kind, m.value) for m in detectors.find(text)]


VISA = _luhn_complete("453957876362148")  # prefix 4, random-looking digits
MASTERCARD = _luhn_complete("529384710293847")
AMEX = _luhn_complete("37940582716394")  # 15 digits
DE_IBAN = _iban("DE", "500105175407324931")
GB_IBAN = _iban("GB", "NWBK60161398765432")


# --------------------------------------------------------------------------- cards


@pytest.mark.parametrize(
    "written",
    [
        VISA,
        " ".join(VISA[i : i + 4] for i in range(0, 16, 4)),
        "-".join(VISA[i : i + 4] for i in range(0, 16, 4)),
        f"paid with {MASTERCARD} yesterday",
        f"card:{AMEX}",
    ],
)
def test_a_luhn_valid_card_number_is_found(written: str) -> None:
    found = detectors.find(written)
    assert [m.kind for m in found] == [CARD]
    assert found[0].value in (VISA, MASTERCARD, AMEX)


def test_a_card_number_that_fails_luhn_is_not_a_hit() -> None:
    wrong = VISA[:-1] + str((int(VISA[-1]) + 1) % 10)
    assert detectors.find(wrong) == []


@pytest.mark.parametrize(
    "number",
    [
        "4242 4242 4242 4242",
        "4111 1111 1111 1111",
        "5555 5555 5555 4444",
        "378282246310005",
        "6011111111111117",
        "4000056655665556",
        "3566002020360505",
    ],
)
def test_published_test_card_numbers_are_not_hits(number: str) -> None:
    assert detectors.luhn_valid(number.replace(" ", ""))  # a real check would pass them
    assert detectors.find(number) == []


def test_every_listed_test_card_passes_luhn_and_is_not_a_hit() -> None:
    for number in detectors.TEST_CARDS:
        assert detectors.luhn_valid(number), number
        assert detectors.find(number) == [], number


@pytest.mark.parametrize(
    "text",
    [
        _luhn_complete("123456789012345"),  # no card network starts with 1
        _luhn_complete("1700000000000"),  # an epoch in milliseconds, Luhn-valid by chance
        VISA + "7",  # 17 digits glued to more: an other identifier
        "9" + VISA,
        f"{VISA[:8]} {VISA[8:12]}-{VISA[12:]}",  # mixed separators
        f"orders/{VISA}",  # a path segment
        f"12.{VISA}",  # part of a decimal
        "4000 0000 0000 0002",  # made up: a run of zeros
    ],
)
def test_digit_runs_that_are_not_card_numbers(text: str) -> None:
    assert [m for m in detectors.find(text) if m.kind == CARD] == []


# --------------------------------------------------------------------------- IBAN


@pytest.mark.parametrize(
    "written",
    [
        DE_IBAN,
        " ".join(DE_IBAN[i : i + 4] for i in range(0, len(DE_IBAN), 4)),
        f"pay to {GB_IBAN}, thanks",
        " ".join(DE_IBAN[i : i + 4] for i in range(0, len(DE_IBAN), 4)) + " EUR",
    ],
)
def test_an_iban_with_valid_check_digits_is_found(written: str) -> None:
    assert [m.kind for m in detectors.find(written)] == [IBAN]  # its digits are no card


def test_an_iban_with_wrong_check_digits_or_length_is_not_a_hit() -> None:
    wrong_check = DE_IBAN[:2] + f"{(int(DE_IBAN[2:4]) + 1) % 100:02d}" + DE_IBAN[4:]
    assert detectors.find(wrong_check) == []
    assert detectors.find(_iban("DE", "5001051754073249312")) == []  # 23 characters for DE
    assert detectors.find(_iban("QQ", "500105175407324931")) == []  # no such country


@pytest.mark.parametrize(
    "example", ["GB82 WEST 1234 5698 7654 32", "DE89 3704 0044 0532 0130 00", "NL91ABNA0417164300"]
)
def test_the_iban_standards_examples_are_not_hits(example: str) -> None:
    assert detectors.iban_valid(example.replace(" ", ""))
    assert detectors.find(example) == []


# --------------------------------------------------------------------------- e-mail


@pytest.mark.parametrize(
    "address", ["jane.doe@gmail.com", "Ops+alerts@acme-payments.co.uk", "x@mail.examples.com"]
)
def test_an_email_address_at_a_real_domain_is_found(address: str) -> None:
    assert _kinds(f"contact: {address}.") == [(EMAIL, address.lower())]


@pytest.mark.parametrize(
    "address",
    [
        "jane@example.com",
        "jane@EXAMPLE.org",
        "jane@example.net",
        "jane@billing.example.com",
        "jane@shop.test",
        "jane@nowhere.invalid",
        "jane@corp.example",
        "jane@dev.localhost",
        "logo@2x.png",
        "a@x.io",  # one letter each side: a placeholder
    ],
)
def test_reserved_example_domains_are_not_hits(address: str) -> None:
    assert detectors.find(address) == []


# --------------------------------------------------------------------------- phone numbers


@pytest.mark.parametrize(
    "number", ["+447911638204", "+44 7911 638204", "+1 212-867-5309", "+49 30 9018 2047"]
)
def test_an_e164_phone_number_is_found(number: str) -> None:
    assert [m.kind for m in detectors.find(f"call {number} now")] == [PHONE]


@pytest.mark.parametrize(
    "text",
    [
        "+1-212-555-0142",  # NANP 555-0100..0199: fiction
        "+44 20 7946 0321",  # Ofcom drama number
        "+44 7700 900461",
        "+61 491 570 156",  # ACMA fiction
        "+1 012 867 5309",  # no NANP area code starts with 0
        "+4930901",  # 7 digits: too short for E.164
        "+4930901820471234",  # 16 digits: too long
        "2024-05-01T09:15:00+00:00",
        "+0049 30 9018 2047",  # E.164 has no leading 0
        "4930 9018 2047",  # no "+": not E.164
        "+49 123 456789",  # made up: 123456789
    ],
)
def test_reserved_or_malformed_phone_numbers_are_not_hits(text: str) -> None:
    assert [m for m in detectors.find(text) if m.kind == PHONE] == []


# --------------------------------------------------------------------------- national IDs


def test_a_us_ssn_is_found_unless_the_ssa_rules_rule_it_out() -> None:
    assert _kinds("ssn 536-22-8741") == [(SSN, "536228741")]
    for invalid in ("000-22-8741", "666-22-8741", "912-22-8741", "536-00-8741", "536-22-0000"):
        assert detectors.find(invalid) == [], invalid
    assert detectors.find("078-05-1120") == []  # the advertised wallet-card number
    assert detectors.find("123-45-6789") == []
    assert detectors.find("536228741") == []  # undashed nine digits: too many false positives


def test_a_uk_national_insurance_number_is_found_when_its_letters_are_valid() -> None:
    assert _kinds("JG 10 37 52 A") == [(NINO, "JG103752A")]
    assert _kinds("nino=JG103752A") == [(NINO, "JG103752A")]
    for invalid in ("QQ 12 34 56 C", "DA103752A", "GB103752A", "JG103752E", "AB123456C"):
        assert detectors.find(invalid) == [], invalid


def test_a_spanish_dni_or_nie_is_found_when_its_check_letter_matches() -> None:
    letters = "TRWAGMYFPDXBNJZSQVHLCKE"
    dni = f"48392017{letters[48392017 % 23]}"
    nie = f"Y2849301{letters[12849301 % 23]}"
    assert _kinds(f"dni {dni}") == [(DNI, dni)]
    assert _kinds(nie) == [(DNI, nie)]
    wrong = dni[:-1] + ("A" if dni[-1] != "A" else "B")
    assert detectors.find(wrong) == []
    assert detectors.find("12345678Z") == []  # the classic example: made up digits


# --------------------------------------------------------------------------- masking


REAL_LOOKING = [
    VISA,
    AMEX,
    DE_IBAN,
    "jane.doe@gmail.com",
    "+447911638204",
    "536-22-8741",
    "JG103752A",
    "48392017V",
]


@pytest.mark.parametrize("value", REAL_LOOKING)
def test_a_hit_is_never_shown_in_full(value: str) -> None:
    (match,) = detectors.find(value)
    shown = detectors.mask(match.kind, match.value)
    compact = value.replace("-", "")
    assert compact not in shown
    assert match.value not in shown
    assert shown not in (value, match.value)
    assert match.value not in repr(match)
    assert value not in repr(match)
    if match.kind in (CARD, IBAN, PHONE, SSN):
        assert shown.endswith(match.value[-4:])  # the last 4 digits tell which one it is
        assert sum(c.isdigit() for c in shown) <= 4


def test_a_card_number_is_masked_to_its_last_four_digits() -> None:
    (match,) = detectors.find(VISA)
    assert detectors.mask(CARD, match.value) == "*" * 12 + VISA[-4:]


def test_an_email_address_is_masked_to_two_letters_and_the_tld() -> None:
    (match,) = detectors.find("jane.doe@gmail.com")
    assert detectors.mask(EMAIL, match.value) == "j***@g***.com"


def test_allowlist_values_are_compared_in_normal_form() -> None:
    (match,) = detectors.find(" ".join(VISA[i : i + 4] for i in range(0, 16, 4)))
    written = "-".join(VISA[i : i + 4] for i in range(0, 16, 4))
    assert detectors.digest(CARD, detectors.normalize(CARD, written)) == detectors.digest(
        CARD, match.value
    )
    assert detectors.digest(EMAIL, detectors.normalize(EMAIL, "Jane.Doe@Gmail.com")) == (
        detectors.digest(EMAIL, "jane.doe@gmail.com")
    )
