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


@lru_cache(maxsize=8192)
def _day_prefix(day: int) -> str:
    return f"{(EPOCH + timedelta(days=day)).isoformat()}T"


def iso_ms(ms: int) -> str:
    """`2026-11-20T09:15:02.123Z` of epoch milliseconds (hot in bulk generation: the date part is cached)."""
    day, rest = divmod(ms, MS_PER_DAY)
    seconds, millis = divmod(rest, 1000)
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return "%s%02d:%02d:%02d.%03dZ" % (_day_prefix(day), hours, minutes, seconds, millis)


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


@lru_cache(maxsize=8192)
def _day_ms(text: str) -> int:
    return (date.fromisoformat(text) - EPOCH).days * MS_PER_DAY


def ms_from_iso(text: str) -> int:
    """Epoch ms of an ISO 8601 instant; our own `...T..:..:..mmmZ` form takes a fast path (bulk loads)."""
    if len(text) == 24 and text[10] == "T" and text[13] == ":" and text[19] == "." and text[23] == "Z":
        try:
            day_ms = _day_ms(text[:10])
            h, m, s, ms = int(text[11:13]), int(text[14:16]), int(text[17:19]), int(text[20:23])
        except ValueError:
            pass
        else:
            if 0 <= h < 24 and 0 <= m < 60 and 0 <= s < 60 and 0 <= ms:
                return day_ms + ((h * 60 + m) * 60 + s) * 1000 + ms
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
