"""Multi-gen LRU rules (mm/vmscan.c ``lru_gen_*``, include/linux/mm_inline.h), each on the
tiny tiered machine of conftest (64 MiB DRAM node0 + 32 MiB CPU-less node1, no swap) with
``machine.lru = "mglru"``."""

from __future__ import annotations

import numpy as np
from conftest import make, sim

from reclaimsim.kernel import mem_map as mm
from reclaimsim.kernel.constants import WMARK_LOW, ZONE_MOVABLE, ZONE_NORMAL
from reclaimsim.kernel.mglru import (
    MAX_NR_GENS,
    MIN_NR_GENS,
    drain_intake,
    evict_folios,
    get_swappiness,
    lru_gen_shrink_node,
    lrugen,
    try_to_inc_max_seq,
    try_to_inc_min_seq,
)
from reclaimsim.kernel.page_alloc import GFP_HIGHUSER_MOVABLE, alloc_pages
from reclaimsim.kernel.vmscan import ScanControl, wakeup_kswapd


def mglru(overrides: dict | None = None, policy: str = "v6.12"):
    return sim(make({"machine.lru": "mglru", **(overrides or {})}), policy).k


def region(k, name: str, rate: float = 0.0) -> int:
    r = k.regions.add(name, False)
    k.regions.rate[r] = rate
    return r


def fault(k, r: int, n: int, nid: int = 0, file: bool = False, active: bool = False) -> None:
    got = alloc_pages(k, n, GFP_HIGHUSER_MOVABLE, nid, [nid], r, file=file, active=active).got
    assert got == n


def pages(k, r: int, nid: int = 0) -> np.ndarray:
    pg = k.pgdats[nid]
    pfns = np.arange(pg.start_pfn, pg.end_pfn)
    return pfns[k.mem.owner_of(slice(pg.start_pfn, pg.end_pfn)) == r]


def gens(k, pfns: np.ndarray) -> np.ndarray:
    return (k.mem.flags[pfns] >> 6) & 3


def tick(k, s: float = 1.0) -> None:
    k.now += s


def test_new_folio_generation():
    """lru_gen_add_folio(): an active folio (a fault sets it: folio_add_lru with
    lru_gen_in_fault; a workingset refault) goes to max_seq; an inactive file folio to
    min_seq + 1 while more than MIN_NR_GENS generations exist."""
    k = mglru()
    pg = k.pgdats[0]
    g = lrugen(k, pg, 0)
    assert (g.max_seq, g.min_seq) == (MIN_NR_GENS + 1, [0, 0])  # lru_gen_init_lruvec
    anon, cache, refault = region(k, "anon"), region(k, "cache"), region(k, "refault")
    fault(k, anon, 100)
    fault(k, cache, 100, file=True)
    fault(k, refault, 100, file=True, active=True)
    assert drain_intake(k, pg, 0) == 300
    assert np.all(gens(k, pages(k, anon)) == g.max_seq % MAX_NR_GENS)
    assert np.all(gens(k, pages(k, refault)) == g.max_seq % MAX_NR_GENS)
    assert np.all(gens(k, pages(k, cache)) == (g.min_seq[1] + 1) % MAX_NR_GENS)
    # lru_gen_is_active(): max_seq and max_seq - 1 count as active, older as inactive
    f = k.mem.flags
    assert np.all(f[pages(k, anon)] & mm.F_ACTIVE)
    assert not np.any(f[pages(k, cache)] & mm.F_ACTIVE)
    assert k.check_lru_counts()


