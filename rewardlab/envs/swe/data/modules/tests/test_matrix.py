import pytest

from matrix import identity, matmul, scale, trace, transpose


def test_identity():
    assert identity(2) == [[1, 0], [0, 1]]


def test_transpose_square():
    assert transpose([[1, 2], [3, 4]]) == [[1, 3], [2, 4]]


def test_transpose_rect():
    assert transpose([[1, 2, 3]]) == [[1], [2], [3]]


def test_transpose_empty():
    assert transpose([]) == []


def test_matmul():
    assert matmul([[1, 2], [3, 4]], [[5, 6], [7, 8]]) == [[19, 22], [43, 50]]


def test_matmul_identity():
    m = [[2, 3], [4, 5]]
    assert matmul(m, identity(2)) == m


def test_matmul_mismatch():
    with pytest.raises(ValueError):
        matmul([[1, 2]], [[1, 2]])


def test_trace():
    assert trace([[1, 2], [3, 4]]) == 5


def test_scale_default():
    assert scale([[1, 2]]) == [[2, 4]]


def test_scale_factor():
    assert scale([[1], [2]], factor=-1) == [[-1], [-2]]
