"""The photo-size benchmark's summaries and ratios."""

from __future__ import annotations

import pytest

from bench.photo_sizes import cpu_ratio, summarise


def _row(name: str, cpu: float, faces: int = 1) -> dict[str, object]:
    return {
        "name": name,
        "decode": cpu / 4,
        "detect": cpu / 2,
        "describe": cpu / 4,
        "cpu": cpu,
        "wall": 2 * cpu,
        "faces": faces,
    }


def test_summary_takes_medians_and_rates_per_wall_second() -> None:
    summary = summarise([_row("a", 10.0), _row("b", 30.0, faces=3), _row("c", 20.0)])
    assert summary["cpu_p50"] == 20.0
    assert summary["detect_p50"] == 10.0
    assert summary["photos"] == 3
    assert summary["faces"] == 5
    assert summary["photos_per_s"] == pytest.approx(3 / 0.12)
    assert summary["faces_per_s"] == pytest.approx(5 / 0.12)


def test_cpu_ratio_compares_the_same_photos() -> None:
    ours = [_row("a", 10.0), _row("b", 1000.0), _row("c", 30.0)]
    theirs = [_row("a", 500.0), _row("c", 1500.0)]
    assert cpu_ratio(theirs, ours) == pytest.approx(2000.0 / 40.0)