def test_aging_moves_referenced_folios_to_max_seq():
    """try_to_inc_max_seq(): the walk moves folios whose accessed bit is set to max_seq (and
    clears the bit), then max_seq grows by one; unreferenced folios stay in their older
    generation and leave the active pair."""
    k = mglru()
    pg = k.pgdats[0]
    g = lrugen(k, pg, 0)
    hot, cold = region(k, "hot", 1e6), region(k, "cold", 0.0)
    fault(k, hot, 200)
    fault(k, cold, 200)
    drain_intake(k, pg, 0)
    seq0 = g.max_seq
    tick(k)
    try_to_inc_max_seq(k, pg, 0, get_swappiness(k, pg, ScanControl()))  # clears fault bits
    tick(k)
    moved = try_to_inc_max_seq(k, pg, 0, 60)
    assert g.max_seq == seq0 + 2
    assert moved == 200
    assert np.all(gens(k, pages(k, hot)) == (seq0 + 1) % MAX_NR_GENS)
    assert np.all(gens(k, pages(k, cold)) == seq0 % MAX_NR_GENS)
    f = k.mem.flags
    assert np.all(f[pages(k, hot)] & mm.F_ACTIVE)
    assert not np.any(f[pages(k, cold)] & mm.F_ACTIVE)
    assert g.max_seq - min(g.min_seq) + 1 <= MAX_NR_GENS
    assert k.check_lru_counts()


def _two_cold_generations(k):
    """Old cold anon (x) two agings back, then new cold anon (y) in max_seq."""
    pg = k.pgdats[0]
    x, y = region(k, "x"), region(k, "y")
    fault(k, x, 1000)
    drain_intake(k, pg, 0)
    for _ in range(2):
        tick(k)
        try_to_inc_max_seq(k, pg, 0, 60)
    fault(k, y, 1000)
    drain_intake(k, pg, 0)
    return pg, x, y


def test_eviction_takes_only_the_oldest_generation():
    """evict_folios()/scan_folios(): folios are isolated from min_seq's generation only; a
    younger generation is not touched while an older one holds folios. (Cold anon is
    demoted here: node1 is node0's demotion target.)"""
    k = mglru()
    pg, x, y = _two_cold_generations(k)
    g = lrugen(k, pg, 0)
    try_to_inc_min_seq(k, pg, 0, 60)
    assert g.min_seq[0] % MAX_NR_GENS == gens(k, pages(k, x))[0]
    sc = ScanControl(nr_to_reclaim=1 << 20, priority=6)
    for _ in range(5):
        assert evict_folios(k, pg, sc, 0, 60) > 0
    assert sc.nr_reclaimed > 0
    assert len(pages(k, x)) == 1000 - sc.nr_reclaimed
    assert len(pages(k, x, 1)) == sc.nr_reclaimed  # demoted to node1
    assert len(pages(k, y)) == 1000
    assert np.all(gens(k, pages(k, y)) == g.max_seq % MAX_NR_GENS)
    assert k.vmstat.c["pgdemote_direct"] == sc.nr_reclaimed
    assert k.check_lru_counts()


def test_min_seq_advances_past_empty_generations():
    """try_to_inc_min_seq(): min_seq moves past empty oldest generations but stops at the
    first populated one, and never leaves fewer than MIN_NR_GENS generations; when swapping,
    anon's min_seq never passes file's."""
    k = mglru()
    pg, x, _y = _two_cold_generations(k)
    g = lrugen(k, pg, 0)
    gx = gens(k, pages(k, x))[0]
    try_to_inc_min_seq(k, pg, 0, 60)
    assert g.min_seq[0] % MAX_NR_GENS == gx
    sc = ScanControl(nr_to_reclaim=1 << 20, priority=6)
    # the batch that empties x's generation returns 0: min_seq moved on and only
    # MIN_NR_GENS generations are left, so eviction must wait for aging
    while evict_folios(k, pg, sc, 0, 60):
        pass
    assert len(pages(k, x)) == 0 and len(pages(k, x, 1)) == 1000
    assert g.min_seq == [g.max_seq - MIN_NR_GENS + 1] * 2
    assert not try_to_inc_min_seq(k, pg, 0, 60)


