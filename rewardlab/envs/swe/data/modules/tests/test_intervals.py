from intervals import contains, merge_intervals, overlaps, total_length


def test_overlaps_true():
    assert overlaps((0, 5), (3, 8))


def test_overlaps_touching_is_false():
    assert not overlaps((0, 3), (3, 6))


def test_overlaps_disjoint():
    assert not overlaps((0, 1), (2, 3))


def test_merge_basic():
    assert merge_intervals([(1, 3), (2, 6), (8, 10)]) == [(1, 6), (8, 10)]


def test_merge_touching():
    assert merge_intervals([(1, 2), (2, 4)]) == [(1, 4)]


def test_merge_nested():
    assert merge_intervals([(1, 10), (2, 3)]) == [(1, 10)]


def test_merge_unsorted():
    assert merge_intervals([(5, 6), (1, 2)]) == [(1, 2), (5, 6)]


def test_total_length():
    assert total_length([(0, 2), (1, 3), (10, 11)]) == 4


def test_contains_start():
    assert contains((2, 5), 2)


def test_contains_end_excluded():
    assert not contains((2, 5), 5)
