from textstats import average_word_length, longest_word, top_k, word_counts


def test_counts_basic():
    assert word_counts("a b a") == {"a": 2, "b": 1}


def test_counts_punct_case():
    assert word_counts("Hi, hi! HI.") == {"hi": 3}


def test_counts_empty():
    assert word_counts("") == {}


def test_top_k_default():
    assert top_k("b a b c a b") == ["b", "a"]


def test_top_k_tie_alpha():
    assert top_k("z y x", k=2) == ["x", "y"]


def test_top_k_one():
    assert top_k("q q r", k=1) == ["q"]


def test_longest_first_wins():
    assert longest_word("ab cd ef") == "ab"


def test_longest():
    assert longest_word("a quick fox") == "quick"


def test_avg_len():
    assert average_word_length("ab abcd") == 3.0


def test_avg_len_empty():
    assert average_word_length("   ") == 0.0
