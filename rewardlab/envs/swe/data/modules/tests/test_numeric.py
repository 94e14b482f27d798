import pytest

from numeric import clamp, factorial, gcd, is_prime, mean, median


def test_clamp_inside():
    assert clamp(5, 0, 10) == 5


def test_clamp_low():
    assert clamp(-3, 0, 10) == 0


def test_clamp_high():
    assert clamp(42, 0, 10) == 10


def test_clamp_at_bounds():
    assert clamp(0, 0, 10) == 0 and clamp(10, 0, 10) == 10


def test_mean():
    assert mean([1, 2, 3, 4]) == 2.5


def test_mean_empty():
    with pytest.raises(ValueError):
        mean([])


def test_median_odd():
    assert median([3, 1, 2]) == 2


def test_median_even():
    assert median([4, 1, 3, 2]) == 2.5


def test_median_single():
    assert median([7]) == 7


def test_primes_small():
    assert [n for n in range(20) if is_prime(n)] == [2, 3, 5, 7, 11, 13, 17, 19]


def test_prime_square():
    assert not is_prime(49)


def test_prime_large():
    assert is_prime(7919)


def test_factorial_small():
    assert factorial(0) == 1 and factorial(1) == 1


def test_factorial_five():
    assert factorial(5) == 120


def test_factorial_negative():
    with pytest.raises(ValueError):
        factorial(-1)


def test_gcd():
    assert gcd(12, 18) == 6


def test_gcd_zero():
    assert gcd(7, 0) == 7


def test_gcd_negative():
    assert gcd(-4, 6) == 2
