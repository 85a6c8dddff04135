"""Phase-by-phase comparison of runs (simulated policies and recorded real kernels).

Works on `summary.json` dicts (docs/outputs.md). `phase_rows` flattens them into one row per
phase x run, ordered phase-major so that the runs of one phase sit side by side; the table
renderers and `write_report` are built on it. The columns follow the per-phase table of the
real-kernel recordings (`realkernel/results/compare.md`).
"""

from __future__ import annotations

import base64
import html
import json
import os
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from rich.table import Table

from reclaimsim.report.plots import timeline
from reclaimsim.validate import RATIO_COUNTERS

__all__ = [
    "COUNTERS",
    "hot_workload",
    "load_summary",
    "markdown_table",
    "phase_rows",
    "rich_table",
    "run_label",
    "write_report",
]

# the counters validate compares, plus OOM kills
COUNTERS = (*RATIO_COUNTERS, "oom_kill")
# Row keys that describe the run rather than being table columns.
META = ("source", "kernel", "scenario", "seed")

Row = dict[str, Any]


def load_summary(run_dir: Path) -> dict[str, Any]:
    """Read `run_dir/summary.json`."""
    path = Path(run_dir) / "summary.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not a run directory (no summary.json)")
    return json.loads(path.read_text())


def _by_node(d: dict[Any, Any] | None, node: int) -> Any:
    """Value of node `node` in a node-keyed dict (JSON keys are strings)."""
    if not d:
        return None
    return d.get(str(node), d.get(node))


def _hot_total(info: Any) -> int:
    hot = info.get("hot_pages_by_node") if isinstance(info, dict) else None
    return sum(int(v or 0) for v in hot.values()) if isinstance(hot, dict) else 0


def hot_workload(summaries: Sequence[dict[str, Any]]) -> str | None:
    """The workload whose hot set is tabulated: "W" if it has one, else the largest at the end."""
    named: set[str] = set()
    at_end: Counter[str] = Counter()
    for s in summaries:
        phases = s.get("phases") or []
        for p in phases:
            for w, info in (p.get("workloads") or {}).items():
                if isinstance(info, dict) and info.get("hot_pages_by_node"):
                    named.add(str(w))
        if phases:
            for w, info in (phases[-1].get("workloads") or {}).items():
                if _hot_total(info) > 0:
                    at_end[str(w)] += _hot_total(info)
    if "W" in named:
        return "W"
    if not at_end:
        return None
    return max(sorted(at_end), key=lambda w: at_end[w])


def run_label(summary: dict[str, Any]) -> str:
    """How a run is named in tables: its policy, or `<kernel> (real)` for a recorded kernel."""
    if summary.get("source") == "realkernel":
        return f"{summary.get('kernel') or summary.get('policy') or '?'} (real)"
    return str(summary.get("policy") or summary.get("kernel") or "?")


def _labels(summaries: Sequence[dict[str, Any]]) -> list[str]:
    """Unique labels: add the scenario, then the seed, then a counter where names collide."""
    labels = [run_label(s) for s in summaries]
    for extra in ("scenario", "seed"):
        dup = {lab for lab, c in Counter(labels).items() if c > 1}
        labels = [
            f"{lab} {extra}={s.get(extra)}" if lab in dup and s.get(extra) is not None else lab
            for lab, s in zip(labels, summaries, strict=True)
        ]
    seen: Counter[str] = Counter()
    out = []
    for lab in labels:
        seen[lab] += 1
        out.append(lab if seen[lab] == 1 else f"{lab} #{seen[lab]}")
    return out


def _num(x: Any, digits: int = 1) -> str:
    """Compact number: no trailing zeros, at most `digits` decimals."""
    if x is None:
        return "?"
    s = f"{float(x):.{digits}f}"
    if "." in s:  # strip trailing zeros of decimals only ("20" stays "20")
        s = s.rstrip("0").rstrip(".")
    return "0" if s in ("-0", "") else s


def _range(lo: Any, hi: Any, mb: bool = False) -> str | None:
    if lo is None and hi is None:
        return None

    def fmt(v: Any) -> str:
        if v is None:
            return "?"
        if mb:
            return _num(v, 0 if abs(float(v)) >= 10 else 1)
        return _num(v, 0)

    return f"{fmt(lo)}..{fmt(hi)}"


def _phase_order(summaries: Iterable[dict[str, Any]]) -> list[str]:
    order: dict[str, None] = {}
    for s in summaries:
        for p in s.get("phases") or []:
            order.setdefault(str(p.get("name", "")), None)
    return list(order)


