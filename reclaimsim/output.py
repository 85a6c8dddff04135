"""Write a finished run: summary.json, Parquet time series, trace.txt (docs/outputs.md).

Files are written into a temporary directory next to the target and renamed into place, so an
interrupted run leaves no half-written output.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import polars as pl

from .engine import Simulation
from .kernel.hugetlb import meminfo, node_meminfo


def kswapd_wakes(events: list[tuple[float, str, int, str]]) -> list[tuple[float, int, int]]:
    """(t, nid, runs) per ``mm_vmscan_kswapd_wake`` line; idle runs accounted at once carry
    ``repeat=N`` (Kswapd._repeat_idle_runs) and count N."""
    out = []
    for t, ev, nid, detail in events:
        if ev == "mm_vmscan_kswapd_wake":
            rep = detail.rsplit("repeat=", 1)
            out.append((t, nid, int(rep[1]) if len(rep) == 2 else 1))
    return out


def phase_summary(sim: Simulation) -> list[dict[str, Any]]:
    """Per-phase windows in the shape of the recordings' compare.md."""
    k = sim.k
    out = []
    zi = sim.samples["zoneinfo"]
    nodes = sim.samples["nodes"]
    wakes = kswapd_wakes(k.trace.events)
    for ph in sim.phases:
        if ph.end is None:
            continue
        a, b = ph.start, ph.end
        s0, s1 = ph.snap_start, ph.snap_end
        nd: dict[str, Any] = {}
        for pg in k.pgdats:
            n = pg.node_id
            unrecl = [r["node_unreclaimable"] for r in zi if r["node"] == n and a <= r["t"] <= b]
            unrecl += [s0["unreclaimable"][n], s1["unreclaimable"][n]]
            free = [r["free"] for r in nodes if r["node"] == n and a <= r["t"] <= b]
            free += [s0["free"][n], s1["free"][n]]
            nd[str(n)] = {
                "unreclaimable_min": min(unrecl),
                "unreclaimable_max": max(unrecl),
                "free_mb_min": round(min(free) * 4096 / 2**20, 3),
                "free_mb_max": round(max(free) * 4096 / 2**20, 3),
                # [start, end): a step at the closing instant runs after the phase closed
                "kswapd_runs": sum(c for (t, nid, c) in wakes if nid == n and a <= t < b),
                "kswapd_cpu_s": round(s1["kswapd_cpu_s"][n] - s0["kswapd_cpu_s"][n], 6),
            }
        keys = set(s0["vmstat"]) | set(s1["vmstat"])
        delta = {key: s1["vmstat"].get(key, 0) - s0["vmstat"].get(key, 0) for key in sorted(keys)}
        out.append(
            {
                "name": ph.name,
                "start_s": round(a, 6),
                "end_s": round(b, 6),
                "nodes": nd,
                "vmstat_delta": delta,
                "workloads": s1["placement"],
            }
        )
    return out


def metrics(sim: Simulation) -> dict[str, Any]:
    """Run-level metrics the scoreboard uses."""
    k = sim.k
    spans = [
        {
            "nid": s.nid,
            "start": round(s.start, 6),
            "end": None if s.end is None else round(s.end, 6),
            "reason": s.reason,
        }
        for s in k.hopeless_spans
    ]
    return {
        "hopeless_spans": spans,
        "kswapd_cpu_s": {str(pg.node_id): round(pg.kswapd.cpu_s, 6) for pg in k.pgdats},
        "kswapd_runs": {str(pg.node_id): pg.kswapd.runs for pg in k.pgdats},
        "oom_kills": k.vmstat.c.get("oom_kill", 0),
        "policy_ext": {str(pg.node_id): dict(pg.ext) for pg in k.pgdats},
    }


def summary(sim: Simulation) -> dict[str, Any]:
    """The summary.json document."""
    return {
        "scenario": sim.scenario.name,
        "policy": sim.policy.name,
        "kernel": sim.policy.name,
        "source": "reclaimsim",
        "seed": sim.seed,
        "lru": sim.scenario.machine.lru,
        "sim_seconds": round(sim.k.now, 6),
        "wall_seconds": round(sim.wall_seconds, 3),
        "events": sim.events,
        "phases": phase_summary(sim),
        "metrics": metrics(sim),
        "zones": [
            {
                "node": z.node_id,
                "zone": z.name,
                "managed": z.managed,
                "min": z.wmark(0),
                "low": z.wmark(1),
                "high": z.wmark(2),
                "promo": z.wmark(3),
                "lowmem_reserve": [int(x) for x in z.za.lowmem_reserve[z.idx]],
            }
            for z in sim.k.zones
        ],
        "min_free_kbytes": sim.k.sysctl.min_free_kbytes,
        "meminfo": meminfo(sim.k, sim.k.hugetlb),
        "node_meminfo": {
            str(pg.node_id): node_meminfo(sim.k.hugetlb, pg.node_id) for pg in sim.k.pgdats
        },
        "tiers": {"adistance": sim.k.tiers.adistance, "demotion_targets": sim.k.tiers.preferred},
    }


def write_run(sim: Simulation, out_dir: Path) -> Path:
    """Write ``out_dir`` (replacing it) atomically; returns it."""
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        (tmp / "summary.json").write_text(json.dumps(summary(sim), indent=1))
        for name, rows in sim.samples.items():
            df = pl.DataFrame(rows, infer_schema_length=None) if rows else pl.DataFrame()
            df.write_parquet(tmp / f"{name}.parquet")
        (tmp / "trace.txt").write_text("\n".join(sim.k.trace.lines) + "\n")
        from .report.plots import timeline

        timeline(tmp, tmp / "timeline.png")
        if out_dir.exists():
            shutil.rmtree(out_dir)
        tmp.rename(out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir
