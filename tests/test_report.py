"""Tests of reclaimsim.report on a small synthetic run directory (docs/outputs.md contract)."""

from __future__ import annotations

import base64
import json
import re
import struct
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from rich.console import Console

from reclaimsim.report import (
    hot_workload,
    markdown_table,
    phase_rows,
    phase_spans,
    rich_table,
    timeline,
    write_report,
)

DT = 0.5
T_END = 60.0
PHASES = (("p1", 5.0, 25.0), ("p3", 35.0, 55.0))
HOT_TOTAL = 32768


def _phase_of(t: float) -> str:
    for name, t0, t1 in PHASES:
        if t0 <= t <= t1:
            return name
    return ""


def _summary(policy: str, scale: int) -> dict[str, Any]:
    """A summary.json; `scale` makes the policies' numbers differ."""
    return {
        "scenario": "synthetic-hopeless",
        "policy": policy,
        "seed": 1,
        "sim_seconds": T_END,
        "wall_seconds": 0.25,
        "kernel": policy,
        "source": "reclaimsim",
        "events": [
            {"t": 5.0, "name": "PHASE1_START"},
            {"t": 20.0, "name": "NODE0_HOPELESS"},
            {"t": 35.0, "name": "W_READY"},
        ],
        "phases": [
            {
                "name": "p1",
                "start_s": 5.0,
                "end_s": 25.0,
                "nodes": {
                    "0": {
                        "unreclaimable_min": 0,
                        "unreclaimable_max": 1,
                        "free_mb_min": 13.0,
                        "free_mb_max": 1811.0,
                        "kswapd_runs": 100 * scale,
                        "kswapd_cpu_s": 7.31 * scale,
                    },
                    "1": {
                        "unreclaimable_min": 0,
                        "unreclaimable_max": 0,
                        "free_mb_min": 22.0,
                        "free_mb_max": 981.0,
                        "kswapd_runs": 3,
                        "kswapd_cpu_s": 0.1,
                    },
                },
                "vmstat_delta": {
                    "pgscan_kswapd": 1919113 * scale,
                    "pgsteal_kswapd": 5100 * scale,
                    "pgdemote_kswapd": 5076 * scale,
                    "pgdemote_direct": 0,
                    "pgpromote_candidate": 148473,
                    "pgpromote_success": 190 * scale,
                    "numa_hint_faults": 291098,
                    "oom_kill": 0,
                },
                "workloads": {},
            },
            {
                "name": "p3",
                "start_s": 35.0,
                "end_s": 55.0,
                "nodes": {
                    "0": {
                        "unreclaimable_min": scale - 1,
                        "unreclaimable_max": scale - 1,
                        "free_mb_min": 16.4,
                        "free_mb_max": 28.0,
                        "kswapd_runs": 0 if scale == 2 else 23,
                        "kswapd_cpu_s": 0.0 if scale == 2 else 2.07,
                    },
                },
                "vmstat_delta": {
                    "pgscan_kswapd": 0 if scale == 2 else 490364,
                    "pgsteal_kswapd": 0 if scale == 2 else 20000,
                    "pgdemote_kswapd": 0 if scale == 2 else 17461,
                    "pgdemote_direct": 0,
                    "pgpromote_candidate": 126770,
                    "pgpromote_success": 4012 if scale == 2 else 19432,
                    "numa_hint_faults": 126770,
                    "oom_kill": 0,
                },
                "workloads": {
                    "W": {
                        "resident_pages_by_node": {"0": 4100, "1": 40000},
                        "hot_pages_by_node": (
                            {"0": 4012, "1": HOT_TOTAL - 4012}
                            if scale == 2
                            else {"0": 19432, "1": HOT_TOTAL - 19432}
                        ),
                    },
                    "R": {"resident_pages_by_node": {"0": 100, "1": 0}},
                },
            },
        ],
    }