def test_no_anon_eviction_without_swap_or_demotion():
    """get_swappiness(): with no swap and no demotion target anon is not evictable (only
    file is scanned), so reclaim leaves it alone even at a low priority; with demotion the
    same pages are evicted."""
    for demotion, evicts in ((False, False), (True, True)):
        k = mglru({"sysctl.demotion_enabled": demotion})
        pg = k.pgdats[0]
        x = region(k, "x")
        fault(k, x, 2000)
        assert (get_swappiness(k, pg, ScanControl()) > 0) == demotion
        sc = ScanControl(nr_to_reclaim=1 << 20, kswapd=True)
        for prio in range(12, 0, -1):
            sc.priority = prio
            tick(k)
            lru_gen_shrink_node(k, pg, sc)
        assert (sc.nr_reclaimed > 0) == evicts
        assert (k.vmstat.c["pgscan_anon"] > 0) == evicts
        assert (len(pages(k, x)) < 2000) == evicts


def test_kswapd_under_mglru_keeps_counts_and_active_pair():
    """After kswapd reclaims through generations, the per-zone LRU counts equal a recount,
    and exactly the folios of the two youngest generations count as active
    (lru_gen_is_active / lru_gen_update_size)."""
    from test_rules import fill_to, normal, run_kswapd

    k = mglru()
    hot, cold = region(k, "hot", 50.0), region(k, "cold")
    fill_to(k, hot, 0, WMARK_LOW, below=-3000)
    fill_to(k, cold, 0, WMARK_LOW, below=50)
    wakeup_kswapd(k, normal(k, 0), GFP_HIGHUSER_MOVABLE, 0, ZONE_MOVABLE)
    run_kswapd(k, 0, 3.0)
    assert k.vmstat.c["pgsteal_kswapd"] > 0
    assert k.check_lru_counts()
    pg = k.pgdats[0]
    drain_intake(k, pg, 0)
    g = lrugen(k, pg, 0)
    sl = slice(pg.start_pfn, pg.end_pfn)
    f = k.mem.flags[sl]
    on = (k.mem.gvp[sl] >= 0) & ((f & mm.F_ONLRU) != 0)
    ftype = ((f & mm.F_FILE) != 0).astype(np.int64)
    gen = ((f >> 6) & 3).astype(np.int64)
    # the seq of each folio: the one in [min_seq[type], max_seq] with seq % 4 == gen
    lo = np.array(g.min_seq)[ftype]
    seq = lo + (gen - lo) % MAX_NR_GENS
    assert np.all(seq[on] <= g.max_seq)
    active = (f & mm.F_ACTIVE) != 0
    assert np.array_equal(active[on], (seq >= g.max_seq - 1)[on])
    assert normal(k, 0).zone_type == ZONE_NORMAL


def test_mglru_run_is_reproducible():
    """Same scenario and seed under MGLRU: the same summary bit for bit (a workload run that
    reclaims through generations: demotion from node0, aging, eviction)."""
    import json

    from test_determinism import SC

    from reclaimsim.engine import Simulation
    from reclaimsim.output import summary

    def run(seed: int) -> str:
        s = summary(Simulation(make({"machine.lru": "mglru"}, **SC), "v6.12", seed).run())
        s.pop("wall_seconds")
        return json.dumps(s, sort_keys=True)

    a = run(3)
    assert a == run(3)
    assert '"lru": "mglru"' in a


def test_generation_rings_seen_by_the_kernels_follow_a_resize():
    """The numba kernels get the generation rings as cached tuples (mglru._ctx, LruGen.seqs):
    after a ring is resized (a fault burst larger than its room) they must see the new
    array, or folios would be sorted into a ring nobody reads. Every folio of a burst far
    larger than the rings' first size must end up in max_seq's ring, counted and findable."""
    from reclaimsim.kernel.mglru import _ctx

    k = mglru()
    pg = k.pgdats[0]
    g = lrugen(k, pg, 0)
    anon = region(k, "anon")
    fault(k, anon, 100)
    drain_intake(k, pg, 0)
    before = _ctx(k, pg, 0)
    assert _ctx(k, pg, 0) is before  # cached while no ring changed
    seqs = g.seqs()
    assert g.seqs() is seqs
    ring = g.ring(g.max_seq, 0)
    size = ring.data.size
    fault(k, anon, 4 * size)
    drain_intake(k, pg, 0)
    assert ring.data.size > size  # the burst grew max_seq's anon ring
    after = _ctx(k, pg, 0)
    assert after is not before
    assert after[1][(g.max_seq % MAX_NR_GENS) * 2] is ring.data
    assert np.all(gens(k, pages(k, anon)) == g.max_seq % MAX_NR_GENS)
    assert k.check_lru_counts()
    # a sequence number moves: the kernels' seqs follow
    try_to_inc_max_seq(k, pg, 0, get_swappiness(k, pg, ScanControl(k)))
    assert g.seqs() is not seqs and int(g.seqs()[0]) == g.max_seq


