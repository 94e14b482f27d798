from validate import is_identifier, is_ipv4, password_strength


def test_ipv4_ok():
    assert is_ipv4("192.168.0.1")


def test_ipv4_edge_values():
    assert is_ipv4("0.0.0.0") and is_ipv4("255.255.255.255")


def test_ipv4_too_big():
    assert not is_ipv4("256.1.1.1")


def test_ipv4_leading_zero():
    assert not is_ipv4("01.2.3.4")


def test_ipv4_wrong_parts():
    assert not is_ipv4("1.2.3")


def test_identifier_ok():
    assert is_identifier("_name1")


def test_identifier_digit_first():
    assert not is_identifier("1abc")


def test_identifier_empty():
    assert not is_identifier("")


def test_identifier_symbol():
    assert not is_identifier("a-b")


def test_password_weak():
    assert password_strength("abc") == 0


def test_password_length_exact():
    assert password_strength("abcdefgh") == 1


def test_password_strong():
    assert password_strength("Abcdefg1") == 3


def test_password_custom_min():
    assert password_strength("ab1", min_length=3) == 2
