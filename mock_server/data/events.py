"""When generated events happen, and how the view events are held until they are consumed.

Views are spread over the `history_days` before the anchor: more on weekdays and in working hours, growing
slowly towards the anchor (_Clock). A million view events are held as packed ints, not dicts (_ViewEvents).
"""

from __future__ import annotations

import bisect
import random
from array import array
from collections.abc import Iterator

from mock_server.ids import object_id_ms_tail
from mock_server.timestamps import MS_PER_DAY, iso_ms

_WEEKDAY_WEIGHT = (1.0, 1.05, 1.05, 1.0, 0.85, 0.25, 0.18)  # Monday first
_DAY_MS = MS_PER_DAY
_YEAR_MS = 365 * _DAY_MS


class _Clock:
    """Draws instants in [lo, anchor): weekday and working-hour skew, slowly growing usage."""

    def __init__(self, rng: random.Random, anchor_ms: int, history_days: int):
        self.rng = rng
        self.anchor_ms = anchor_ms
        self.history_start = anchor_ms - history_days * _DAY_MS
        self._days: dict[int, tuple[list[int], list[float]]] = {}

    def _table(self, lo: int) -> tuple[list[int], list[float]]:
        table = self._days.get(lo)
        if table is None:
            starts, cum, total = [], [], 0.0
            span = max(self.anchor_ms - self.history_start, 1)
            for day in range(lo // _DAY_MS, (self.anchor_ms - 1) // _DAY_MS + 1):
                start = day * _DAY_MS
                overlap = min(start + _DAY_MS, self.anchor_ms) - max(start, lo)
                if overlap <= 0:
                    continue
                trend = 1.0 + 0.5 * max(0, start - self.history_start) / span
                total += _WEEKDAY_WEIGHT[(day + 3) % 7] * trend * overlap / _DAY_MS
                starts.append(start)
                cum.append(total)
            table = self._days[lo] = (starts, cum)
        return table

    def draw(self, lo: int) -> int:
        """An instant in [lo, anchor) in epoch ms; lo must be < anchor."""
        rng = self.rng
        starts, cum = self._table(lo)
        start = starts[bisect.bisect_right(cum, rng.random() * cum[-1]) if len(starts) > 1 else 0]
        lo_d, hi_d = max(lo, start), min(start + _DAY_MS, self.anchor_ms)
        for _ in range(6):
            if rng.random() < 0.85:  # working hours, centred on 14:30 UTC (Europe afternoon, US morning)
                t = start + int(rng.gauss(52_200_000, 10_800_000))
            else:
                t = start + int(rng.random() * _DAY_MS)
            if lo_d <= t < hi_d:
                return t
        return lo_d + int(rng.random() * (hi_d - lo_d))

    def between(self, lo: int, hi: int) -> int:
        return lo + int(self.rng.random() * max(hi - lo, 1))


class _Packing:
    """(ms, dashboard index, user index) in one int whose order is the tuple's order."""

    def __init__(self, n_users: int, n_dashboards: int):
        self.user_bits = max(1, (n_users - 1).bit_length())
        self.shift = self.user_bits + max(1, (n_dashboards - 1).bit_length())
        self.user_mask = (1 << self.user_bits) - 1
        self.dash_mask = (1 << (self.shift - self.user_bits)) - 1

    def pack(self, ms: int, dash_i: int, user_i: int) -> int:
        return (ms << self.shift) + (dash_i << self.user_bits) + user_i

    def unpack(self, packed: int) -> tuple[int, int, int]:
        return packed >> self.shift, (packed >> self.user_bits) & self.dash_mask, packed & self.user_mask


class _ViewEvents:
    """The view events, oldest first, as packed ints and the random parts of their ids: about 50 MB for a
    million views, where a million dicts took about 1 GB. The dicts are made as they are consumed."""

    def __init__(self, events: list[int], tails: array, packing: _Packing | None):
        self._events = events
        self._tails = tails
        self._packing = packing

    @classmethod
    def empty(cls) -> _ViewEvents:
        return cls([], array("Q"), None)

    def __len__(self) -> int:
        return len(self._events)

    def unpack(self, i: int) -> tuple[int, int, int]:
        return self._packing.unpack(self._events[i])

    def dicts(self, dashboards: list[dict], users: list[dict]) -> Iterator[dict]:
        unpack = self._packing.unpack if self._packing else None
        for packed, tail in zip(self._events, self._tails):
            ms, dash_i, user_i = unpack(packed)
            yield {
                "_id": object_id_ms_tail(ms, tail),
                "dashboardId": dashboards[dash_i]["dashboardId"],
                "userId": users[user_i]["id"],
                "viewedAt": iso_ms(ms),
            }