def phase_rows(summaries: list[dict[str, Any]], *, node: int = 0) -> list[Row]:
    """One row per phase x run, phase-major; keys are the table headers plus META keys."""
    hot = hot_workload(summaries)
    labels = _labels(summaries)
    rows: list[Row] = []
    for name in _phase_order(summaries):
        for s, label in zip(summaries, labels, strict=True):
            for p in s.get("phases") or []:
                if str(p.get("name", "")) != name:
                    continue
                n = _by_node(p.get("nodes"), node) or {}
                delta = p.get("vmstat_delta") or {}
                row: Row = {
                    "phase": name,
                    "policy": label,
                    "t(s)": f"{_num(p.get('start_s'))}-{_num(p.get('end_s'))}",
                    f"node{node}_unrecl": _range(
                        n.get("unreclaimable_min"), n.get("unreclaimable_max")
                    ),
                    f"node{node}_free_MB": _range(
                        n.get("free_mb_min"), n.get("free_mb_max"), mb=True
                    ),
                    f"kswapd{node}_runs": n.get("kswapd_runs"),
                    f"kswapd{node}_cpu_s": n.get("kswapd_cpu_s"),
                }
                for c in COUNTERS:
                    row[f"d_{c}"] = delta.get(c)
                if hot is not None:
                    info = (p.get("workloads") or {}).get(hot)
                    cell = None
                    if isinstance(info, dict) and info.get("hot_pages_by_node"):
                        on = int(_by_node(info["hot_pages_by_node"], node) or 0)
                        cell = f"{on}/{_hot_total(info)}"
                    row[f"{hot}_hot_on_node{node}"] = cell
                for k in META:
                    row[k] = s.get(k)
                rows.append(row)
    return rows


def _columns(rows: Sequence[Row]) -> list[str]:
    cols: dict[str, None] = {}
    for r in rows:
        for k in r:
            if k not in META:
                cols.setdefault(k, None)
    return list(cols)


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.2f}"
    return str(v)


def markdown_table(summaries: list[dict[str, Any]]) -> str:
    """The comparison as a GitHub markdown table, phases grouped, runs side by side."""
    rows = phase_rows(summaries)
    if not rows:
        return "_no phases_\n"
    cols = _columns(rows)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        lines.append("| " + " | ".join(_cell(r.get(c)) for c in cols) + " |")
    return "\n".join(lines) + "\n"


def rich_table(summaries: list[dict[str, Any]]) -> Table:
    """The comparison as a rich Table (what `reclaimsim run` prints)."""
    rows = phase_rows(summaries)
    scenarios = sorted({str(s.get("scenario")) for s in summaries if s.get("scenario")})
    table = Table(title=f"{', '.join(scenarios) or 'runs'}: per-phase comparison")
    cols = _columns(rows)
    for c in cols:
        table.add_column(c, justify="left" if c in ("phase", "policy") else "right")
    for i, r in enumerate(rows):
        last = i + 1 == len(rows) or rows[i + 1]["phase"] != r["phase"]
        style = "italic cyan" if r.get("source") == "realkernel" else None
        table.add_row(*(_cell(r.get(c)) for c in cols), style=style, end_section=last)
    return table


# --- report -------------------------------------------------------------------------------------

LEGEND = (
    "Per phase window (both ends included): node0 `node_unreclaimable` min..max, node0 free MiB "
    "min..max, kswapd0 runs (`mm_vmscan_kswapd_wake`) and CPU seconds, `/proc/vmstat` counter "
    "deltas (`d_*`), and the hot set's pages on node0 / all its pages at the end of the window."
)

CSS = """
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.15em; margin-top: 1.6em; }
table { border-collapse: collapse; font-size: 0.82em; margin: 0.6em 0; }
th, td { border: 1px solid #ccc; padding: 2px 6px; }
th { background: #eef; position: sticky; top: 0; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.first td { border-top: 2px solid #666; }
tr.real td { font-style: italic; background: #f4fbff; }
td.phase { font-weight: bold; }
img { max-width: 100%; border: 1px solid #ddd; }
p.note { color: #555; font-size: 0.9em; max-width: 70em; }
"""


def _run_info(summary: dict[str, Any], label: str) -> list[str]:
    events = ", ".join(
        f"{e.get('name')}@{_num(e.get('t'))}"
        for e in summary.get("events") or []
        if isinstance(e, dict)
    )
    return [
        label,
        str(summary.get("scenario", "")),
        str(summary.get("kernel", "")),
        str(summary.get("source", "")),
        _cell(summary.get("seed")),
        _num(summary.get("sim_seconds")) if summary.get("sim_seconds") is not None else "",
        _num(summary.get("wall_seconds"), 2) if summary.get("wall_seconds") is not None else "",
        " ".join(str(p.get("name")) for p in summary.get("phases") or []),
        events,
    ]


