"""Chanwon Park's report at the reporter's scale (scenarios/chanwon-2025-swap-exhausted.toml:
32 GiB DRAM + 4 x 128 GiB CXL, 8 GiB swap, a 500 GiB process, 4 KiB pages) under v6.12 and
v6.18: wall seconds, peak RSS, simulated seconds per wall second, kernel page operations
(allocated, scanned, migrated, swapped out and in) and the per-phase transitions. Each run is a
fresh process (peak RSS via resource.getrusage is per process).

    python bench/bench_chanwon_fullscale.py [--scale 1 [--frames]] [--policy v6.12 --policy v6.18]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from typing import Any

from _common import REPO, fmt_record_transitions

SCENARIO = REPO / "scenarios" / "chanwon-2025-swap-exhausted.toml"


def run_record(scale: int, policy: str, frames: bool = False) -> dict[str, Any]:
    """One run at ``1/scale`` (JIT warmed up first): the figures this bench prints.
    ``frames``: one frame stands for ``scale`` pages (bench/_common.scaled_scenario), which
    keeps the full-scale timeline; without it a smaller machine faults in faster than kswapd0
    fills swap, and node0 does not go hopeless."""
    from _common import page_ops, peak_rss_mib, scaled_scenario, transitions, warm_up

    from reclaimsim.engine import Simulation
    from reclaimsim.output import summary

    warm_up()
    sc = scaled_scenario(scale, path=SCENARIO, frames=frames)
    t0 = time.perf_counter()
    sim = Simulation(sc, policy)
    build = time.perf_counter() - t0
    sim.run()
    wall = time.perf_counter() - t0
    s = summary(sim)
    k = sim.k
    vm = k.vmstat.snapshot(k)
    ops = page_ops(vm)
    ops["pswpout"] = vm.get("pswpout", 0)
    ops["pswpin"] = vm.get("pswpin", 0)
    return {
        "scale": scale,
        "policy": policy,
        "pages": k.nr_pages,
        "wall_s": wall,
        "build_s": build,
        "sim_s": s["sim_seconds"],
        "peak_rss_mib": peak_rss_mib(),
        "page_ops": ops,
        "transitions": {
            name: [list(map(list, nodes)), oom] for name, (nodes, oom) in transitions(s).items()
        },
        "phases": [(p["name"], p["start_s"], p["end_s"]) for p in s["phases"]],
        "hopeless_spans": s["metrics"]["hopeless_spans"],
    }


def run_in_child(scale: int, policy: str, frames: bool = False) -> dict[str, Any]:
    bench = str(REPO / "bench")
    code = (
        f"import json,sys;sys.path.insert(0,{bench!r});"
        f"from bench_chanwon_fullscale import run_record;"
        f"print(json.dumps(run_record({scale},{policy!r},{frames!r})))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--scale", type=int, default=1, help="divide every memory size by this")
    ap.add_argument("--frames", action="store_true", help="a frame = SCALE pages (same timeline)")
    ap.add_argument("--policy", action="append", help="default: v6.12, v6.18")
    args = ap.parse_args()
    for pol in args.policy or ["v6.12", "v6.18"]:
        r = run_in_child(args.scale, pol, args.frames)
        ops = r["page_ops"]
        print(
            f"{pol}: 1/{r['scale']} ({r['pages']} pages) wall {r['wall_s']:.1f} s "
            f"(state build {r['build_s']:.1f} s), peak RSS {r['peak_rss_mib']:.0f} MiB, "
            f"sim {r['sim_s']:.0f} s = {r['sim_s'] / r['wall_s']:.1f} sim s per wall s"
        )
        print(
            f"  page ops {ops['total']:,} ({ops['total'] / r['wall_s']:.3g}/s): allocated "
            f"{ops['allocated']:,} scanned {ops['scanned']:,} migrated {ops['migrated']:,} "
            f"hint faults {ops['hint_faults']:,}; pswpout {ops['pswpout']:,} "
            f"pswpin {ops['pswpin']:,}"
        )
        print("  phases " + " ".join(f"{n}=[{a:.0f},{b:.0f}]" for n, a, b in r["phases"]))
        spans = [
            f"node{s['nid']} {s['start']:.1f}-"
            + (f"{s['end']:.1f} ({s['reason']})" if s["end"] is not None else "end")
            for s in r["hopeless_spans"]
        ]
        print("  hopeless: " + (", ".join(spans) or "never"))
        print("  " + fmt_record_transitions(r))


if __name__ == "__main__":
    main()
