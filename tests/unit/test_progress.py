"""progress.py: a bar on stderr for a load that takes more than DELAY_S, none for a short one or under TESTING."""

from __future__ import annotations

import io
import time

import pytest

import mock_server.data.pins as pins
import mock_server.progress as progress
from mock_helpers import NOW, SMALL
from mock_server.app import create_app
from mock_server.store.base import Dataset


def _slowly(rows, pause: float):
    for row in rows:
        time.sleep(pause)
        yield row


def _drain(dataset: Dataset) -> int:
    return sum(1 for _ in dataset.views) + sum(1 for _ in dataset.audit_logs)


def test_a_slow_load_shows_a_bar_that_ends_at_the_total():
    out = io.StringIO()
    dataset = Dataset(account="a", views=_slowly(range(30), 0.01), audit_logs=_slowly(range(20), 0.01))
    assert _drain(progress.with_progress(dataset, 50, delay=0.1, file=out, mininterval=0)) == 50
    text = out.getvalue()
    assert "loading data" in text and "50.0/50.0" in text and "100%" in text
    assert text.endswith(progress.AFTER_ROWS + "\n")  # what the rest of the load is, the bar being full


def test_a_fast_load_shows_nothing():
    out = io.StringIO()
    dataset = Dataset(account="a", views=iter(range(10_000)), audit_logs=iter(range(5_000)))
    assert _drain(progress.with_progress(dataset, 15_000, file=out)) == 15_000  # the default delay, 2 s
    assert out.getvalue() == ""  # not even the line after the rows


def _slow_stream(monkeypatch):
    real = pins.stream

    def slow(**kwargs):
        dataset = real(**kwargs)
        dataset.views = _slowly(dataset.views, 0.0005)
        return dataset

    monkeypatch.setattr(pins, "stream", slow)


def test_the_start_up_load_of_an_app_shows_the_bar_on_stderr(monkeypatch, capsys):
    _slow_stream(monkeypatch)  # 600 views at 0.5 ms: 0.3 s, longer than the delay below
    monkeypatch.setattr(progress, "DELAY_S", 0.1)
    create_app({"NOW": NOW, **SMALL}).extensions["insights_mock"].default.store.close()
    captured = capsys.readouterr()
    assert "insights-mock: loading data" in captured.err and "1.00k/1.00k" in captured.err
    assert captured.out == ""


@pytest.mark.parametrize("config", [{"TESTING": True}, {}], ids=["testing", "fast"])
def test_no_bar_under_testing_nor_for_a_short_start_up_load(monkeypatch, capsys, config):
    if config:
        _slow_stream(monkeypatch)
        monkeypatch.setattr(progress, "DELAY_S", 0.0)
    create_app({"NOW": NOW, **SMALL, **config}).extensions["insights_mock"].default.store.close()
    assert "loading data" not in capsys.readouterr().err
