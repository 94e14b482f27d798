class Stack:
    def __init__(self):
        self._items = []

    def push(self, item):
        self._items.append(item)

    def pop(self):
        if not self._items:
            raise IndexError("pop from empty stack")
        return self._items.pop()

    def peek(self):
        if not self._items:
            return None
        return self._items[-1]

    def __len__(self):
        return len(self._items)


class BoundedQueue:
    def __init__(self, capacity=3):
        if capacity < 1:
            raise ValueError("capacity must be >= 1")
        self.capacity = capacity
        self._items = []

    def put(self, item):
        if len(self._items) >= self.capacity:
            self._items.pop(0)
        self._items.append(item)

    def get(self):
        if not self._items:
            raise IndexError("get from empty queue")
        return self._items.pop(0)

    def full(self):
        return len(self._items) == self.capacity


class Counter:
    def __init__(self, start=0, step=1):
        self.value = start
        self.step = step

    def tick(self, times=1):
        for _ in range(times):
            self.value += self.step
        return self.value
