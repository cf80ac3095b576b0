"""A progress bar on stderr while a store loads a large dataset (tqdm).

The views and audit entries of a streamed dataset (mock_server.data.generate.stream) are made as the store
reads them; `with_progress` counts them as they pass, on one bar for both. tqdm's `delay` keeps a short load
silent: the bar only appears once the load has taken `delay` seconds. It is shown whether or not stderr is a
terminal (a CI log shows it too); away from a terminal it refreshes rarely, so it stays a few lines.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from dataclasses import replace
from typing import TextIO

from .store.base import Dataset

DELAY_S = 2.0  # a load shorter than this shows nothing
TTY_INTERVAL_S = 0.5
LOG_INTERVAL_S = 10.0  # away from a terminal every refresh is one more line of the log
AFTER_ROWS = "insights-mock: rows loaded; building the aggregates and indexes (`listening on` follows)"
_CHUNK = 4096  # rows counted between two updates of the bar (an update per row would cost more than the row)


def with_progress(dataset: Dataset, total: int, *, delay: float | None = None, file: TextIO | None = None,
                  mininterval: float | None = None) -> Dataset:
    """The dataset with its views and audit entries counted on a bar of `total` rows as they are read."""
    from tqdm import tqdm

    delay = DELAY_S if delay is None else delay
    file = file if file is not None else sys.stderr
    if mininterval is None:
        mininterval = TTY_INTERVAL_S if _isatty(file) else LOG_INTERVAL_S
    tqdm.monitor_interval = 0  # no monitor thread: a gunicorn master forks after a load
    # tqdm shows a bar first at an update `mininterval` after the start, and only past `delay`: the first
    # interval is the delay, so the bar appears then; the later ones are `mininterval`.
    bar = tqdm(total=total, desc="insights-mock: loading data", unit=" rows", unit_scale=True, file=file,
               delay=delay, mininterval=min(delay, mininterval), maxinterval=max(mininterval, 10.0), leave=True,
               dynamic_ncols=_isatty(file))
    remaining = [2]  # the bar closes when both streams are read

    def update(rows: int) -> None:
        if bar.total is not None and bar.n + rows > bar.total:  # a scenario's pinned rows come on top of its sizes
            bar.total = bar.n + rows
        bar.update(rows)
        if bar.mininterval != mininterval and bar.last_print_t >= bar.start_t + delay:  # shown once
            bar.mininterval = mininterval

    def counted(rows: Iterable[dict]) -> Iterator[dict]:
        pending = 0
        try:
            for row in rows:
                yield row
                pending += 1
                if pending == _CHUNK:
                    update(pending)
                    pending = 0
        finally:
            update(pending)
            remaining[0] -= 1
            if remaining[0] == 0:
                shown = bar.last_print_t >= bar.start_t + delay
                bar.close()
                if shown:  # both stores then build their aggregates and indexes, which the bar cannot count
                    print(AFTER_ROWS, file=file, flush=True)

    return replace(dataset, views=counted(dataset.views), audit_logs=counted(dataset.audit_logs))


def _isatty(file: TextIO) -> bool:
    try:
        return file.isatty()
    except (AttributeError, ValueError):
        return False
