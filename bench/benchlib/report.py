"""Result table on stdout and the JSON record under bench/results/."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from benchlib.measure import Result
from benchlib.workloads import Metric

OURS, REF = "infiniscale", "apache"
Results = dict[str, dict[str, Result]]  # metric key -> server -> result


def fmt(v: float | None) -> str:
    if v is None:
        return "FAILED"
    return f"{v:.0f}" if v >= 100 else f"{v:.1f}" if v >= 10 else f"{v:.2f}"


def ratio(m: Metric, row: dict[str, Result]) -> str:
    """>1 means infiniscale is better: ours/apache for throughput, apache/ours for times and memory."""
    ours, ref = row.get(OURS), row.get(REF)
    if not ours or not ref or not ours.value or not ref.value:
        return "-"
    r = ours.value / ref.value if m.higher_is_better else ref.value / ours.value
    return f"{r:.2f}"


def table(metrics: list[Metric], results: Results, servers: list[str]) -> str:
    header = ["workload", "unit", *servers, f"ratio {OURS}/{REF}"]
    rows = [header]
    for m in metrics:
        row = results.get(m.key, {})
        rows.append([m.label, m.unit, *(fmt(row[s].value) if s in row else "-" for s in servers),
                     ratio(m, row)])
    return _render(rows)


def cpu_table(metrics: list[Metric], results: Results, servers: list[str]) -> str:
    """Server CPU seconds spent inside the timed sections: efficiency even when the client is the limit."""
    rows = [["workload (server CPU s in timed part)", *servers]]
    for m in metrics:
        row = results.get(m.key, {})
        if any(r.samples for r in row.values()):
            rows.append([m.label, *(f"{row[s].server_cpu_s:.2f}" if s in row and row[s].samples else "-"
                                    for s in servers)])
    return _render(rows)


def tus_vs_put(results: Results) -> str:
    """TUS against a single PUT of the same file, both on infiniscale in the same run."""
    tus, put = results.get("tus_big", {}).get(OURS), results.get("put_big", {}).get(OURS)
    if not tus or not put or not tus.value or not put.value:
        return ""
    return f"TUS upload / single PUT on {OURS}: {tus.value / put.value:.2f} (bar: 0.8)"


def _render(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [" | ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths,
                                                                                            strict=True)))
             for r in rows]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(lines)


def failures(results: Results) -> list[str]:
    return [f"{srv} {key}: {r.error}" for key, row in results.items() for srv, r in row.items() if r.error]


def write_json(path: Path, meta: dict[str, Any], metrics: list[Metric], results: Results) -> None:
    doc = {
        "meta": meta,
        "ratio_convention": "ratio > 1 means infiniscale better: ours/apache for throughput, "
                            "apache/ours for ms and MiB",
        "metrics": [dataclasses.asdict(m) for m in metrics],
        "results": {key: {srv: dataclasses.asdict(r) for srv, r in row.items()}
                    for key, row in results.items()},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2) + "\n")
