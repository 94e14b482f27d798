import pytest

from listutils import binary_search, chunk, dedupe, flatten, rotate


def test_chunk_even():
    assert chunk([1, 2, 3, 4], 2) == [[1, 2], [3, 4]]


def test_chunk_remainder():
    assert chunk([1, 2, 3, 4, 5], 2) == [[1, 2], [3, 4], [5]]


def test_chunk_bad_size():
    with pytest.raises(ValueError):
        chunk([1], 0)


def test_flatten_deep():
    assert flatten([1, [2, [3, [4]]], 5]) == [1, 2, 3, 4, 5]


def test_flatten_flat():
    assert flatten([1, 2]) == [1, 2]


def test_dedupe_order():
    assert dedupe([3, 1, 3, 2, 1]) == [3, 1, 2]


def test_dedupe_empty():
    assert dedupe([]) == []


def test_rotate():
    assert rotate([1, 2, 3, 4], 1) == [2, 3, 4, 1]


def test_rotate_wrap():
    assert rotate([1, 2, 3], 4) == [2, 3, 1]


def test_rotate_empty():
    assert rotate([], 3) == []


def test_binary_search_found():
    assert binary_search([1, 3, 5, 7, 9], 7) == 3


def test_binary_search_first_last():
    assert binary_search([1, 3, 5], 1) == 0 and binary_search([1, 3, 5], 5) == 2


def test_binary_search_missing():
    assert binary_search([1, 3, 5], 4) == -1


def test_binary_search_single():
    assert binary_search([2], 2) == 0
