"""Concurrency and load on the real server (`serve --workers 4 --db FILE`, a subprocess): a short run of
scripts/soak.py's load_run. Every acknowledged view is counted exactly once (stats, audit log, most viewed, no
viewCount acknowledged twice), no 5xx, no "database is locked" or traceback in the server's output.

The long run (`python scripts/soak.py load --seconds 300`) also checks that RSS stays flat; here RSS is only
held to a generous leak bound, since a few seconds on a shared machine say little about a trend.
"""

from __future__ import annotations

import sys

import pytest

from mock_helpers import load_soak

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses /proc")]


soak = load_soak()
LEAK_BOUND_MIB = 150  # far above anything seen (a worker grows by about 10 MiB while warming up)


def test_every_acknowledged_view_is_counted_once_under_concurrent_load(tmp_path, capsys):
    report = soak.load_run(seconds=5, writers=8, readers=4, workers=4, workdir=tmp_path)
    with capsys.disabled():
        print()
        soak.print_load(report)
    assert not report["problems"], "\n".join(report["problems"])
    assert report["acknowledged"] > 100, "hardly any view was recorded: the run tested nothing"
    assert report["acknowledged"] == report["counted"]
    assert len([row for row in report["rss"] if row["role"] == "worker"]) >= 4
    for row in report["rss"]:
        assert row["max"] - row["first"] < LEAK_BOUND_MIB, row
