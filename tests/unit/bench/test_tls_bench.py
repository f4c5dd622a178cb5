"""The TLS benchmark's report: every figure of both sides, and the ratios."""

from __future__ import annotations

from typing import Any

from bench.tls_bench import render


def _side(kept: float, own: float, fresh: float, shake: float) -> dict[str, Any]:
    return {
        "kept_alive": {"p50_ms": kept, "p99_ms": 2 * kept, "own_p50_ms": own},
        "new_connection": {"p50_ms": fresh, "p99_ms": 2 * fresh},
        "handshake": {"p50_ms": shake, "p99_ms": 2 * shake},
        "connection_cost_p50_ms": fresh - kept,
    }


def test_render_shows_both_sides_and_the_connection_cost() -> None:
    result = {
        "machine": "test machine",
        "command": "python -m bench.tls_bench",
        "rounds": 4,
        "requests": 200,
        "connections": 100,
        "plaintext": _side(40.0, 3.0, 41.0, 0.5),
        "tls": _side(42.0, 4.5, 46.0, 3.0),
        "ratios": {"kept_alive_p50": 1.05, "own_p50": 1.5, "new_connection_p50": 46.0 / 41.0},
    }
    text = render(result)
    assert "| kept-alive connection, p50 | 40.00 | 42.00 | 1.05x |" in text
    assert "(Server-Timing total - backend), p50 | 3.00 | 4.50 | 1.50x |" in text
    assert "| new connection per request, p50 | 41.00 | 46.00 | 1.12x |" in text
    assert "| TCP connect (+ TLS handshake), p50 | 0.50 | 3.00 | - |" in text
    assert "1.00 ms in plaintext and 4.00 ms with TLS" in text
    assert "200 searches on one kept-alive connection and 100 on a new connection" in text
