def reverse_words(text):
    words = text.split()
    return " ".join(words[::-1])


def is_palindrome(text):
    chars = [c.lower() for c in text if c.isalnum()]
    return chars == chars[::-1]


def truncate(text, width, suffix="..."):
    if len(text) <= width:
        return text
    keep = width - len(suffix)
    if keep < 0:
        keep = 0
    return text[:keep] + suffix


def count_vowels(text):
    total = 0
    for ch in text.lower():
        if ch in "aeiou":
            total += 1
    return total


def pad_left(text, width, fill=" "):
    missing = width - len(text)
    if missing > 0:
        return fill * missing + text
    return text
