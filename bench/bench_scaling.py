"""Scaling series of the full-scale seed scenario (1/64, 1/8, 1/1 by default): wall seconds,
kernel page operations, the ratio of wall growth to page-operation growth between steps
(<= ~1 means the simulator scales no faster than the kernel's work), and the per-phase
transitions at each scale (they must be identical).

    python bench/bench_scaling.py [--scales 64,8,1] [--policy v6.12] [--duration S]
"""

from __future__ import annotations

import argparse

from _common import fmt_record_transitions, run_in_child


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--scales", default="64,8,1")
    ap.add_argument("--policy", default="v6.12")
    ap.add_argument("--duration", type=float, default=None, help="cap on simulated seconds")
    ap.add_argument(
        "--frames",
        action="store_true",
        help="a frame stands for `scale` pages: costs x scale (the full-scale timeline)",
    )
    args = ap.parse_args()
    prev = None
    trans = {}
    print(
        f"{'scale':>6s} {'pages':>11s} {'wall_s':>8s} {'user_s':>7s} {'sys_s':>6s} "
        f"{'rss_MiB':>8s} {'page_ops':>14s} {'ns/op':>6s} {'wall_x':>7s} {'ops_x':>7s} "
        f"{'ratio':>6s} {'user_ratio':>10s}"
    )
    for s in (int(x) for x in args.scales.split(",")):
        r = run_in_child(s, args.policy, args.duration, args.frames)
        ops = r["page_ops"]["total"]
        wx = ox = ratio = uratio = float("nan")
        if prev is not None:
            wx = r["wall_s"] / prev["wall_s"]
            ox = ops / max(1, prev["page_ops"]["total"])
            ratio = wx / ox
            # user CPU alone: the simulator's own work, without the first touch of its memory
            # (system time, ~2 s per GiB on the project VM)
            uratio = r["user_s"] / max(1e-9, prev["user_s"]) / ox
        print(
            f"{'1/' + str(s):>6s} {r['pages']:11d} {r['wall_s']:8.1f} {r['user_s']:7.1f} "
            f"{r['sys_s']:6.1f} {r['peak_rss_mib']:8.0f} {ops:14,d} "
            f"{r['wall_s'] / max(1, ops) * 1e9:6.0f} {wx:7.2f} {ox:7.2f} {ratio:6.2f} "
            f"{uratio:10.2f}"
        )
        print(f"{'':6s} {fmt_record_transitions(r)}")
        trans[s] = r["transitions"]
        prev = r
    same = len({str(t) for t in trans.values()}) == 1
    print("per-phase transitions identical at every scale:", same)
    if not same:
        # which phase and node differ: node0 in p2-p4 is the storyboard's subject; p1/p1h
        # hold the fill-vs-kswapd race (docs/performance.md, "Scale and the p1 race")
        first = next(iter(trans.values()))
        for ph in first:
            nodes = {s: trans[s][ph][0] if ph in trans[s] else None for s in trans}
            ooms = {s: trans[s][ph][1] if ph in trans[s] else None for s in trans}
            for i, node in enumerate(first[ph][0]):
                vals = {s: (n[i] if n is not None else None) for s, n in nodes.items()}
                if len({str(v) for v in vals.values()}) > 1:
                    got = ", ".join(f"1/{s}: {v[1:] if v else '-'}" for s, v in vals.items())
                    print(f"  {ph} node{node[0]} (unreclaimable min, max, kswapd ran): {got}")
            if len(set(ooms.values())) > 1:
                print(f"  {ph} OOM kill: " + ", ".join(f"1/{s}: {v}" for s, v in ooms.items()))


if __name__ == "__main__":
    main()
