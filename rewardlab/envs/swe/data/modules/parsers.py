def parse_int_list(text, sep=","):
    if not text.strip():
        return []
    return [int(part) for part in text.split(sep)]


def parse_kv(text):
    out = {}
    for pair in text.split(";"):
        if not pair:
            continue
        key, _, value = pair.partition("=")
        out[key.strip()] = value.strip()
    return out


def parse_bool(text):
    low = text.strip().lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"not a boolean: {text!r}")


def parse_duration(text):
    units = {"h": 3600, "m": 60, "s": 1}
    total = 0
    number = ""
    for ch in text:
        if ch.isdigit():
            number += ch
        elif ch in units and number:
            total += int(number) * units[ch]
            number = ""
        else:
            raise ValueError(f"bad duration: {text!r}")
    if number:
        raise ValueError(f"missing unit: {text!r}")
    return total


def parse_version(text):
    parts = text.split(".")
    while len(parts) < 3:
        parts.append("0")
    return tuple(int(p) for p in parts)
