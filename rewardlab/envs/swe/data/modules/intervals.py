def overlaps(a, b):
    return a[0] < b[1] and b[0] < a[1]


def merge_intervals(intervals):
    ordered = sorted(intervals)
    merged = []
    for start, end in ordered:
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [tuple(iv) for iv in merged]


def total_length(intervals):
    return sum(end - start for start, end in merge_intervals(intervals))


def contains(interval, x):
    return interval[0] <= x < interval[1]
