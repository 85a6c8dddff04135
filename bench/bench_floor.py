"""What this machine allows the engine's page layout at full scale: the cost floor of each
kind of kernel page operation, measured with the engine's own per-page arrays at the
machine's size, set against the full-scale storyboard's work and its measured wall time.

Each floor is the per-page work with nothing around it, in the best order:

- scan: the classic inactive list's per-page loop (``isolate_lru`` + ``check_references``,
  the engine's kernels, and the putback onto a list head) over a list in frame order;
- hint fault: the reads and writes a NUMA hinting fault makes (PTE -> frame, rmap check,
  flags, scan stamp, last look) on a fully mapped machine, no migration: pages in address
  order (one ``change_prot_numa`` run faulted in order, the best case) and at random;
- allocation: a fresh frame's state, PTE and LRU push, frames in order, memory already
  touched;
- first touch: wall seconds per GiB of fresh anonymous memory in 4 KiB pages (the engine's
  arrays: ``mem_map.base_pages``).

The bound is what the storyboard's page operations cost at those floors (faults in address
order), with its peak RSS first-touched once; the engine's Python, batching, demotion,
promotion and NUMA scans come on top. The budget line is what 2 GiB of peak RSS leaves per
frame once the interpreter, numpy, numba and the engine's modules are loaded (a whole run's
JIT code adds more, so the true budget is a little smaller).

    python bench/bench_floor.py [--scale 1] [--policy v6.12] [--no-run]

At full scale the floors' arrays take ~5.1 GiB (after the storyboard's child has exited).
"""

from __future__ import annotations

import argparse
import os
import resource
import time
from statistics import median

import numpy as np
from _common import run_in_child, scaled_scenario
from numba import njit

from reclaimsim.kernel import mem_map as mm
from reclaimsim.kernel.state import MemMap, Regions

GIB = 1 << 30


@njit(cache=True)
def _scan_floor(d_src, m_src, d_dst, m_dst, flags, lru_pos, t_look, gvp, span_owner, rate,
                lru_count, zone_starts, limit_pfn, now_ms, rs, bpfn, bres):  # fmt: skip
    """Isolate 32 from the tail, folio_check_references, put back on the other list's head."""
    mask = d_dst.size - 1
    total = 0
    while True:
        taken, scanned, _sk = mm.isolate_lru(
            d_src, m_src, flags, lru_pos, gvp, t_look, np.uint8(0), 32, limit_pfn, bpfn,
            lru_count, zone_starts, 0,
        )  # fmt: skip
        if scanned == 0:
            return total
        mm.check_references(bpfn, taken, flags, t_look, gvp, span_owner, rate, now_ms, bres, rs)
        for i in range(taken):
            pfn = bpfn[i]
            q = m_dst[0]
            d_dst[q & mask] = pfn
            m_dst[0] = q + 1
            lru_pos[pfn] = q & mm.POS_MASK
            flags[pfn] = (flags[pfn] & ~mm.F_LRU_MASK) | mm.F_ONLRU
            lru_count[0, 0] += 1
        total += scanned


@njit(cache=True)
def _fault_floor(order, v2p, gvp, flags, stamp, t_look, now_ms):
    """Per fault: the PTE, the frame's rmap word (is the PTE still its), PROT_NONE, the scan
    time (hint-fault latency), the last look; clear PROT_NONE, note the look."""
    hits = 0
    quick = 0
    for i in range(order.size):
        g = order[i]
        pfn = v2p[g]
        if gvp[pfn] == g and (flags[pfn] & mm.F_PROTNONE) != 0:
            hits += 1
            if now_ms - stamp[pfn] < 1000:  # numa_hint_fault_latency() under the threshold
                quick += 1
            flags[pfn] = flags[pfn] & ~mm.F_PROTNONE
            t_look[pfn] = now_ms
    return hits, quick


@njit(cache=True)
def _alloc_floor(n, gvp, flags, t_look, lru_pos, v2p, d, m, now_ms):
    """Per page: rmap word, flags, last look, PTE, LRU head push."""
    mask = d.size - 1
    for pfn in range(n):
        gvp[pfn] = pfn
        flags[pfn] = mm.F_ONLRU
        t_look[pfn] = now_ms
        v2p[pfn] = pfn
        q = m[0]
        d[q & mask] = pfn
        m[0] = q + 1
        lru_pos[pfn] = q & mm.POS_MASK


