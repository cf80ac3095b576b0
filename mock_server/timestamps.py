"""The API's one timestamp form, ISO 8601 UTC with milliseconds and `Z`, and integer epoch milliseconds.

The store and the data generator keep instants as epoch milliseconds (exact, sortable, cheap to index) and
format them only at the edge.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from functools import lru_cache

MS_PER_DAY = 86_400_000
EPOCH = date(1970, 1, 1)
_EPOCH_DT = datetime(1970, 1, 1, tzinfo=UTC)


def to_ms(at: datetime) -> int:
    """Epoch milliseconds of `at`, truncated (naive means UTC); exact, unlike float timestamps."""
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    delta = at - _EPOCH_DT
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def from_ms(ms: int) -> datetime:
    """An aware UTC datetime of epoch milliseconds."""
    return _EPOCH_DT + timedelta(milliseconds=ms)


@lru_cache(maxsize=1 << 15)
def _hour_prefix(hour: int) -> str:
    day, h = divmod(hour, 24)
    return f"{(EPOCH + timedelta(days=day)).isoformat()}T{h:02d}:"


def iso_ms(ms: int) -> str:
    """`2026-11-20T09:15:02.123Z` of epoch milliseconds. Hot in bulk generation (a million view events and
    a million audit entries are three million instants): the date and hour are cached, 2**15 hours being
    3.7 years of history."""
    hour, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, millis = divmod(rest, 1000)
    return "%s%02d:%02d.%03dZ" % (_hour_prefix(hour), minutes, seconds, millis)


def iso(at: datetime) -> str:
    """`at` in the API's timestamp form (milliseconds truncated, converted to UTC)."""
    return iso_ms(to_ms(at))


def epoch_day(ms: int) -> int:
    """The UTC day number (days since 1970-01-01) of epoch milliseconds."""
    return ms // MS_PER_DAY


def day_number(day: date) -> int:
    return (day - EPOCH).days


def day_date(number: int) -> date:
    return EPOCH + timedelta(days=number)


def canonical_ms(text: object) -> int | None:
    """Epoch ms of `text` if it is exactly what iso_ms() writes for them, else None. A store keeps such an
    instant as the integer alone and writes it back with iso_ms(); any other form it keeps as it came."""
    if type(text) is str and len(text) == 24 and text[10] == "T" and text[13] == ":" and text[16] == ":" \
            and text[19] == "." and text[23] == "Z":
        base = _hour_ms(text[:13])
        rest = text[14:16] + text[17:19] + text[20:23]
        if base is not None and rest.isascii() and rest.isdigit() and rest[0] < "6" and rest[2] < "6" \
                and _hour_prefix(base // 3_600_000) == text[:14]:
            return base + int(rest[:2]) * 60_000 + int(rest[2:])
    return None


@lru_cache(maxsize=1 << 15)
def _hour_ms(prefix: str) -> int | None:
    """Epoch ms of `YYYY-MM-DDTHH`, or None if it is not one (then ms_from_iso takes the general path)."""
    hour = prefix[11:]
    if not (hour.isascii() and hour.isdigit()) or int(hour) > 23:
        return None
    try:
        return (date.fromisoformat(prefix[:10]) - EPOCH).days * MS_PER_DAY + int(hour) * 3_600_000
    except ValueError:
        return None


def ms_from_iso(text: str) -> int:
    """Epoch ms of an ISO 8601 instant. Our own `YYYY-MM-DDTHH:MM:SS.mmmZ` takes a fast path (bulk loads
    parse millions): the date and hour from a cache, then minutes and `SSmmm` as two ints."""
    if len(text) == 24 and text[13] == ":" and text[16] == ":" and text[19] == "." and text[23] == "Z" \
            and text[10] == "T":
        base = _hour_ms(text[:13])
        rest = text[14:16] + text[17:19] + text[20:23]
        if base is not None and rest.isascii() and rest.isdigit() and rest[0] < "6" and rest[2] < "6":
            return base + int(rest[:2]) * 60_000 + int(rest[2:])
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    if parsed.tzinfo is None:
        raise ValueError(f"timestamp without a time zone: {text!r}")
    return to_ms(parsed)


def data_anchor(now: datetime | None) -> datetime:
    """The instant the generated history runs up to: --now when given (the same seed and --now give the same
    bytes on every machine), else the start time floored to the minute, so the data reaches "now" (a day anchor
    left a hole from midnight to the first request: no view today, a pinned "-1h" 19 hours old)."""
    if now is not None:
        return now
    return datetime.now(UTC).replace(second=0, microsecond=0)
