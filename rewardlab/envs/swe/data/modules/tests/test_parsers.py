import pytest

from parsers import parse_bool, parse_duration, parse_int_list, parse_kv, parse_version


def test_int_list():
    assert parse_int_list("1,2,3") == [1, 2, 3]


def test_int_list_empty():
    assert parse_int_list("  ") == []


def test_int_list_sep():
    assert parse_int_list("4;5", sep=";") == [4, 5]


def test_kv():
    assert parse_kv("a=1;b=2") == {"a": "1", "b": "2"}


def test_kv_trailing_and_spaces():
    assert parse_kv(" a = x ;") == {"a": "x"}


def test_bool_true():
    assert parse_bool("Yes") is True


def test_bool_false():
    assert parse_bool(" off ") is False


def test_bool_bad():
    with pytest.raises(ValueError):
        parse_bool("maybe")


def test_duration():
    assert parse_duration("1h30m") == 5400


def test_duration_seconds():
    assert parse_duration("45s") == 45


def test_duration_missing_unit():
    with pytest.raises(ValueError):
        parse_duration("10")


def test_duration_bad_char():
    with pytest.raises(ValueError):
        parse_duration("5x")


def test_version_full():
    assert parse_version("1.2.3") == (1, 2, 3)


def test_version_short():
    assert parse_version("2") == (2, 0, 0)
