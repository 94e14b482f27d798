import pytest

from structures import BoundedQueue, Counter, Stack


def test_stack_lifo():
    s = Stack()
    s.push(1)
    s.push(2)
    assert s.pop() == 2 and s.pop() == 1


def test_stack_pop_empty():
    with pytest.raises(IndexError):
        Stack().pop()


def test_stack_peek():
    s = Stack()
    assert s.peek() is None
    s.push("x")
    assert s.peek() == "x" and len(s) == 1


def test_queue_fifo():
    q = BoundedQueue()
    q.put(1)
    q.put(2)
    assert q.get() == 1


def test_queue_default_capacity():
    q = BoundedQueue()
    for i in range(3):
        q.put(i)
    assert q.full()


def test_queue_evicts_oldest():
    q = BoundedQueue(2)
    for i in range(3):
        q.put(i)
    assert q.get() == 1 and q.get() == 2


def test_queue_not_full():
    q = BoundedQueue(2)
    q.put(1)
    assert not q.full()


def test_queue_bad_capacity():
    with pytest.raises(ValueError):
        BoundedQueue(0)


def test_counter_default():
    c = Counter()
    assert c.tick() == 1


def test_counter_step():
    c = Counter(10, step=5)
    assert c.tick(2) == 20


def test_counter_zero_ticks():
    assert Counter(3).tick(0) == 3
