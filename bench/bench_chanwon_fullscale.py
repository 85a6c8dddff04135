"""Chanwon Park's report at the reporter's scale (scenarios/chanwon-2025-swap-exhausted.toml:
32 GiB DRAM + 4 x 128 GiB CXL, 8 GiB swap, a 500 GiB process, 4 KiB pages) under v6.12 and
v6.18: wall seconds, peak RSS, simulated seconds per wall second, kernel page operations
(allocated, scanned, migrated, swapped out and in) and the per-phase transitions. Each run is a
fresh process (peak RSS via resource.getrusage is per process).

    python bench/bench_chanwon_fullscale.py [--scale 1 [--frames]] [--policy v6.12 --policy v6.18]
"""

from __future__ import annotations

import argparse

from _common import REPO, fmt_record_transitions, run_in_child

SCENARIO = REPO / "scenarios" / "chanwon-2025-swap-exhausted.toml"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--scale", type=int, default=1, help="divide every memory size by this")
    ap.add_argument("--frames", action="store_true", help="a frame = SCALE pages (same timeline)")
    ap.add_argument("--policy", action="append", help="default: v6.12, v6.18")
    args = ap.parse_args()
    for pol in args.policy or ["v6.12", "v6.18"]:
        r = run_in_child(args.scale, pol, None, args.frames, str(SCENARIO))
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