def make_run(root: Path, policy: str = "v6.18", scale: int = 1) -> Path:
    """Write a run directory root/<policy>/ following docs/outputs.md."""
    d = root / policy
    d.mkdir(parents=True)
    t = np.round(np.arange(0.0, T_END + DT / 2, DT), 3)
    phase = [_phase_of(x) for x in t]
    n = len(t)
    rng = np.random.default_rng(scale)
    # node0 fills up in p1, stays near its watermarks, recovers briefly; node1 fills a bit.
    free0 = np.where(t < 5, 460_000, np.maximum(3_400, 460_000 - (t - 5) * 40_000)).astype(int)
    free0 = np.where((t > 26) & (t < 34), 470_000, free0)
    free0 = free0 + rng.integers(0, 800, n)
    free1 = (250_000 - np.clip(t - 10, 0, 40) * 1_000).astype(int)
    hopeless = ((t >= 20) & (t < 35 + 10 * (scale - 1))).astype(int)
    failures = np.where(hopeless == 1, 16, np.clip((t - 10) // 1, 0, 15)).astype(int)
    failures = np.where(t < 10, 0, failures)
    run0 = (t >= 8) & (t < 20)
    state0 = np.where(run0, "run", np.where((t >= 20) & (t < 22), "nap", "sleep"))
    cpu0 = np.cumsum(np.where(run0, 0.45 * DT, 0.0))
    promote = np.cumsum(np.where(t >= 35, 800 // scale, 0) * DT).astype(int)
    demote = np.cumsum(np.where(run0, 250, 0) * DT).astype(int)
    hints = np.cumsum(np.where(t >= 12, 6_000, 0) * DT).astype(int)

    pl.DataFrame(
        {
            "t": t,
            "phase": phase,
            "nr_free_pages": free0 + free1,
            "pgscan_kswapd": np.cumsum(np.where(run0, 90_000, 0) * DT).astype(int),
            "pgsteal_kswapd": demote,
            "pgdemote_kswapd": demote,
            "pgdemote_direct": np.zeros(n, dtype=int),
            "pgpromote_success": promote,
            "pgpromote_candidate": hints // 2,
            "numa_hint_faults": hints,
            "oom_kill": np.zeros(n, dtype=int),
        }
    ).with_columns(pl.exclude("t", "phase").cast(pl.Int64)).write_parquet(d / "vmstat.parquet")

    zrows: list[dict[str, Any]] = []
    for i, ti in enumerate(t):
        for node, zone, free, mn, managed in (
            (0, "DMA32", 1_000, 120, 200_000),
            (0, "Normal", int(free0[i]) - 1_000, 1_570, 290_000),
            (1, "Normal", int(free1[i]), 1_100, 257_000),
        ):
            zrows.append(
                {
                    "t": float(ti),
                    "phase": phase[i],
                    "node": node,
                    "zone": zone,
                    "free": free,
                    "boost": 0,
                    "min": mn,
                    "low": mn * 5 // 4,
                    "high": mn * 3 // 2,
                    "promo": mn * 7 // 4,
                    "managed": managed,
                    "node_unreclaimable": int(hopeless[i]) if node == 0 else 0,
                    "kswapd_failures": int(failures[i]) if node == 0 else 0,
                    "nr_zone_inactive_anon": 0,
                    "nr_zone_active_anon": 0,
                    "nr_zone_inactive_file": 0,
                    "nr_zone_active_file": 0,
                }
            )
    pl.DataFrame(zrows).write_parquet(d / "zoneinfo.parquet")

    nrows: list[dict[str, Any]] = []
    for i, ti in enumerate(t):
        for node in (0, 1):
            nrows.append(
                {
                    "t": float(ti),
                    "phase": phase[i],
                    "node": node,
                    "free": int(free0[i] if node == 0 else free1[i]),
                    "kswapd_state": str(state0[i]) if node == 0 else "sleep",
                    "kswapd_cpu_s": float(cpu0[i]) if node == 0 else 0.0,
                    "kswapd_runs": int(i // 4) if node == 0 else 0,
                    "pgpromote_success": int(promote[i]) if node == 0 else 0,
                    "pgpromote_candidate": 0,
                    "pgdemote_kswapd": int(demote[i]) if node == 0 else 0,
                    "pgdemote_direct": 0,
                    "pgsteal_kswapd": int(demote[i]) if node == 0 else 0,
                    "pgscan_kswapd": 0,
                }
            )
    pl.DataFrame(nrows).write_parquet(d / "nodes.parquet")

    prows: list[dict[str, Any]] = []
    for i, ti in enumerate(t):
        if ti < 35:
            continue
        on0 = min(HOT_TOTAL, int(promote[i]))
        for region, hot, pages0, pages1 in (
            ("hot", True, on0, HOT_TOTAL - on0),
            ("cold", False, 0, 8_000),
        ):
            for node, pages in ((0, pages0), (1, pages1)):
                prows.append(
                    {
                        "t": float(ti),
                        "phase": phase[i],
                        "workload": "W",
                        "region": region,
                        "hot": hot,
                        "node": node,
                        "pages": pages,
                    }
                )
    pl.DataFrame(prows).write_parquet(d / "placement.parquet")
    (d / "trace.txt").write_text("kswapd0-0 [000] 8.000000: mm_vmscan_kswapd_wake: nid=0 order=0\n")
    (d / "summary.json").write_text(json.dumps(_summary(policy, scale), indent=1))
    return d


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    assert data[12:16] == b"IHDR"
    w, h = struct.unpack(">II", data[16:24])
    return w, h


def parse_md_table(md: str) -> list[dict[str, str]]:
    """The first markdown table in `md` as dicts keyed by header."""
    lines = [ln for ln in md.splitlines() if ln.startswith("|")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    assert set(lines[1]) <= set("|-: ")
    return [
        dict(zip(header, (c.strip() for c in ln.strip("|").split("|")), strict=True))
        for ln in lines[2:]
    ]


@pytest.fixture
def run(tmp_path: Path) -> Path:
    return make_run(tmp_path / "out")


@pytest.fixture
def two_runs(tmp_path: Path) -> list[Path]:
    root = tmp_path / "out"
    return [make_run(root, "v6.12", scale=2), make_run(root, "v6.18", scale=1)]


# --- timeline -----------------------------------------------------------------------------------


def test_timeline_writes_sane_png(run: Path) -> None:
    import matplotlib.image as mpimg

    out = timeline(run)
    assert out == run / "timeline.png"
    assert out.stat().st_size > 20_000
    w, h = png_size(out)
    assert 800 <= w <= 2400 and 900 <= h <= 3000, (w, h)
    img = mpimg.imread(out)
    # not a blank canvas: many distinct colours (lines, shading, text)
    colours = np.unique((img[..., :3] * 255).astype(np.uint8).reshape(-1, 3), axis=0)
    assert len(colours) > 50


def test_timeline_missing_placement_drops_a_panel(run: Path, tmp_path: Path) -> None:
    full = png_size(timeline(run, tmp_path / "full.png"))
    (run / "placement.parquet").unlink()
    out = timeline(run, tmp_path / "plots")  # a directory: timeline.png inside it
    assert out == tmp_path / "plots" / "timeline.png"
    w, h = png_size(out)
    assert w == full[0]
    assert h < full[1]  # one panel fewer


def test_timeline_missing_columns_and_files(run: Path) -> None:
    z = pl.read_parquet(run / "zoneinfo.parquet").drop("kswapd_failures", "min", "promo")
    z.write_parquet(run / "zoneinfo.parquet")
    nd = pl.read_parquet(run / "nodes.parquet").drop("kswapd_state")
    nd.write_parquet(run / "nodes.parquet")
    (run / "summary.json").unlink()
    out = timeline(run)
    assert png_size(out)[1] > 900  # all five panels still have something to show


def test_timeline_zero_rows(run: Path) -> None:
    for name in ("vmstat", "zoneinfo", "nodes", "placement"):
        p = run / f"{name}.parquet"
        pl.read_parquet(p).clear().write_parquet(p)
    out = timeline(run)
    w, h = png_size(out)
    assert w > 500 and 0 < h < 600  # a single "no samples" panel


def test_phase_spans() -> None:
    t = [0, 1, 2, 3, 4, 5, 6, 7]
    ph = ["", "p1", "p1", "", "p2", "p2", "p1", None]
    assert phase_spans(t, ph) == [("p1", 1.0, 2.0), ("p2", 4.0, 5.0), ("p1", 6.0, 6.0)]
    assert phase_spans([], []) == []


# --- comparison ---------------------------------------------------------------------------------


def test_phase_rows(two_runs: list[Path]) -> None:
    sums = [json.loads((d / "summary.json").read_text()) for d in two_runs]
    rows = phase_rows(sums)
    assert [(r["phase"], r["policy"]) for r in rows] == [
        ("p1", "v6.12"),
        ("p1", "v6.18"),
        ("p3", "v6.12"),
        ("p3", "v6.18"),
    ]
    p1_612 = rows[0]
    assert p1_612["t(s)"] == "5-25"
    assert p1_612["node0_unrecl"] == "0..1"
    assert p1_612["node0_free_MB"] == "13..1811"
    assert p1_612["kswapd0_runs"] == 200
    assert p1_612["kswapd0_cpu_s"] == pytest.approx(14.62)
    assert p1_612["d_pgscan_kswapd"] == 2 * 1919113
    assert p1_612["W_hot_on_node0"] is None  # W does not exist yet in p1
    assert rows[2]["W_hot_on_node0"] == f"4012/{HOT_TOTAL}"
    assert rows[3]["W_hot_on_node0"] == f"19432/{HOT_TOTAL}"
    assert rows[2]["node0_free_MB"] == "16..28"  # MiB >= 10 shown as integers, like compare.md
    assert rows[2]["node0_unrecl"] == "1..1"


def test_markdown_table(two_runs: list[Path]) -> None:
    sums = [json.loads((d / "summary.json").read_text()) for d in two_runs]
    md = markdown_table(sums)
    rows = parse_md_table(md)
    assert len(rows) == 4
    by = {(r["phase"], r["policy"]): r for r in rows}
    assert set(by) == {("p1", "v6.12"), ("p1", "v6.18"), ("p3", "v6.12"), ("p3", "v6.18")}
    # grouped by phase: both p1 rows come before any p3 row
    assert [r["phase"] for r in rows] == ["p1", "p1", "p3", "p3"]
    assert by[("p1", "v6.18")]["d_pgscan_kswapd"] == "1919113"
    assert by[("p1", "v6.12")]["d_pgscan_kswapd"] == "3838226"
    assert by[("p1", "v6.18")]["kswapd0_cpu_s"] == "7.31"
    assert by[("p3", "v6.12")]["d_pgpromote_success"] == "4012"
    assert by[("p3", "v6.12")]["W_hot_on_node0"] == "4012/32768"
    assert by[("p3", "v6.18")]["W_hot_on_node0"] == "19432/32768"
    assert by[("p3", "v6.18")]["kswapd0_runs"] == "23"
    assert by[("p1", "v6.18")]["W_hot_on_node0"] == ""
    for col in ("d_pgsteal_kswapd", "d_pgdemote_direct", "d_numa_hint_faults", "d_oom_kill"):
        assert col in rows[0]


def test_hot_workload_generalises() -> None:
    s = _summary("v6.18", 1)
    for p in s["phases"]:
        if "W" in p["workloads"]:
            p["workloads"] = {
                "db": p["workloads"].pop("W"),
                "idle": {"hot_pages_by_node": {"0": 1, "1": 0}},
                **p["workloads"],
            }
    assert hot_workload([s]) == "db"
    rows = parse_md_table(markdown_table([s]))
    assert rows[-1]["db_hot_on_node0"] == "19432/32768"
    assert "W_hot_on_node0" not in rows[-1]
    s["phases"][-1]["workloads"] = {}
    assert hot_workload([s]) is None
    assert not any("_hot_on_node" in k for k in phase_rows([s])[0])


def test_rich_table(two_runs: list[Path]) -> None:
    sums = [json.loads((d / "summary.json").read_text()) for d in two_runs]
    console = Console(record=True, width=400)
    console.print(rich_table(sums))
    text = console.export_text()
    assert "v6.12" in text and "v6.18" in text
    assert "3838226" in text and "19432/32768" in text


# --- report -------------------------------------------------------------------------------------


def test_write_report(two_runs: list[Path], tmp_path: Path) -> None:
    out_dir = two_runs[0].parent
    real = _summary("6.12.117+deb12-amd64", 1)
    real.update(source="realkernel", kernel="6.12.117+deb12-amd64", policy="recorded")
    md_path, html_path = write_report(out_dir, two_runs, recorded=[real])
    assert md_path == out_dir / "report.md" and html_path == out_dir / "report.html"
    md = md_path.read_text()
    assert "synthetic-hopeless" in md.splitlines()[0]
    assert "(v6.12/timeline.png)" in md and "(v6.18/timeline.png)" in md
    assert (two_runs[0] / "timeline.png").is_file()  # drawn because it was missing
    table = parse_md_table(md[md.index("## Per-phase") :])
    labels = [r["policy"] for r in table if r["phase"] == "p1"]
    assert labels == ["v6.12", "v6.18", "6.12.117+deb12-amd64 (real)"]
    page = html_path.read_text()
    assert page.count("data:image/png;base64,") == 2
    assert "<style>" in page and "3838226" in page and "(real)" in page
    b64 = re.search(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert b64 is not None
    assert base64.b64decode(b64.group(1)) == (two_runs[0] / "timeline.png").read_bytes()


def test_whole_numbers_keep_their_zeros():
    """A free range of 20..30 MiB prints as 20..30, not 2..3."""
    from reclaimsim.report.compare import _range

    assert _range(19.6, 30.0, mb=True) == "20..30"
    assert _range(100, 200) == "100..200"
