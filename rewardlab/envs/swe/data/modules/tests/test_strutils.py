from strutils import count_vowels, is_palindrome, pad_left, reverse_words, truncate


def test_reverse_words_basic():
    assert reverse_words("a b c") == "c b a"


def test_reverse_words_single():
    assert reverse_words("hello") == "hello"


def test_reverse_words_spaces():
    assert reverse_words("  one   two ") == "two one"


def test_palindrome_simple():
    assert is_palindrome("racecar")


def test_palindrome_mixed_case_punct():
    assert is_palindrome("A man, a plan, a canal: Panama")


def test_not_palindrome():
    assert not is_palindrome("python")


def test_truncate_short_unchanged():
    assert truncate("abc", 5) == "abc"


def test_truncate_exact_width():
    assert truncate("abcde", 5) == "abcde"


def test_truncate_long():
    assert truncate("abcdefgh", 6) == "abc..."


def test_truncate_custom_suffix():
    assert truncate("abcdefgh", 4, suffix="!") == "abc!"


def test_truncate_tiny_width():
    assert truncate("abcdefgh", 2) == "..."


def test_count_vowels():
    assert count_vowels("Hello World") == 3


def test_count_vowels_none():
    assert count_vowels("rhythm") == 0


def test_count_vowels_upper():
    assert count_vowels("AEIOU") == 5


def test_pad_left():
    assert pad_left("7", 3, "0") == "007"


def test_pad_left_no_pad():
    assert pad_left("1234", 3) == "1234"


def test_pad_left_default_fill():
    assert pad_left("ab", 4) == "  ab"