RUN_COLS = ("run", "scenario", "kernel", "source", "seed", "sim s", "wall s", "phases", "events")


def _md_report(
    summaries: list[dict[str, Any]], labels: list[str], pngs: list[str | None], title: str
) -> str:
    out = [f"# reclaimsim report: {title}", "", "## Runs", ""]
    out.append("| " + " | ".join(RUN_COLS) + " |")
    out.append("|" + "---|" * len(RUN_COLS))
    for s, label in zip(summaries, labels, strict=True):
        out.append("| " + " | ".join(_run_info(s, label)) + " |")
    out += ["", "## Per-phase comparison", "", LEGEND, "", markdown_table(summaries)]
    out += ["## Timelines", ""]
    for label, png in zip(labels, pngs, strict=True):
        if png is not None:
            out += [f"### {label}", "", f"[timeline.png]({png})", "", f"![{label}]({png})", ""]
    return "\n".join(out).rstrip() + "\n"


def _html_report(
    summaries: list[dict[str, Any]], labels: list[str], images: list[Path | None], title: str
) -> str:
    e = html.escape
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>reclaimsim report: {e(title)}</title>",
        f"<style>{CSS}</style></head><body>",
        f"<h1>reclaimsim report: {e(title)}</h1>",
        "<h2>Runs</h2><table><tr>" + "".join(f"<th>{e(c)}</th>" for c in RUN_COLS) + "</tr>",
    ]
    for s, label in zip(summaries, labels, strict=True):
        out.append("<tr>" + "".join(f"<td>{e(v)}</td>" for v in _run_info(s, label)) + "</tr>")
    out.append("</table>")
    out.append(f'<h2>Per-phase comparison</h2><p class="note">{e(LEGEND.replace("`", ""))}</p>')
    rows = phase_rows(summaries)
    cols = _columns(rows)
    out.append("<table><tr>" + "".join(f"<th>{e(c)}</th>" for c in cols) + "</tr>")
    prev = None
    for r in rows:
        classes = []
        if r["phase"] != prev:
            classes.append("first")
        if r.get("source") == "realkernel":
            classes.append("real")
        cells = []
        for c in cols:
            v = r.get(c)
            if c == "phase":
                text, cls = (str(v) if r["phase"] != prev else ""), "phase"
            else:
                text, cls = _cell(v), ("" if c == "policy" else "num")
            cells.append(f'<td class="{cls}">{e(text)}</td>')
        prev = r["phase"]
        out.append(f'<tr class="{" ".join(classes)}">' + "".join(cells) + "</tr>")
    out.append("</table>")
    out.append("<h2>Timelines</h2>")
    for label, img in zip(labels, images, strict=True):
        if img is None:
            continue
        b64 = base64.b64encode(img.read_bytes()).decode("ascii")
        out.append(f"<h3>{e(label)}</h3>")
        out.append(f'<img alt="{e(label)} timeline" src="data:image/png;base64,{b64}">')
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def write_report(
    out_dir: Path, run_dirs: list[Path], recorded: list[dict[str, Any]] | None = None
) -> tuple[Path, Path]:
    """Write out_dir/report.md and out_dir/report.html for `run_dirs` (+ recorded summaries).

    A run directory without `timeline.png` gets one drawn. Recorded real-kernel summaries
    (`source: "realkernel"`) appear in the tables, labelled by their kernel, without a plot.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    run_dirs = [Path(d) for d in run_dirs]
    summaries = [load_summary(d) for d in run_dirs]
    images: list[Path | None] = []
    for d in run_dirs:
        png = d / "timeline.png"
        images.append(png if png.is_file() else timeline(d))
    for rec in recorded or []:
        summaries.append(rec)
        images.append(None)
    labels = _labels(summaries)
    links = [
        None if img is None else Path(os.path.relpath(img, out_dir)).as_posix() for img in images
    ]
    sim = [s for s in summaries if s.get("source") != "realkernel"] or summaries
    title = ", ".join(dict.fromkeys(str(s.get("scenario", "?")) for s in sim)) or "no runs"
    md = out_dir / "report.md"
    md.write_text(_md_report(summaries, labels, links, title))
    page = out_dir / "report.html"
    page.write_text(_html_report(summaries, labels, images, title))
    return md, page
