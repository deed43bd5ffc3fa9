"""Generators for the request formats of the Mimoto API whose rules a JSON Schema cannot state
(they are named by `format` in the OpenAPI document, with the rule in the description):

- `insurer-number`: 6 or 8 digits (ASCII or full-width) whose last digit is the check digit;
- `password`: 8-128 characters that zxcvbn scores 3 or more (not guessable);
- `birth-date`: a real calendar date, not in the future, as YYYY-MM-DD or YYYY/MM/DD;
- `kana-name`: katakana (or hiragana) letters and ー・＝ヽヾ, at least one letter, at most 40.

Loaded by schemathesis through SCHEMATHESIS_HOOKS=hooks (e2e/tests/contract.test.mjs).
"""

import datetime
import string

import schemathesis
from hypothesis import strategies as st

FULL_WIDTH = str.maketrans(string.digits, "０１２３４５６７８９")


def check_digit(body):
    """The insurer number's check digit (domain::insurer::check_digit)."""
    total = 0
    for i, d in enumerate(reversed(body)):
        p = d * (2 if i % 2 == 0 else 1)
        total += p // 10 + p % 10
    return (10 - total % 10) % 10


@st.composite
def insurer_numbers(draw):
    length = draw(st.sampled_from([6, 8]))
    body = draw(st.lists(st.integers(0, 9), min_size=length - 1, max_size=length - 1))
    text = "".join(map(str, body + [check_digit(body)]))
    return text.translate(FULL_WIDTH) if draw(st.booleans()) else text


# Random text over a large alphabet: zxcvbn finds no pattern in it, so it scores 4.
PASSWORD_ALPHABET = string.ascii_letters + string.digits + "!#$%&*+-=?@^_~"
passwords = st.text(alphabet=PASSWORD_ALPHABET, min_size=14, max_size=64).filter(
    lambda s: len(set(s)) >= 10
)


@st.composite
def birth_dates(draw):
    day = draw(st.dates(min_value=datetime.date(1900, 1, 1), max_value=datetime.date(2025, 12, 31)))
    sep = draw(st.sampled_from(["-", "/"]))
    return day.strftime(f"%Y{sep}%m{sep}%d")


KATAKANA_LETTERS = "".join(chr(c) for c in range(0x30A2, 0x30F3))  # ア … ン
HIRAGANA_LETTERS = "".join(chr(c) for c in range(0x3042, 0x3094))  # あ … ゔ


@st.composite
def kana_names(draw):
    letters = draw(st.sampled_from([KATAKANA_LETTERS, HIRAGANA_LETTERS]))
    first = draw(st.sampled_from(letters))
    rest = draw(st.text(alphabet=letters + "ー", max_size=39))
    return first + rest


schemathesis.openapi.format("insurer-number", insurer_numbers())
schemathesis.openapi.format("password", passwords)
schemathesis.openapi.format("birth-date", birth_dates())
schemathesis.openapi.format("kana-name", kana_names())
