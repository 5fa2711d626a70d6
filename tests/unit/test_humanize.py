"""Durations and sizes printed the way docker (go-units) prints them."""

from __future__ import annotations

import pytest

from dockyard.cli.format.humanize import bytes_size, human_duration, human_size, parse_time, time_ago


@pytest.mark.parametrize("n,want", [
    (0, "0B"), (999, "999B"), (1000, "1kB"), (1234, "1.23kB"), (1_234_567, "1.23MB"), (4_260_000, "4.26MB"),
    (1_500_000_000, "1.5GB"), (10**12, "1TB"), (999_999, "1e+03kB"),
])
def test_human_size(n: int, want: str) -> None:
    assert human_size(n) == want


def test_human_size_precision_4() -> None:
    assert human_size(1_234_567, 4) == "1.235MB"


@pytest.mark.parametrize("n,want", [(0, "0B"), (2 * 1024**2, "2MiB"), (2_048_000, "1.953MiB"), (1536, "1.5KiB"),
                                    (8 * 1024**3, "8GiB")])
def test_bytes_size(n: int, want: str) -> None:
    assert bytes_size(n) == want


@pytest.mark.parametrize("secs,want", [
    (0.4, "Less than a second"), (1, "1 second"), (59, "59 seconds"), (60, "About a minute"),
    (119, "About a minute"), (120, "2 minutes"), (3599, "59 minutes"), (3600, "About an hour"),
    (5400, "2 hours"), (47 * 3600, "47 hours"), (48 * 3600, "2 days"), (14 * 86400, "2 weeks"),
    (60 * 86400, "2 months"), (800 * 86400, "2 years"),
])
def test_human_duration(secs: float, want: str) -> None:
    assert human_duration(secs) == want


def test_time_ago() -> None:
    assert time_ago(1000.0, now=1003.5) == "3 seconds ago"
    assert time_ago(1000.0, now=1000.0 + 14 * 86400) == "2 weeks ago"


def test_parse_time_nanoseconds() -> None:
    assert parse_time("1970-01-01T00:00:10.123456789Z") == pytest.approx(10.123456)
    assert parse_time("0001-01-01T00:00:00Z") == 0.0
    assert parse_time("2020-01-01T00:00:00+01:00") == parse_time("2019-12-31T23:00:00Z")
