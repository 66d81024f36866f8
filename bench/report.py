"""Turns measurements into the figures printed at the end (and saved under bench/results/)."""

from __future__ import annotations

import json
import time
from array import array
from pathlib import Path
from typing import Any

from bench.monitor import Usage

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def percentiles(values: array, points: tuple[float, ...] = (50, 95, 99)) -> dict[str, float | None]:
    """Milliseconds, nearest-rank."""
    if not values:
        return {f"p{p:g}": None for p in points}
    ordered = sorted(values)
    result: dict[str, float | None] = {}
    for p in points:
        rank = min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))
        result[f"p{p:g}"] = round(ordered[rank] * 1000, 1)
    result["max"] = round(ordered[-1] * 1000, 1)
    return result


def fmt_latency(lat: dict[str, float | None]) -> str:
    if lat.get("p50") is None:
        return "n/a (no frames)"
    return f"p50 {lat['p50']} ms, p95 {lat['p95']} ms, p99 {lat['p99']} ms, max {lat['max']} ms"


def fmt_usage(usage: Usage) -> str:
    return (f"CPU {usage.cpu_percent:.0f}% avg / {usage.cpu_peak:.0f}% peak, "
            f"RSS peak {usage.rss_peak_mb:.0f} MB")


def usage_dict(usages: dict[str, Usage]) -> dict[str, dict[str, float]]:
    return {name: {"cpu_percent": round(u.cpu_percent, 1), "cpu_peak": round(u.cpu_peak, 1),
                   "rss_peak_mb": round(u.rss_peak_mb, 1), "rss_end_mb": round(u.rss_end_mb, 1)}
            for name, u in usages.items()}


def summary_block(title: str, command: str, machine: dict[str, str],
                  lines: list[tuple[str, str]]) -> str:
    """A markdown block for docs/performance.md."""
    width = max(len(k) for k, _ in lines)
    out = [f"### {title}", "", "```", f"$ {command}", ""]
    out += [f"{k.ljust(width)}  {v}" for k, v in lines]
    out += ["", "machine: " + ", ".join(f"{k} {v}" for k, v in machine.items()), "```"]
    return "\n".join(out)


def save(kind: str, data: dict[str, Any]) -> Path:
    RESULTS_DIR.mkdir(exist_ok=True)
    path = RESULTS_DIR / f"{kind}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(data, indent=2, default=str))
    return path
