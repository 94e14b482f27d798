def caesar(text, shift=3):
    out = []
    for ch in text:
        if "a" <= ch <= "z":
            out.append(chr((ord(ch) - ord("a") + shift) % 26 + ord("a")))
        elif "A" <= ch <= "Z":
            out.append(chr((ord(ch) - ord("A") + shift) % 26 + ord("A")))
        else:
            out.append(ch)
    return "".join(out)


def rle_encode(text):
    if not text:
        return []
    runs = []
    current, count = text[0], 1
    for ch in text[1:]:
        if ch == current:
            count += 1
        else:
            runs.append((current, count))
            current, count = ch, 1
    runs.append((current, count))
    return runs


def rle_decode(runs):
    return "".join(ch * count for ch, count in runs)


def checksum(data, modulus=256):
    total = 0
    for i, byte in enumerate(data):
        total = (total + (i + 1) * byte) % modulus
    return total
