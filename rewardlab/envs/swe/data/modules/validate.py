def is_ipv4(text):
    parts = text.split(".")
    if len(parts) != 4:
        return False
    for part in parts:
        if not part.isdigit():
            return False
        if len(part) > 1 and part[0] == "0":
            return False
        if int(part) > 255:
            return False
    return True


def is_identifier(text):
    if not text:
        return False
    if text[0].isdigit():
        return False
    return all(ch.isalnum() or ch == "_" for ch in text)


def password_strength(pw, min_length=8):
    score = 0
    if len(pw) >= min_length:
        score += 1
    if any(ch.isdigit() for ch in pw):
        score += 1
    if any(ch.isupper() for ch in pw) and any(ch.islower() for ch in pw):
        score += 1
    return score
