"""Crash durability over HTTP: `serve --workers 4 --db FILE` killed with SIGKILL (master and workers, its whole
process group) during sustained view POSTs, then restarted on the same file with no repair step: every
acknowledged view is there (acknowledged <= counted <= acknowledged + in flight, per dashboard, in the stats and
in the audit log) and PRAGMA integrity_check is ok. A short run of scripts/soak.py's crash_run; the long one is
`python scripts/soak.py crash --kills 10`."""

from __future__ import annotations

import sys

import pytest

from mock_helpers import load_soak

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not sys.platform.startswith("linux"), reason="process groups")]

soak = load_soak()


def test_acknowledged_views_survive_kill_9_of_the_whole_server(tmp_path, capsys):
    report = soak.crash_run(kills=2, seconds=2, writers=8, workers=4, workdir=tmp_path)
    with capsys.disabled():
        print()
        soak.print_crash(report)
    assert not report["problems"], "\n".join(report["problems"])
    assert report["survived"] == 2
    assert all(r["acknowledged"] > 0 for r in report["rounds"])
    assert report["integrity"] == "ok"
