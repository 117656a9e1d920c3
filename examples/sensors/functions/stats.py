"""Helpers the readings function imports (any .py file of functions/ or
vendor/ is importable by its path: this one is `stats`)."""

WINDOW = 10  # readings kept per device


def add_reading(window, value):
    """The window with `value` appended, keeping the last WINDOW readings."""
    return (window + [value])[-WINDOW:]


def summary(window):
    return {
        "count": len(window),
        "average": round(sum(window) / len(window), 2),
        "min": min(window),
        "max": max(window),
    }