# a direct-reclaim storm on the tiny machine: three hogs want more than DRAM + CXL
STORM = dict(
    workloads={
        "a": {"hot": "30MiB", "access": 5.0},
        "b": {"cold": "40MiB", "hot": "4MiB"},
        "c": {"cold": "40MiB"},
    },
    script=[
        {"start": "a"},
        {"wait_ready": "a"},
        {"start": "b"},
        {"wait_ready": "b"},
        {"start": "c"},
        {"sleep_s": 20},
    ],
    duration_s=40,
)
# memory.high reclaim of one memcg (sc.target_mem_cgroup set: counted in memory.stat only)
MEMCG = dict(
    cgroups={"g": {"memory_high": "12MiB"}},
    workloads={
        "hog": {"cold": "40MiB", "bind": [0]},
        "g1": {
            "memcg": "g",
            "cold": "8MiB",
            "file": "10MiB",
            "file_access": 10000.0,
            "stream_MBps": 4.0,
            "bind": [0],
        },
    },
    script=[{"start": "hog"}, {"wait_ready": "hog"}, {"start": "g1"}, {"sleep_s": 15}],
    duration_s=25,
)


def test_numba_batch_loop_equals_the_python_loop(monkeypatch):
    """``try_to_shrink_lruvec``'s batch loop runs in numba (mglru._lruvec_loop), returning to
    Python for aging, ring room, kswapd wakes, free-path hooks and wake bookkeeping. It must
    give the Python loop's result bit for bit (summary, /proc/vmstat, every page's flags,
    owner and last look), over runs that take each of those returns: kswapd and direct
    reclaim, demotion into a full CXL node (wakes of node1's kswapd), swap, memcg reclaim."""
    import json

    from test_determinism import SC

    import reclaimsim.kernel.mglru as mg
    from reclaimsim.engine import Simulation
    from reclaimsim.output import summary

    seen: set[tuple] = set()
    loop = mg._lruvec_loop

    def spy(ls, lp, *rest):
        status = loop(ls, lp, *rest)
        code = int(ls[mg._L_FUSED]) if status == mg._LS_FUSED else -1
        seen.add((status, code, bool(lp[mg._P_KSWAPD]), bool(lp[mg._P_GLOB])))
        return status

    monkeypatch.setattr(mg, "_lruvec_loop", spy)

    def run(sc, py: bool):
        monkeypatch.setattr(mg, "PY_LOOP", py)
        s = Simulation(sc, "v6.12", 3).run()
        out = summary(s)
        out.pop("wall_seconds")
        mem = s.k.mem
        return (
            json.dumps(out, sort_keys=True),
            dict(s.k.vmstat.c),
            mem.flags.tobytes(),
            mem.gvp.tobytes(),
            mem.t_look.tobytes(),
        )

    for sc in (
        make({"machine.lru": "mglru"}, **SC),
        make({"machine.lru": "mglru"}, **STORM),
        make({"machine.lru": "mglru", "machine.swap": "24MiB"}, **STORM),
        make({"machine.lru": "mglru"}, **MEMCG),
    ):
        fast = run(sc, False)
        assert fast == run(sc, True), sc.name
    statuses = {s for s, _c, _k, _g in seen}
    assert {mg._LS_DONE, mg._LS_AGING, mg._LS_ROOM, mg._LS_FUSED, mg._LS_BOOK} <= statuses
    from reclaimsim.kernel.vmscan import _HOOKS, _WAKE

    assert {_WAKE, _HOOKS} <= {c for _s, c, _k, _g in seen}
    assert {(True, True), (False, True), (False, False)} <= {(k, g) for _s, _c, k, g in seen}
