from encoding import caesar, checksum, rle_decode, rle_encode


def test_caesar_default_shift():
    assert caesar("abc") == "def"


def test_caesar_wrap():
    assert caesar("xyz", 3) == "abc"


def test_caesar_upper_and_punct():
    assert caesar("Hi!", 1) == "Ij!"


def test_caesar_inverse():
    assert caesar(caesar("Secret", 5), -5) == "Secret"


def test_rle_encode():
    assert rle_encode("aaabcc") == [("a", 3), ("b", 1), ("c", 2)]


def test_rle_empty():
    assert rle_encode("") == []


def test_rle_single_run():
    assert rle_encode("zzzz") == [("z", 4)]


def test_rle_roundtrip():
    assert rle_decode(rle_encode("mississippi")) == "mississippi"


def test_checksum_small():
    assert checksum([1, 2, 3]) == 14


def test_checksum_modulus():
    assert checksum([200, 100], modulus=256) == 144


def test_checksum_custom_modulus():
    assert checksum([5, 5], modulus=7) == 1
