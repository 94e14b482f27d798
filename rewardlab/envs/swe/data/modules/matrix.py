def identity(n):
    return [[1 if i == j else 0 for j in range(n)] for i in range(n)]


def transpose(m):
    if not m:
        return []
    return [[m[i][j] for i in range(len(m))] for j in range(len(m[0]))]


def matmul(a, b):
    if len(a[0]) != len(b):
        raise ValueError("shape mismatch")
    rows, inner, cols = len(a), len(b), len(b[0])
    out = [[0] * cols for _ in range(rows)]
    for i in range(rows):
        for j in range(cols):
            for k in range(inner):
                out[i][j] += a[i][k] * b[k][j]
    return out


def trace(m):
    return sum(m[i][i] for i in range(len(m)))


def scale(m, factor=2):
    return [[factor * x for x in row] for row in m]
