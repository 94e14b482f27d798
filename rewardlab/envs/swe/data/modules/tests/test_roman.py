import pytest

from roman import from_roman, to_roman


def test_to_roman_simple():
    assert to_roman(3) == "III"


def test_to_roman_subtractive():
    assert to_roman(4) == "IV" and to_roman(9) == "IX"


def test_to_roman_big():
    assert to_roman(1994) == "MCMXCIV"


def test_to_roman_bounds():
    assert to_roman(1) == "I" and to_roman(3999) == "MMMCMXCIX"


def test_to_roman_zero():
    with pytest.raises(ValueError):
        to_roman(0)


def test_from_roman_simple():
    assert from_roman("VIII") == 8


def test_from_roman_subtractive():
    assert from_roman("XLIV") == 44


def test_roundtrip():
    assert all(from_roman(to_roman(n)) == n for n in range(1, 200))
