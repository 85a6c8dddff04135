"""The full-scale seed storyboard (scenarios/byungchul-2024-hopeless-node.toml: 500 GiB DRAM +
100 GiB CXL in 4 KiB pages) under v6.12 and v6.18: wall seconds, peak RSS, simulated seconds
per wall second, kernel page operations and the per-phase transitions. Each run is a fresh
process (peak RSS via resource.getrusage is per process).

    python bench/bench_fullscale.py [--scale 1] [--duration S] [--policy v6.12 --policy v6.18]
                                    [--lru mglru]

``--lru mglru`` runs it with multi-gen LRU (``machine.lru``); under this storyboard MGLRU's
direct reclaim scans ~4000x the machine's pages (docs/performance.md), so start at
``--scale 64``.
"""

from __future__ import annotations

import argparse

from _common import fmt_record_transitions, run_in_child


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--scale", type=int, default=1, help="divide every memory size by this")
    ap.add_argument("--duration", type=float, default=None, help="cap on simulated seconds")
    ap.add_argument("--policy", action="append", help="default: v6.12, v6.18")
    ap.add_argument("--lru", choices=["classic", "mglru"], default=None, help="machine.lru")
    args = ap.parse_args()
    for pol in args.policy or ["v6.12", "v6.18"]:
        r = run_in_child(args.scale, pol, args.duration, lru=args.lru)
        ops = r["page_ops"]
        print(
            f"{pol}: 1/{r['scale']} ({r['pages']} pages) wall {r['wall_s']:.1f} s "
            f"(CPU user {r['user_s']:.1f} s, sys {r['sys_s']:.1f} s; state build "
            f"{r['build_s']:.1f} s), peak RSS {r['peak_rss_mib']:.0f} MiB, "
            f"state {r['state_bytes_per_page']:.1f} B/page, sim {r['sim_s']:.0f} s = "
            f"{r['sim_s'] / r['wall_s']:.1f} sim s per wall s"
        )
        print(
            f"  page ops {ops['total']:,} ({ops['total'] / r['wall_s']:.3g}/s): allocated "
            f"{ops['allocated']:,} scanned {ops['scanned']:,} migrated {ops['migrated']:,} "
            f"hint faults {ops['hint_faults']:,} (pte updates {ops['pte_updates']:,})"
        )
        print("  phases " + " ".join(f"{n}=[{a:.0f},{b:.0f}]" for n, a, b in r["phases"]))
        print("  " + fmt_record_transitions(r))


if __name__ == "__main__":
    main()