def _clock() -> tuple[float, float]:
    return time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF).ru_stime


def _first_touch(gib: int) -> tuple[float, float]:
    """(wall, system) seconds per GiB of fresh memory written once per 4 KiB page."""
    with mm.base_pages():
        a = np.empty(gib * GIB, dtype=np.uint8)
    w0, s0 = _clock()
    a[::4096] = 1
    w1, s1 = _clock()
    del a
    return (w1 - w0) / gib, (s1 - s0) / gib


def _rss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def floors(n: int, seed: int = 1, repeat: int = 3) -> dict[str, float]:
    """Measure the floors on arrays of ``n`` frames (ns per page, s per GiB), medians of
    ``repeat`` passes."""
    out: dict[str, float] = {}
    with mm.base_pages():
        gvp = np.empty(n, np.int32)
        flags = np.empty(n, np.uint8)
        t_look = np.empty(n, np.uint32)
        lru_pos = np.empty(n, np.uint32)
        stamp = np.zeros(n, np.uint32)
        v2p = np.empty(n, np.int32)
        cap = 1 << int(n - 1).bit_length()
        d = [np.empty(cap, np.int32), np.empty(cap, np.int32)]
    m = [np.zeros(2, np.int64), np.zeros(2, np.int64)]
    for ring in d:
        ring[:] = -1  # first touch here, not in the timed passes (they wrap around the rings)
    # the first pass first-touches the memory (not timed)
    ts = []
    for _ in range(repeat + 1):
        m[0][:] = 0
        t0 = time.perf_counter()
        _alloc_floor(n, gvp, flags, t_look, lru_pos, v2p, d[0], m[0], 0)
        ts.append(time.perf_counter() - t0)
    out["alloc_ns"] = median(ts[1:]) / n * 1e9
    span_owner = np.zeros((n >> mm.SPAN_SHIFT) + 2, np.int16)  # every frame: region 0
    span_owner[0] = -1
    rate = np.array([0.05])  # touches per page per second: most pages come out cold
    lru_count = np.full((1, 4), n, np.int64)
    zone_starts = np.zeros(1, np.int64)
    rs = mm.seed_rng(seed)
    bpfn = np.empty(32, np.int64)
    bres = np.empty(32, np.int64)
    ts = []
    for i in range(repeat):
        # one whole pass from one list onto the other, a minute later each time (so the
        # draws are taken, as in a pass over pages last looked at a while ago)
        a, b = i % 2, 1 - i % 2
        t0 = time.perf_counter()
        now = 60_000 * (i + 1)
        scanned = _scan_floor(d[a], m[a], d[b], m[b], flags, lru_pos, t_look, gvp, span_owner,
                              rate, lru_count, zone_starts, n, now, rs, bpfn, bres)  # fmt: skip
        if scanned != n:  # the engine's isolate_lru no longer takes this list as valid
            raise RuntimeError(f"scan floor: {scanned} of {n} pages taken off the list")
        ts.append((time.perf_counter() - t0) / n)
    out["scan_ns"] = median(ts) * 1e9
    nf = min(n, 50_000_000)
    rng = np.random.default_rng(seed)
    for name, order in (
        ("fault_seq_ns", np.arange(nf, dtype=np.int32)),
        # each page faults once per protection: distinct pages spread over the machine, in
        # random order
        ("fault_rand_ns", (rng.permutation(nf) * (n // nf)).astype(np.int32)),
    ):
        ts = []
        for _ in range(repeat):
            flags |= mm.F_PROTNONE
            t0 = time.perf_counter()
            hits, _quick = _fault_floor(order, v2p, gvp, flags, stamp, t_look, 1000)
            ts.append(time.perf_counter() - t0)
            if hits != nf:  # every page is mapped, protected and was scanned just now
                raise RuntimeError(f"fault floor: {hits} of {nf} faults found their page")
        out[name] = median(ts) / nf * 1e9
    out["arrays_mib"] = sum(x.nbytes for x in (gvp, flags, t_look, lru_pos, stamp, v2p, *d)) / 2**20
    del gvp, flags, t_look, lru_pos, stamp, v2p, d, order
    touch = [_first_touch(1) for _ in range(repeat)]
    out["touch_s_per_gib"] = median([w for w, _s in touch])
    out["touch_sys_per_gib"] = median([s for _w, s in touch])
    return out


def layout() -> dict[str, int]:
    """Bytes the engine keeps per mapped page, from its own arrays' types: the MemMap fields
    every frame touches, the page-table entry and one LRU ring entry."""
    regions = Regions(1)
    mem = MemMap(1, regions)
    out = {k: getattr(mem, k).itemsize for k in ("gvp", "flags", "lru_pos", "t_look")}
    out["PTE (v2p)"] = regions.v2p.itemsize
    out["LRU ring entry"] = mm.LruRing().data.itemsize
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--scale", type=int, default=1, help="divide every memory size by this")
    ap.add_argument("--policy", default="v6.12")
    ap.add_argument("--no-run", action="store_true", help="floors only, no storyboard run")
    args = ap.parse_args()
    if args.scale < 1:
        ap.error("--scale must be >= 1")
    # the storyboard first: a child's ru_maxrss starts from its parent's peak, so it must
    # run before this process allocates its arrays
    r = None if args.no_run else run_in_child(args.scale, args.policy)
    sc = scaled_scenario(args.scale)
    n = sum(z.pages() for node in sc.machine.nodes for z in node.zone_list())
    i32, u32 = np.zeros(1, np.int32), np.zeros(1, np.uint32)
    _fault_floor(i32, i32, i32, np.zeros(1, np.uint8), u32, u32, 0)  # load it before measuring
    base_mib = _rss_mib()  # interpreter, numpy, numba and the engine's modules loaded
    f = floors(n)
    print(f"machine 1/{args.scale}: {n:,} frames of 4 KiB; this process before its arrays: "
          f"{base_mib:.0f} MiB RSS")  # fmt: skip
    print(f"floors (medians of 3; arrays {f['arrays_mib']:.0f} MiB): scan "
          f"{f['scan_ns']:.1f} ns/page, "
          f"hint fault {f['fault_seq_ns']:.1f} ns in address order ({f['fault_rand_ns']:.1f} ns "
          f"random), allocation {f['alloc_ns']:.1f} ns/page, first touch "
          f"{f['touch_s_per_gib']:.2f} s/GiB wall "
          f"({f['touch_sys_per_gib']:.2f} s system)")  # fmt: skip
    budget = (2 * GIB - base_mib * 2**20) / n
    kept = layout()
    print(f"2 GiB peak RSS leaves {budget:.1f} B per frame after the process's {base_mib:.0f} MiB; "
          f"the engine keeps {sum(kept.values())} B per mapped page: "
          + ", ".join(f"{k} {v}" for k, v in kept.items())
          + " (and the scan stamp, 4 B, on protected slow-tier pages)")  # fmt: skip
    if r is None:
        return
    ops = r["page_ops"]
    parts = {
        "scan": ops["scanned"] * f["scan_ns"] * 1e-9,
        "hint faults": ops["hint_faults"] * f["fault_seq_ns"] * 1e-9,
        "allocation": ops["allocated"] * f["alloc_ns"] * 1e-9,
        "first touch": r["peak_rss_mib"] / 1024 * f["touch_s_per_gib"],
    }
    print(f"storyboard {args.policy}: measured wall {r['wall_s']:.1f} s (user {r['user_s']:.1f}, "
          f"sys {r['sys_s']:.1f}), peak RSS {r['peak_rss_mib']:.0f} MiB; scanned "
          f"{ops['scanned']:,}, hint faults {ops['hint_faults']:,}, "
          f"allocated {ops['allocated']:,}")  # fmt: skip
    print(
        f"at the floors: {sum(parts.values()):.1f} s = "
        + " + ".join(f"{k} {v:.1f}" for k, v in parts.items())
        + f"; the engine's own work above them: {r['wall_s'] - sum(parts.values()):.1f} s "
        f"(target 10 s; {os.cpu_count()} CPUs here, one used)"
    )


if __name__ == "__main__":
    main()
