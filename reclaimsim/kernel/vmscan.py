"""Page reclaim (mm/vmscan.c): kswapd, balance_pgdat, shrink_node and below, direct reclaim.

Time: a kswapd step is one priority iteration of ``balance_pgdat``; its simulated CPU cost is
the pages it scanned and migrated times the machine's per-page costs. Between steps the engine
runs the workloads, so allocations, promotions and reclaim interleave at that granularity.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from numba import njit

from . import mem_map as mm
from .constants import (
    DEF_PRIORITY,
    KSWAPD_NAP_S,
    LRU_ACTIVE_ANON,
    LRU_ACTIVE_FILE,
    LRU_INACTIVE_ANON,
    LRU_INACTIVE_FILE,
    MAX_NR_ZONES,
    MAX_RECLAIM_RETRIES,
    SWAP_CLUSTER_MAX,
    WMARK_HIGH,
    WMARK_LOW,
    WMARK_MIN,
    ZONE_NORMAL,
)
from .mmzone import PgData, Zone
from .page_alloc import GFP_DEMOTE, Gfp, zonelist
from .watermarks import pgdat_balanced, pgdat_watermark_boosted
from .workingset import refaults_changed, snapshot_refaults

if TYPE_CHECKING:
    from .state import Kernel

DEACTIVATE_ANON = 1
DEACTIVATE_FILE = 2
SCAN_EQUAL, SCAN_FRACT, SCAN_ANON, SCAN_FILE = 0, 1, 2, 3


@dataclass
class ScanControl:
    """``struct scan_control`` (the fields this model uses)."""

    nr_to_reclaim: int = SWAP_CLUSTER_MAX
    order: int = 0
    priority: int = DEF_PRIORITY
    reclaim_idx: int = MAX_NR_ZONES - 1
    may_writepage: bool = True
    may_unmap: bool = True
    may_swap: bool = True
    may_deactivate: int = 0
    force_deactivate: bool = False
    skipped_deactivate: bool = False
    cache_trim_mode: bool = False
    cache_trim_mode_failed: bool = False
    no_cache_trim_mode: bool = False
    file_is_tiny: bool = False
    no_demotion: bool = False
    anon_cost: int = 0
    file_cost: int = 0
    nr_reclaimed: int = 0
    nr_scanned: int = 0
    kswapd: bool = False
    # memcg: None = global reclaim; else the memcg whose limit is reclaimed (cgroup_reclaim)
    target_mem_cgroup: int | None = None
    memcg_low_reclaim: bool = False
    memcg_low_skipped: bool = False
    # simulated CPU seconds this reclaim spent (scan + migrate costs)
    cost_s: float = 0.0
    # page counts for time accounting
    pages_scanned: int = 0
    pages_migrated: int = 0


# ---------------------------------------------------------------------------------------------
# reclaimability


def can_demote(k: Kernel, nid: int, sc: ScanControl | None) -> bool:
    """``can_demote()``: demotion enabled, not forbidden for this reclaim, a target exists."""
    if not k.sysctl.demotion_enabled:
        return False
    if sc is not None and sc.no_demotion:
        return False
    return k.tiers.next_demotion_node(nid) >= 0


def can_reclaim_anon_pages(k: Kernel, nid: int, sc: ScanControl | None) -> bool:
    """``can_reclaim_anon_pages()``: free swap, or demotion possible from this node."""
    return k.swap.free_pages() > 0 or can_demote(k, nid, sc)


def zone_reclaimable_pages(k: Kernel, z: Zone) -> int:
    """``zone_reclaimable_pages()``: file LRU, plus anon LRU if anon can be reclaimed."""
    anon, file = z.reclaimable_anon_file()
    nr = file
    if can_reclaim_anon_pages(k, z.node_id, None):
        nr += anon
    return nr


def lru_sizes(
    pgdat: PgData, reclaim_idx: int = MAX_NR_ZONES - 1, memcg: int | None = None
) -> list[int]:
    """``lruvec_lru_size()`` of the four lists at once (zones <= ``reclaim_idx``) of the
    lruvec of ``memcg`` on this node; None = the root lruvec, whose sizes are hierarchical
    (every memcg's pages on the node)."""
    cache = pgdat.__dict__.setdefault("_lru_rows", {})
    rng = cache.get(reclaim_idx)
    if rng is None:
        zs = [z for z in pgdat.zones[: reclaim_idx + 1] if z is not None]
        # a node's populated zones are consecutive rows of ZoneArrays, in type order
        rng = (zs[0].za, zs[0].idx, zs[-1].idx + 1) if zs else (None, 0, 0)
        cache[reclaim_idx] = rng
    za, a, b = rng
    if za is None:
        return [0, 0, 0, 0]
    if memcg is None:
        return za.lru_count_mc[:, a:b].sum(axis=(0, 1)).tolist()
    return za.lru_count_mc[memcg, a:b].sum(axis=0).tolist()


def inactive_is_low(pgdat: PgData, inactive_lru: int, memcg: int | None = None) -> bool:
    """``inactive_is_low()``: inactive * int_sqrt(10 * size_in_GiB) < active."""
    sizes = lru_sizes(pgdat, memcg=memcg)
    inactive = sizes[inactive_lru]
    active = sizes[inactive_lru + 1]
    gb = (inactive + active) >> (30 - 12)
    ratio = int(np.sqrt(10 * gb)) if gb else 1
    return inactive * ratio < active


# ---------------------------------------------------------------------------------------------
# hopeless-node bookkeeping


def kswapd_hopeless(pgdat: PgData) -> bool:
    """``kswapd_failures >= MAX_RECLAIM_RETRIES`` (``kswapd_test_hopeless()`` in 2026)."""
    return pgdat.kswapd_failures >= MAX_RECLAIM_RETRIES


def kswapd_clear_hopeless(k: Kernel, pgdat: PgData, reason: str) -> None:
    """Reset ``kswapd_failures``; 2026's helper traces resets of a non-zero count."""
    if pgdat.kswapd_failures:
        if k.policy.hopeless_tracepoints:
            k.trace.emit(
                "mm_vmscan_kswapd_clear_hopeless",
                pgdat.node_id,
                f"nid={pgdat.node_id} reason={reason}",
            )
        if kswapd_hopeless(pgdat):
            k.count_hopeless_exit(pgdat, reason)
    pgdat.kswapd_failures = 0
    k.policy.kswapd_failures_reset(k, pgdat)


def shrink_node_progress(k: Kernel, pgdat: PgData, sc: ScanControl, reclaimed: int) -> None:
    """The reset at the end of ``shrink_node()`` / ``lru_gen_shrink_node()``."""
    k.policy.shrink_node_done(k, pgdat, sc, reclaimed)


# ---------------------------------------------------------------------------------------------
# shrink_node and below


def prepare_scan_control(k: Kernel, pgdat: PgData, sc: ScanControl) -> None:
    """``prepare_scan_control()``: deactivation bits, cache_trim_mode, file_is_tiny, all
    judged on the target lruvec (the root's for global reclaim, the memcg's for limit
    reclaim). The anon/file cost balance is the node's (docs/fidelity.md)."""
    target = sc.target_mem_cgroup
    sc.anon_cost = pgdat.anon_cost
    sc.file_cost = pgdat.file_cost
    if not sc.force_deactivate:
        sc.may_deactivate = 0
        if inactive_is_low(pgdat, LRU_INACTIVE_ANON, target):
            sc.may_deactivate |= DEACTIVATE_ANON
        # file refaults activated since the last snapshot: the workingset is moving
        if refaults_changed(pgdat, target) or inactive_is_low(pgdat, LRU_INACTIVE_FILE, target):
            sc.may_deactivate |= DEACTIVATE_FILE
    else:
        sc.may_deactivate = DEACTIVATE_ANON | DEACTIVATE_FILE
    sizes = lru_sizes(pgdat, memcg=target)
    inactive_file = sizes[LRU_INACTIVE_FILE]
    sc.cache_trim_mode = (
        bool(inactive_file >> sc.priority)
        and not (sc.may_deactivate & DEACTIVATE_FILE)
        and not sc.no_cache_trim_mode
    )
    sc.file_is_tiny = False
    if target is not None:
        return  # file_is_tiny is for global reclaim only
    free = pgdat.free_pages()
    file = sizes[LRU_ACTIVE_FILE] + sizes[LRU_INACTIVE_FILE]
    total_high = sum(z.wmark(WMARK_HIGH) for z in pgdat.populated_zones())
    anon = sizes[LRU_INACTIVE_ANON]
    sc.file_is_tiny = (
        file + free <= total_high
        and not (sc.may_deactivate & DEACTIVATE_ANON)
        and bool(anon >> sc.priority)
    )


def get_scan_count(k: Kernel, pgdat: PgData, sc: ScanControl, memcg: int = 0) -> list[int]:
    """``get_scan_count()``: how many pages of each LRU of the (node, memcg) lruvec to scan
    at this priority; a memcg above its memory.low is scanned in proportion to its usage
    over the protection (``mem_cgroup_protection``)."""
    swappiness = k.sysctl.swappiness  # mem_cgroup_swappiness(): vm.swappiness in cgroup v2
    if not sc.may_swap or not can_reclaim_anon_pages(k, pgdat.node_id, sc):
        scan_balance = SCAN_FILE
    elif sc.target_mem_cgroup is not None and swappiness == 0:
        scan_balance = SCAN_FILE
    elif sc.priority == 0 and swappiness:
        scan_balance = SCAN_EQUAL
    elif sc.file_is_tiny:
        scan_balance = SCAN_ANON
    elif sc.cache_trim_mode:
        scan_balance = SCAN_FILE
    else:
        scan_balance = SCAN_FRACT
    ap = fp = 0
    if scan_balance == SCAN_FRACT:
        total_cost = sc.anon_cost + sc.file_cost
        anon_cost = total_cost + sc.anon_cost
        file_cost = total_cost + sc.file_cost
        total_cost = anon_cost + file_cost
        ap = swappiness * (total_cost + 1) // (anon_cost + 1)
        fp = (200 - swappiness) * (total_cost + 1) // (file_cost + 1)
    nr = [0, 0, 0, 0]
    sizes = lru_sizes(pgdat, sc.reclaim_idx, memcg)
    protection = 0
    if memcg:
        protection = k.memcgs.protection(sc.target_mem_cgroup, memcg, sc.memcg_low_reclaim)
    cgroup_size = max(k.memcgs.usage(memcg), protection) if protection else 0
    for lru in (LRU_INACTIVE_ANON, LRU_ACTIVE_ANON, LRU_INACTIVE_FILE, LRU_ACTIVE_FILE):
        file = lru >= LRU_INACTIVE_FILE
        size = sizes[lru]
        if protection:
            # scale by the share of the cgroup's usage above its protection
            scan = size - size * protection // (cgroup_size + 1)
            scan = max(scan, SWAP_CLUSTER_MAX)
        else:
            scan = size
        scan >>= sc.priority
        if scan_balance == SCAN_FRACT:
            scan = scan * (fp if file else ap) // max(ap + fp, 1)
        elif scan_balance == SCAN_FILE and not file:
            scan = 0
        elif scan_balance == SCAN_ANON and file:
            scan = 0
        nr[lru] = scan
    return nr


def shrink_node(k: Kernel, pgdat: PgData, sc: ScanControl) -> None:
    """``shrink_node()``: one pass over the node's lruvecs, then the kswapd_failures reset
    (whoever reclaimed: kswapd, direct or memcg-limit reclaim)."""
    if k.mglru and sc.target_mem_cgroup is None:
        from .mglru import lru_gen_shrink_node

        lru_gen_shrink_node(k, pgdat, sc)
        return
    before = sc.nr_reclaimed
    prepare_scan_control(k, pgdat, sc)
    shrink_node_memcgs(k, pgdat, sc)
    reclaimed = sc.nr_reclaimed - before
    shrink_node_progress(k, pgdat, sc, reclaimed)
    if not reclaimed and sc.cache_trim_mode:
        sc.cache_trim_mode_failed = True


def memcgs_to_shrink(k: Kernel, sc: ScanControl) -> Iterator[int]:
    """The memcgs under the target in ``mem_cgroup_iter()`` order whose lruvec is reclaimed
    (``shrink_node_memcgs``, MGLRU's ``shrink_one``): one within its memory.low is skipped
    (``memcg_low_skipped``) unless this is the retry that reclaims protected memory
    (``memcg_low_reclaim``, which counts a ``low`` event). memory.min is not modelled."""
    target = sc.target_mem_cgroup
    for memcg in k.memcgs.iter(target):
        if k.memcgs.below_low(target, memcg):
            if not sc.memcg_low_reclaim:
                sc.memcg_low_skipped = True
                continue
            k.memcgs[memcg].events["low"] += 1
        yield memcg


def shrink_node_memcgs(k: Kernel, pgdat: PgData, sc: ScanControl) -> None:
    """``shrink_node_memcgs()``: each memcg under the target in turn
    (:func:`memcgs_to_shrink`), its own lruvec with its own scan sizes."""
    for memcg in memcgs_to_shrink(k, sc):
        shrink_lruvec(k, pgdat, sc, memcg)


def shrink_lruvec(k: Kernel, pgdat: PgData, sc: ScanControl, memcg: int = 0) -> None:
    """``shrink_lruvec()``: scan the lists in SWAP_CLUSTER_MAX batches; kswapd stops early
    once nr_to_reclaim is met, keeping the anon:file proportions (once).

    The loop runs in one numba kernel (:func:`_shrink_lruvec_fused`), which returns to Python
    only where another actor's Python code must run at that exact point: a kswapd wake of a
    demotion target (``wakeup_kswapd``), a zone's ZONE_BELOW_HIGH crossing on the free path
    (the policy hook), and ring growth. Nothing else runs during a reclaim pass, so the
    result is the same as calling ``shrink_list`` batch by batch (docs/performance.md).
    """
    if k.mglru:
        # memcg-limit reclaim under MGLRU (shrink_node's classic path; root reclaim goes
        # through lru_gen_shrink_node): lru_gen_shrink_lruvec()
        from .mglru import lru_gen_shrink_lruvec

        lru_gen_shrink_lruvec(k, pgdat, sc, memcg)
        return
    nr = get_scan_count(k, pgdat, sc, memcg)
    proportional_reclaim = not sc.kswapd and sc.priority == DEF_PRIORITY
    st = fused_shrink_pass(
        k,
        pgdat,
        sc,
        nr,
        memcg,
        sc.target_mem_cgroup is None,
        sc.nr_to_reclaim,
        proportional_reclaim,
        sc.may_deactivate,
    )
    if st[_SKIPPED_DEACT]:
        sc.skipped_deactivate = True
    if can_age_anon_pages(k, pgdat, sc) and inactive_is_low(pgdat, LRU_INACTIVE_ANON, memcg):
        shrink_active_list(k, pgdat, SWAP_CLUSTER_MAX, sc, LRU_ACTIVE_ANON, memcg)


# state of one fused shrink_lruvec call (int64 array, kept across returns to Python)
_NR_RECLAIMED, _SCAN_ADJUSTED, _LRU_I, _STAGE = 8, 9, 10, 11
_DEM_NI, _DEM_MARK, _DEM_POS, _TAKEN, _BATCH_LRU, _NCAND = 12, 13, 14, 15, 16, 17
_NR_SCANNED, _PAGES_SCANNED, _PAGES_MIGRATED, _ANON_COST, _FILE_COST = 18, 19, 20, 21, 22
_SWAP_USED, _PUSH_N, _ARG, _WOKEN, _SKIPPED_DEACT = 23, 24, 25, 26, 27
_ST_LEN = 32
# return codes
_DONE, _NEED_ROOM, _WAKE, _HOOKS = 0, 1, 2, 3
_PUSH_CAP = 1 << 16


def fused_shrink_pass(
    k: Kernel,
    pgdat: PgData,
    sc: ScanControl,
    nr: list[int],
    memcg: int,
    glob: bool,
    nr_to_reclaim: int,
    proportional_reclaim: bool,
    may_deactivate: int,
) -> np.ndarray:
    """One fused ``shrink_lruvec`` pass over ``nr[lru]`` pages of each list of the lruvec
    (classic ``shrink_lruvec``, and MGLRU's ``shrink_folio_list`` of isolated folios): sets up
    the state array, runs the numba loop, adds what it did to ``sc``; returns the state."""
    init = [*nr, *nr] + [0] * (_ST_LEN - 8)  # one array from one list: cheaper per batch
    init[_LRU_I] = -1
    init[_ANON_COST] = pgdat.anon_cost
    init[_FILE_COST] = pgdat.file_cost
    init[_SWAP_USED] = k.swap.used
    st = np.array(init, dtype=np.int64)
    demote = can_demote(k, pgdat.node_id, sc)
    p = np.array(
        [
            nr_to_reclaim,
            int(proportional_reclaim),
            int(sc.kswapd),
            may_deactivate,
            int(demote),
            k.swap.total_pages,
            k.now_ms(),
            pgdat.highest_zone_limit_pfn(sc.reclaim_idx),
            pgdat.node_id,
            pgdat.zone_first(),
            # the node's LRU size (the root lruvec's, where the cost balance is kept)
            sum(lru_sizes(pgdat)),
        ],
        dtype=np.int64,
    )
    run_fused(k, pgdat, st, p, demote, memcg, glob)
    sc.nr_reclaimed += int(st[_NR_RECLAIMED])
    sc.nr_scanned += int(st[_NR_SCANNED])
    sc.pages_scanned += int(st[_PAGES_SCANNED])
    sc.pages_migrated += int(st[_PAGES_MIGRATED])
    return st


class _FusedBuffers:
    """Per-kernel scratch arrays of the fused kernels (allocated once)."""

    def __init__(self, k: Kernel) -> None:
        nn, nz = len(k.pgdats), len(k.zones)
        self.bpfn = np.empty(SWAP_CLUSTER_MAX, dtype=np.int64)
        self.bres = np.empty(SWAP_CLUSTER_MAX, dtype=np.int8)
        self.bcand = np.empty(SWAP_CLUSTER_MAX, dtype=np.int64)
        self.bsub = np.empty(SWAP_CLUSTER_MAX, dtype=np.int64)
        self.bref2 = np.empty(SWAP_CLUSTER_MAX, dtype=np.int8)
        self.push = np.empty(_PUSH_CAP, dtype=np.int64)
        self.counters = np.zeros(mm.NR_CNT, dtype=np.int64)
        self.wake_possible = np.zeros(nn, dtype=np.bool_)
        self.wake_req = np.zeros(nn, dtype=np.bool_)
        self.hook_zones = np.zeros(nz, dtype=np.bool_)
        self.node_has_cpu = np.array([pg.nr_cpus > 0 for pg in k.pgdats], dtype=np.bool_)
        self.zone_counts = np.zeros(MAX_NR_ZONES, dtype=np.int64)
        self.demotion: dict[tuple, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self.demote_zl: dict[int, list] = {}  # _wake_target's THISNODE zonelist per node


def fused_buffers(k: Kernel) -> _FusedBuffers:
    buf = getattr(k, "_fused", None)
    if buf is None:
        buf = _FusedBuffers(k)
        k._fused = buf
    return buf


def demotion_zones(k: Kernel, nid: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``alloc_demote_folio``'s order: the preferred target, then the other lower-tier nodes
    by distance; each node's zones high to low (THISNODE zonelists). CSR arrays."""
    from .migrate import zonelist_nodes
    from .page_alloc import Gfp, zonelist

    target = k.tiers.next_demotion_node(nid)
    allowed = k.tiers.lower_tier_mask[nid]
    order = [target] + [n for n in zonelist_nodes(k, target) if n in allowed and n != target]
    ptr = [0]
    zones: list[int] = []
    for n in order:
        zl = zonelist(k, n, Gfp(direct_reclaim=False, thisnode=True, nomemalloc=True), None)
        zones += [z.idx for z in zl]
        ptr.append(len(zones))
    return (
        np.array(order, dtype=np.int64),
        np.array(ptr, dtype=np.int64),
        np.array(zones, dtype=np.int64),
    )


def flush_pushes(k: Kernel, push: np.ndarray, n: int) -> None:
    """Add the pages a fused kernel placed on other nodes to their LRU heads, in order.

    Those lists are not read while the kernel runs (a reclaim pass only isolates from its
    own node, a fault batch not at all), so deferring the ``list_add`` changes nothing.
    """
    if n == 0:
        return
    pfns = push[:n]
    nodes = k.node_of_pfn(pfns)
    lrus = k.mem.flags[pfns] & mm.F_LRU_MASK
    nn = len(k.pgdats)
    key = nodes * 4 + lrus
    if len(k.memcgs) > 1:
        key = key + k.regions.memcg[k.mem.owner_of(pfns)] * (nn * 4)
    present = np.flatnonzero(np.bincount(key))
    for kk in present:
        sel = pfns if len(present) == 1 else pfns[key == kk]
        memcg, rest = divmod(int(kk), nn * 4)
        nid, lru = rest // 4, rest % 4
        ring = k.pgdats[nid].lruvecs[memcg].lists[lru]
        ring.reserve(len(sel), k.mem.flags, k.mem.lru_pos, lru)
        mm.ring_push_many(ring.data, ring.meta, k.mem.lru_pos, sel)


# counted in /proc/vmstat by global reclaim only (``if (!cgroup_reclaim(sc))``); the memcg's
# own memory.stat counts them always
_GLOBAL_ONLY = (mm.C_PGSCAN, mm.C_PGSTEAL, mm.C_PGREFILL)


_CNT_NAMES_WHO: dict[str, tuple[str, ...]] = {}  # CNT_NAMES with WHO filled in, per caller


def apply_counters(
    k: Kernel,
    pgdat: PgData | None,
    counters: np.ndarray,
    who: str,
    memcg: int = 0,
    global_reclaim: bool = True,
) -> None:
    """Add a fused kernel's event counts to /proc/vmstat (and the node's own stats)."""
    names = _CNT_NAMES_WHO.get(who)
    if names is None:
        names = _CNT_NAMES_WHO[who] = tuple(n.replace("WHO", who) for n in mm.CNT_NAMES)
    for i, v in enumerate(counters.tolist()):
        if not v:
            continue
        name = names[i]
        if memcg and i in _GLOBAL_ONLY:
            k.memcgs[memcg].add_stat(name, v)
        if not global_reclaim and i in _GLOBAL_ONLY:
            continue
        k.vmstat.inc(name, v)
        if pgdat is not None and i in (mm.C_PGSCAN, mm.C_PGSTEAL, mm.C_PGDEMOTE):
            pgdat.add_stat(name, v)
    counters[:] = 0


def refresh_wake_possible(k: Kernel, buf: _FusedBuffers) -> None:
    """Per node: could ``wakeup_kswapd`` wake its kswapd now (asleep, not hopeless)?"""
    for pg in k.pgdats:
        ks = pg.kswapd
        buf.wake_possible[pg.node_id] = (
            ks is not None and ks.is_sleeping() and not k.policy.kswapd_hopeless(k, pg, 0)
        )


def demotion_arrays(
    k: Kernel, buf: _FusedBuffers, nid: int, demote: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`demotion_zones` of node ``nid``, cached per lower-tier mask (the topology is
    fixed); placeholders when the pass does not demote."""
    if not demote:
        z = np.zeros(1, dtype=np.int64)
        return z, z, z
    key = (nid, tuple(k.tiers.lower_tier_mask[nid]))
    if key not in buf.demotion:
        buf.demotion[key] = demotion_zones(k, nid)
    return buf.demotion[key]


def fused_args(k: Kernel, pgdat: PgData, memcg: int, buf: _FusedBuffers, dem: tuple) -> tuple:
    """The arrays :func:`_shrink_lruvec_fused` takes after ``(st, p)``, in its order (the
    lruvec's ring tuples are re-read: a ring may have been resized since the last call)."""
    za, mem = k.za, k.mem
    rings_d, rings_m = pgdat.lruvecs[memcg].ring_arrays()
    return (
        rings_d,
        rings_m,
        mem.flags,
        mem.gvp,
        k.regions.span_owner,
        mem.t_look,
        mem.lru_pos,
        k.regions.rate,
        k.regions.cnt,
        k.regions.swapped,
        za.free,
        za.wmark,
        za.boost,
        za.lowmem_reserve,
        za.start,
        za.end,
        za.cursor,
        za.type,
        za.lru_count_mc[memcg],
        za.below_high,
        pgdat.zone_starts(),
        *dem,
        buf.node_has_cpu,
        buf.wake_possible,
        buf.wake_req,
        buf.hook_zones,
        buf.bpfn,
        buf.bres,
        buf.bcand,
        buf.bsub,
        buf.bref2,
        buf.push,
        buf.counters,
        buf.zone_counts,
        k.regions.v2p,
        k.rs,
    )


def run_fused(
    k: Kernel,
    pgdat: PgData,
    st: np.ndarray,
    p: np.ndarray,
    demote: bool,
    memcg: int = 0,
    global_reclaim: bool = True,
) -> None:
    """Drive :func:`_shrink_lruvec_fused` over the lruvec of (``pgdat``, ``memcg``) to
    completion, doing the Python parts it asks for."""
    buf = fused_buffers(k)
    refresh_wake_possible(k, buf)
    dem = demotion_arrays(k, buf, pgdat.node_id, demote)
    mem = k.mem
    who = "kswapd" if p[2] else "direct"
    lists = pgdat.lruvecs[memcg].lists
    while True:
        status = _shrink_lruvec_fused(st, p, *fused_args(k, pgdat, memcg, buf, dem))
        flush_pushes(k, buf.push, int(st[_PUSH_N]))
        st[_PUSH_N] = 0
        _wake_bookkeeping(k, buf)
        if status == _NEED_ROOM:
            for lru, ring in enumerate(lists):
                ring.reserve(2 * SWAP_CLUSTER_MAX, mem.flags, mem.lru_pos, lru)
        elif status == _WAKE:
            _wake_target(k, int(st[_ARG]))
            refresh_wake_possible(k, buf)
        elif status == _HOOKS:
            _run_hooks(k, buf)
            refresh_wake_possible(k, buf)
        else:
            break
    for ring in lists:
        ring.release_drained()  # a list this pass emptied need not keep its memory
    pgdat.anon_cost = int(st[_ANON_COST])
    pgdat.file_cost = int(st[_FILE_COST])
    k.swap.used = int(st[_SWAP_USED])
    # workingset_eviction(): each dropped file page ages the lruvec's nonresident clock
    pgdat.lruvecs[memcg].nonresident_age += int(buf.counters[mm.C_PGSTEAL_FILE])
    apply_counters(k, pgdat, buf.counters, who, memcg, global_reclaim)


def _wake_target(k: Kernel, nid: int) -> None:
    """``wake_all_kswapds()`` over a demotion target's THISNODE zonelist (GFP_DEMOTE): the
    list holds one node, so that is one ``wakeup_kswapd`` at its first zone."""
    buf = fused_buffers(k)
    zl = buf.demote_zl.get(nid)
    if zl is None:  # zonelists are fixed at boot
        zl = zonelist(k, nid, Gfp(direct_reclaim=False, thisnode=True, nomemalloc=True), None)
        buf.demote_zl[nid] = zl
    if zl:
        wakeup_kswapd(k, zl[0], GFP_DEMOTE, 0, GFP_DEMOTE.highest_zoneidx)


def _wake_bookkeeping(k: Kernel, buf: _FusedBuffers) -> None:
    """``wakeup_kswapd`` calls that could not wake (awake or hopeless node) still record the
    request (highest_zoneidx, order); they are idempotent, so once per node is the same."""
    req = buf.wake_req.tolist()  # a few nodes: cheaper than numpy's any/flatnonzero
    if not any(req):
        return
    for nid, r in enumerate(req):
        if r:
            _wake_target(k, nid)
    buf.wake_req[:] = False


def _run_hooks(k: Kernel, buf: _FusedBuffers) -> None:
    """The free path's ZONE_BELOW_HIGH hook for zones a kernel lifted above HIGH."""
    for zi in np.flatnonzero(buf.hook_zones):
        z = k.zones[int(zi)]
        k.policy.zone_above_high_on_free(k, k.pgdats[z.node_id], z)
    buf.hook_zones[:] = False


@njit(cache=True)
def _active_batch(
    d_act,
    m_act,
    d_inact,
    m_inact,
    flags,
    gvp,
    span_owner,
    t_look,
    lru_pos,
    rate,
    lru,
    n,
    limit_pfn,
    now_ms,
    lru_count,
    zone_starts,
    zone_first,
    bpfn,
    rs,
):
    """``shrink_active_list()``: isolate from the active tail, clear the accessed bits, move
    to the inactive list (referenced anon too; only VM_EXEC file folios are rotated, and no
    workload maps executables). Returns (scanned, deactivated)."""
    taken, scanned, _sk = mm.isolate_lru(
        d_act,
        m_act,
        flags,
        lru_pos,
        gvp,
        t_look,
        np.uint8(lru),
        n,
        limit_pfn,
        bpfn,
        lru_count,
        zone_starts,
        zone_first,
    )
    lx = np.nan
    lp = 0.0
    for i in range(taken):
        pfn = bpfn[i]
        _young, lx, lp = mm.page_referenced_run(
            flags, t_look, gvp, span_owner, rate, pfn, now_ms, rs, lx, lp
        )
        f = (flags[pfn] & ~mm.F_ACTIVE) | mm.F_ONLRU
        flags[pfn] = f
        mm.ring_push(d_inact, m_inact, lru_pos, pfn)
        lru_count[mm.zone_index(pfn, zone_starts, zone_first), f & mm.F_LRU_MASK] += 1
    return scanned, taken


@njit(cache=True)
def _shrink_lruvec_fused(
    st,
    p,
    rings_d,
    rings_m,
    flags,
    gvp,
    span_owner,
    t_look,
    lru_pos,
    rate,
    cnt,
    swapped,
    z_free,
    z_wmark,
    z_boost,
    z_lres,
    z_start,
    z_end,
    z_cursor,
    z_type,
    lru_count,
    below_high,
    zone_starts,
    dem_nodes,
    dem_ptr,
    dem_zones,
    node_has_cpu,
    wake_possible,
    wake_req,
    hook_zones,
    bpfn,
    bres,
    bcand,
    bsub,
    bref2,
    push,
    counters,
    zone_counts,
    v2p,
    rs,
):
    """``shrink_lruvec()`` → ``shrink_list()`` → ``shrink_active_list()`` /
    ``shrink_inactive_list()`` + ``shrink_folio_list()``, as one resumable loop.

    Exactly the kernel's order: 32-page rounds over inactive anon, active anon, inactive file,
    active file; after each round kswapd stops once nr_to_reclaim is met, scaling the other
    type's remaining scan to the same proportion (once). Per inactive batch:
    ``folio_check_references``; cold anon is demoted (``demote_folio_list``: each target node's
    zones at LOW, then - after waking that node's kswapd - at MIN); failed demotions are
    retried without demotion (looked at again; no swap slot -> activated); freed frames go
    back to the buddy, survivors are put back (``move_folios_to_lru``); PGSCAN/PGSTEAL/
    PGDEMOTE/PGACTIVATE and ``lru_note_cost`` per batch.

    Returns a code: done, need ring room, wake node ``st[_ARG]``, or free-path hooks pending.
    """
    nr_to_reclaim = p[0]
    proportional = p[1] != 0
    may_deactivate = p[3]
    do_demote = p[4] != 0
    swap_total = p[5]
    now_ms = p[6]
    limit_pfn = p[7]
    node_col = p[8]
    zone_first = p[9]
    nzones = zone_starts.size
    while True:
        if st[_STAGE] == 1:
            # the rest of shrink_folio_list() for the isolated batch (resumable at the wake);
            # written here rather than called: a call would take and drop a reference to each
            # of its ~50 arrays per batch (docs/performance.md)
            taken = st[_TAKEN]
            lru = st[_BATCH_LRU]
            file = lru >= 2
            ncand = st[_NCAND]
            nr_demoted = 0
            ncand2 = 0  # cold pages left for normal reclaim
            if ncand > 0 and do_demote and not file:
                # demote_folio_list(): targets in order, LOW then MIN per node
                pos = st[_DEM_POS]
                while st[_DEM_NI] < dem_nodes.size and pos < ncand:
                    ni = st[_DEM_NI]
                    nid = dem_nodes[ni]
                    mark = st[_DEM_MARK]
                    if mark == 1 and st[_WOKEN] == 0:
                        st[_WOKEN] = 1
                        if wake_possible[nid]:
                            st[_ARG] = nid
                            st[_DEM_POS] = pos
                            return _WAKE
                        wake_req[nid] = True
                    wm = WMARK_LOW if mark == 0 else WMARK_MIN
                    for zz in range(dem_ptr[ni], dem_ptr[ni + 1]):
                        if pos >= ncand:
                            break
                        z = dem_zones[zz]
                        allow = z_free[z] - (z_wmark[z, wm] + z_boost[z] + z_lres[z, 3])
                        take = min(allow, ncand - pos)
                        if take <= 0:
                            continue
                        moved = 0
                        zs0 = z_start[z]
                        ze = z_end[z]
                        c = z_cursor[z]
                        for _ in range(take):
                            s = bpfn[bcand[pos]]
                            # the zone cursor walks to the next free frame
                            looked = 0
                            while looked < ze - zs0:
                                if c >= ze:
                                    c = zs0
                                if gvp[c] < 0:
                                    break
                                c += 1
                                looked += 1
                            if looked >= ze - zs0:
                                break
                            mm.migrate_one(
                                s,
                                c,
                                gvp,
                                span_owner,
                                flags,
                                t_look,
                                False,
                                cnt,
                                node_col,
                                nid,
                                lru_count,
                                z,
                                v2p,
                            )
                            z_cursor[z] = c + 1
                            push[st[_PUSH_N]] = c
                            c += 1
                            st[_PUSH_N] += 1
                            bres[bcand[pos]] = _R_DEMOTED
                            pos += 1
                            moved += 1
                        z_free[z] -= moved
                        counters[mm.C_PGALLOC0 + z_type[z]] += moved
                        counters[mm.C_NUMA_HIT] += moved
                        if node_has_cpu[nid]:
                            counters[mm.C_NUMA_LOCAL] += moved
                        else:
                            counters[mm.C_NUMA_OTHER] += moved
                    if mark == 0:
                        st[_DEM_MARK] = 1
                    else:
                        st[_DEM_MARK] = 0
                        st[_WOKEN] = 0
                        st[_DEM_NI] = ni + 1
                nr_demoted = pos
                counters[mm.C_MIGRATE_OK] += pos
                counters[mm.C_MIGRATE_FAIL] += ncand - pos
                st[_PAGES_MIGRATED] += pos
                # the leftovers are retried with demotion off: looked at again
                if pos < ncand:
                    st[_NR_SCANNED] += ncand - pos
                    nf = 0
                    for j in range(pos, ncand):
                        bsub[nf] = bpfn[bcand[j]]
                        nf += 1
                    mm.check_references(
                        bsub, nf, flags, t_look, gvp, span_owner, rate, now_ms, bref2, rs
                    )
                    for j in range(pos, ncand):
                        i = bcand[j]
                        r = bref2[j - pos]
                        if r == mm.FOLIOREF_ACTIVATE:
                            bres[i] = _R_ACTIVATE
                        elif r == mm.FOLIOREF_KEEP:
                            bres[i] = _R_KEEP
                        else:
                            ncand2 += 1
            else:
                ncand2 = ncand
            # normal reclaim of the cold pages left (written out: see mem_map.migrate_one): a
            # clean file page is dropped; anon needs a swap slot (add_to_swap), else activated
            if ncand2 > 0:
                for j in range(ncand):
                    i = bcand[j]
                    if bres[i] != _R_RECLAIM:
                        continue
                    pfn = bpfn[i]
                    if file or st[_SWAP_USED] < swap_total:
                        o = mm.page_owner(gvp, span_owner, pfn)
                        if not file:
                            st[_SWAP_USED] += 1
                            swapped[o] += 1
                            counters[mm.C_PSWPOUT] += 1
                        cnt[o, node_col] -= 1
                        gvp[pfn] = -1
                        flags[pfn] = 0
                        bres[i] = _R_PAGEOUT
                    else:
                        bres[i] = _R_ACTIVATE
            # freed frames back to the buddy, per zone (free_unref_folios -> the per-CPU free path)
            for z in range(nzones):
                zone_counts[z] = 0
            nr_reclaimed = 0
            nr_pageout = 0
            for i in range(taken):
                if bres[i] == _R_DEMOTED or bres[i] == _R_PAGEOUT:
                    nr_reclaimed += 1
                    if bres[i] == _R_PAGEOUT and not file:
                        nr_pageout += 1
                    pfn = bpfn[i]
                    zl = 0
                    while zl + 1 < nzones and pfn >= zone_starts[zl + 1]:
                        zl += 1
                    zone_counts[zl] += 1
            for zl in range(nzones):
                c = zone_counts[zl]
                if c == 0:
                    continue
                z = zone_first + zl
                z_free[z] += c
                counters[mm.C_PGFREE] += c
                if below_high[z] and z_free[z] > z_wmark[z, WMARK_HIGH] + z_boost[z] + z_lres[z, 3]:
                    below_high[z] = False
                    hook_zones[z] = True
            # move_folios_to_lru(): survivors back on their lists
            base = lru & ~1
            # the two lists as locals: indexing the tuple inside the loop would take and drop an
            # array reference per page
            d_i = rings_d[base]
            m_i = rings_m[base]
            d_a = rings_d[base + 1]
            m_a = rings_m[base + 1]
            nr_activate = 0
            mask_a = d_a.size - 1
            mask_i = d_i.size - 1
            for i in range(taken):
                r = bres[i]
                if r == _R_DEMOTED or r == _R_PAGEOUT:
                    continue
                pfn = bpfn[i]
                f = flags[pfn]
                # list_add() written out (mem_map.ring_push): an inlined helper taking the
                # ring arrays under this branch kept an atomic incref/decref per array per page
                if r == _R_ACTIVATE:
                    new = np.uint8(base) | mm.F_ACTIVE
                    q = m_a[0]
                    d_a[q & mask_a] = pfn
                    m_a[0] = q + 1
                    nr_activate += 1
                else:
                    new = np.uint8(base)
                    q = m_i[0]
                    d_i[q & mask_i] = pfn
                    m_i[0] = q + 1
                flags[pfn] = (f & ~mm.F_LRU_MASK) | new | mm.F_ONLRU
                lru_pos[pfn] = q & mm.POS_MASK
                zl = 0
                while zl + 1 < nzones and pfn >= zone_starts[zl + 1]:
                    zl += 1
                lru_count[zone_first + zl, new] += 1
            counters[mm.C_PGACTIVATE] += nr_activate
            counters[mm.C_PGDEMOTE] += nr_demoted
            counters[mm.C_PGSTEAL] += nr_reclaimed
            counters[mm.C_PGSTEAL_FILE if file else mm.C_PGSTEAL_ANON] += nr_reclaimed
            st[_NR_RECLAIMED] += nr_reclaimed
            # lru_note_cost(): cost = io * SWAP_CLUSTER_MAX + rotated; halved past 1/4 of the LRU
            cost = nr_pageout * SWAP_CLUSTER_MAX + (taken - nr_reclaimed)
            if file:
                st[_FILE_COST] += cost
            else:
                st[_ANON_COST] += cost
            # the node's LRU size: at the start of the pass less what this pass took off it
            lru_size = p[10] - st[_NR_RECLAIMED]
            if st[_FILE_COST] + st[_ANON_COST] > lru_size // 4:
                st[_FILE_COST] //= 2
                st[_ANON_COST] //= 2
            st[_STAGE] = 0
            if hook_zones.any():
                return _HOOKS
            continue
        lru_i = st[_LRU_I]
        if lru_i == -1:
            if st[0] == 0 and st[3] == 0 and st[2] == 0:
                return _DONE
            st[_LRU_I] = 0
            continue
        if lru_i == 4:
            st[_LRU_I] = -1
            if st[_NR_RECLAIMED] < nr_to_reclaim or proportional or st[_SCAN_ADJUSTED]:
                continue
            nr_file = st[2] + st[3]
            nr_anon = st[0] + st[1]
            if nr_file == 0 or nr_anon == 0:
                return _DONE
            if nr_file > nr_anon:
                scan_target = st[4 + 0] + st[4 + 1] + 1
                base = 0
                percentage = nr_anon * 100 // scan_target
            else:
                scan_target = st[4 + 2] + st[4 + 3] + 1
                base = 2
                percentage = nr_file * 100 // scan_target
            st[base] = 0
            st[base + 1] = 0
            other = 0 if base == 2 else 2
            for lru in (other, other + 1):
                scanned = st[4 + lru] - st[lru]
                v = st[4 + lru] * (100 - percentage) // 100
                v -= min(v, scanned)
                st[lru] = v
            st[_SCAN_ADJUSTED] = 1
            continue
        lru = lru_i
        if st[lru] == 0:
            st[_LRU_I] = lru_i + 1
            continue
        # room for a batch's pushes on this node's lists and in the deferred-push buffer
        for j in range(4):
            m = rings_m[j]
            if rings_d[j].size - (m[0] - m[1]) < SWAP_CLUSTER_MAX:
                return _NEED_ROOM
        if st[_PUSH_N] + SWAP_CLUSTER_MAX > push.size:
            return _NEED_ROOM
        n = min(st[lru], SWAP_CLUSTER_MAX)
        st[lru] -= n
        st[_LRU_I] = lru_i + 1
        if lru & 1:
            bit = DEACTIVATE_FILE if lru >= 2 else DEACTIVATE_ANON
            if may_deactivate & bit:
                scanned, deact = _active_batch(
                    rings_d[lru],
                    rings_m[lru],
                    rings_d[lru - 1],
                    rings_m[lru - 1],
                    flags,
                    gvp,
                    span_owner,
                    t_look,
                    lru_pos,
                    rate,
                    lru,
                    n,
                    limit_pfn,
                    now_ms,
                    lru_count,
                    zone_starts,
                    zone_first,
                    bpfn,
                    rs,
                )
                counters[mm.C_PGREFILL] += scanned
                counters[mm.C_PGDEACTIVATE] += deact
                st[_PAGES_SCANNED] += scanned
            else:
                st[_SKIPPED_DEACT] = 1
            continue
        # shrink_inactive_list(): isolate, count, check references
        file = lru >= 2
        taken, scanned, _sk = mm.isolate_lru(
            rings_d[lru],
            rings_m[lru],
            flags,
            lru_pos,
            gvp,
            t_look,
            np.uint8(lru),
            n,
            limit_pfn,
            bpfn,
            lru_count,
            zone_starts,
            zone_first,
        )
        counters[mm.C_PGSCAN] += scanned
        counters[mm.C_PGSCAN_FILE if file else mm.C_PGSCAN_ANON] += scanned
        st[_PAGES_SCANNED] += scanned
        if taken == 0:
            continue
        st[_NR_SCANNED] += taken
        mm.check_references(bpfn, taken, flags, t_look, gvp, span_owner, rate, now_ms, bres, rs)
        ncand = 0
        for i in range(taken):
            if bres[i] == mm.FOLIOREF_RECLAIM:
                bcand[ncand] = i
                ncand += 1
        st[_TAKEN] = taken
        st[_BATCH_LRU] = lru
        st[_NCAND] = ncand
        st[_DEM_NI] = 0
        st[_DEM_MARK] = 0
        st[_DEM_POS] = 0
        st[_WOKEN] = 0
        st[_STAGE] = 1


# per-page outcome codes of a batch (bres after folio_check_references)
_R_RECLAIM, _R_KEEP, _R_ACTIVATE, _R_DEMOTED, _R_PAGEOUT = 0, 1, 2, 3, 4


def can_age_anon_pages(k: Kernel, pgdat: PgData, sc: ScanControl) -> bool:
    """``can_age_anon_pages()``: swap configured, or demotion possible from this node."""
    return k.swap.total_pages > 0 or can_demote(k, pgdat.node_id, sc)


def shrink_active_list(
    k: Kernel, pgdat: PgData, n: int, sc: ScanControl, lru: int, memcg: int = 0
) -> None:
    """``shrink_active_list()`` called on its own (``kswapd_age_node``, the end of
    ``shrink_lruvec``): one batch of :func:`_active_batch` on the (node, memcg) lruvec."""
    inact = lru - 1
    lists = pgdat.lruvecs[memcg].lists
    ring_i = lists[inact]
    ring_i.reserve(n, k.mem.flags, k.mem.lru_pos, inact)
    ring_a = lists[lru]
    buf = fused_buffers(k)
    scanned, deact = _active_batch(
        ring_a.data,
        ring_a.meta,
        ring_i.data,
        ring_i.meta,
        k.mem.flags,
        k.mem.gvp,
        k.regions.span_owner,
        k.mem.t_look,
        k.mem.lru_pos,
        k.regions.rate,
        lru,
        n,
        pgdat.highest_zone_limit_pfn(sc.reclaim_idx),
        k.now_ms(),
        k.za.lru_count_mc[memcg],
        pgdat.zone_starts(),
        pgdat.zone_first(),
        buf.bpfn,
        k.rs,
    )
    if sc.target_mem_cgroup is None:
        k.vmstat.inc("pgrefill", int(scanned))  # global reclaim only
    if memcg:
        k.memcgs[memcg].add_stat("pgrefill", int(scanned))
    k.vmstat.inc("pgdeactivate", int(deact))
    sc.pages_scanned += int(scanned)


# ---------------------------------------------------------------------------------------------
# kswapd


def wakeup_kswapd(k: Kernel, zone: Zone, gfp: Gfp | None, order: int, highest_zoneidx: int) -> None:
    """``wakeup_kswapd()``: record the request; wake the thread unless it is awake already,
    the node is hopeless, or it is balanced and not boosted (then only kcompactd, a no-op at
    order 0)."""
    if zone.managed == 0:
        return
    pgdat = k.pgdats[zone.node_id]
    ks = pgdat.kswapd
    assert ks is not None
    if (
        pgdat.kswapd_highest_zoneidx == MAX_NR_ZONES
        or pgdat.kswapd_highest_zoneidx < highest_zoneidx
    ):
        pgdat.kswapd_highest_zoneidx = highest_zoneidx
    if pgdat.kswapd_order < order:
        pgdat.kswapd_order = order
    if not ks.is_sleeping():
        return
    if k.policy.kswapd_hopeless(k, pgdat, order) or (
        pgdat_balanced(pgdat, order, highest_zoneidx, k.sysctl.numa_balancing)
        and not pgdat_watermark_boosted(pgdat, highest_zoneidx)
    ):
        return
    k.trace.emit(
        "mm_vmscan_wakeup_kswapd",
        -1,
        f"nid={pgdat.node_id} order={order} gfp_flags="
        f"{'GFP_HIGHUSER_MOVABLE' if gfp is not None and gfp.direct_reclaim else 'none'}",
    )
    ks.wake()


def prepare_kswapd_sleep(k: Kernel, pgdat: PgData, order: int, highest_zoneidx: int) -> bool:
    """``prepare_kswapd_sleep()``: a hopeless node sleeps ("leave it to direct reclaim"); so
    does a balanced one."""
    if k.policy.kswapd_hopeless(k, pgdat, order):
        return True
    return pgdat_balanced(pgdat, order, highest_zoneidx, k.sysctl.numa_balancing)


@dataclass
class BalancePgdat:
    """One call of ``balance_pgdat()``, run one priority iteration per :meth:`step`."""

    k: Kernel
    pgdat: PgData
    order: int
    highest_zoneidx: int
    sc: ScanControl = field(default_factory=ScanControl)
    nr_boost_reclaim: int = 0
    boosted: bool = False
    zone_boosts: list[int] = field(default_factory=list)
    done: bool = False

    def __post_init__(self) -> None:
        k, pgdat = self.k, self.pgdat
        self.sc = ScanControl(order=self.order, kswapd=True, may_unmap=True)
        k.vmstat.inc("pageoutrun", 1)
        zs = pgdat.zones[: self.highest_zoneidx + 1]
        self.zone_boosts = [z.boost if z is not None else 0 for z in zs]
        self.nr_boost_reclaim = sum(self.zone_boosts)
        self.boosted = self.nr_boost_reclaim > 0
        self._restart()

    def _restart(self) -> None:
        self.sc.priority = DEF_PRIORITY

    def step(self) -> float:
        """One iteration of balance_pgdat's priority loop; returns the CPU seconds it took."""
        k, pgdat, sc = self.k, self.pgdat, self.sc
        sc.pages_scanned = sc.pages_migrated = 0
        nr_reclaimed_before = sc.nr_reclaimed
        raise_priority = True
        sc.reclaim_idx = self.highest_zoneidx
        balanced = pgdat_balanced(pgdat, sc.order, self.highest_zoneidx, k.sysctl.numa_balancing)
        if not balanced and self.nr_boost_reclaim:
            self.nr_boost_reclaim = 0
            self._restart()
            return k.cost_of(sc)
        if not self.nr_boost_reclaim and balanced:
            self._finish(failed=False)
            return k.cost_of(sc)
        if self.nr_boost_reclaim and sc.priority == DEF_PRIORITY - 2:
            raise_priority = False
        sc.may_writepage = not self.nr_boost_reclaim
        sc.may_swap = not self.nr_boost_reclaim
        kswapd_age_node(k, pgdat, sc)
        sc.nr_scanned = 0
        if kswapd_shrink_node(k, pgdat, sc):
            raise_priority = False
        delta = sc.nr_reclaimed - nr_reclaimed_before
        self.nr_boost_reclaim -= min(self.nr_boost_reclaim, delta)
        if self.nr_boost_reclaim and not delta:
            self._end_of_loop()
            return k.cost_of(sc)
        if raise_priority or not delta:
            sc.priority -= 1
        if sc.priority < 1:
            self._end_of_loop()
        return k.cost_of(sc)

    def _end_of_loop(self) -> None:
        """After the priority loop: a run that went through every priority without reclaiming
        while cache trim mode failed restarts once with it off (v6.9+); otherwise a run that
        reclaimed nothing is a failure."""
        sc = self.sc
        if (
            sc.nr_reclaimed == 0
            and sc.priority < 1
            and not sc.no_cache_trim_mode
            and sc.cache_trim_mode_failed
            and self.k.policy.cache_trim_retry
        ):
            sc.no_cache_trim_mode = True
            self._restart()
            return
        failed = self.sc.nr_reclaimed == 0
        if failed:
            self.k.policy.balance_pgdat_failed(self.k, self.pgdat, self.boosted)
        self._finish(failed)

    def _finish(self, failed: bool) -> None:
        snapshot_refaults(self.pgdat, None)
        # out: clear the boosts this run consumed (then kcompactd at pageblock order)
        if self.boosted:
            for z, b in zip(self.pgdat.zones, self.zone_boosts, strict=False):
                if z is not None and b:
                    z.za.boost[z.idx] = max(0, z.za.boost[z.idx] - b)
        self.done = True


def kswapd_age_node(k: Kernel, pgdat: PgData, sc: ScanControl) -> None:
    """``kswapd_age_node()``: keep the anon inactive list from getting too small."""
    if k.mglru:
        return
    if not can_age_anon_pages(k, pgdat, sc):
        return
    if not inactive_is_low(pgdat, LRU_INACTIVE_ANON):
        return
    # every memcg's anon lruvec on the node (mem_cgroup_iter from the root)
    for memcg in k.memcgs.iter(None):
        shrink_active_list(k, pgdat, SWAP_CLUSTER_MAX, sc, LRU_ACTIVE_ANON, memcg)


def kswapd_shrink_node(k: Kernel, pgdat: PgData, sc: ScanControl) -> bool:
    """``kswapd_shrink_node()``: aim at sum(max(HIGH, 32)) pages per pass (HIGH, not PROMO);
    report whether the pass scanned at least that many."""
    sc.nr_to_reclaim = 0
    for z in pgdat.zones[: sc.reclaim_idx + 1]:
        if z is not None and z.managed > 0:
            sc.nr_to_reclaim += max(z.wmark(WMARK_HIGH), SWAP_CLUSTER_MAX)
    shrink_node(k, pgdat, sc)
    if sc.order and sc.nr_reclaimed >= (2 << sc.order):
        sc.order = 0
    return sc.nr_scanned >= sc.nr_to_reclaim


class Kswapd:
    """The ``kswapd()`` thread of one node as a state machine: sleep, run, nap.

    run: executing ``balance_pgdat`` (one priority iteration per step);
    nap: ``kswapd_try_to_sleep``'s HZ/10 nap (a wakeup cuts it short);
    sleep: the full sleep, left only through ``wakeup_kswapd``.
    """

    def __init__(self, k: Kernel, pgdat: PgData) -> None:
        self.k = k
        self.pgdat = pgdat
        self.state = "sleep"
        self.t = 0.0  # the thread's own clock (it may run ahead of the engine by one step)
        self.run: BalancePgdat | None = None
        self.nap_until = 0.0
        self.woken_in_nap = False
        self.cpu_s = 0.0
        self.runs = 0
        self._run_t0 = 0.0
        self._run_work = 0
        self._run_failures = 0
        self.alloc_order = 0
        self.reclaim_order = 0
        self.highest_zoneidx = MAX_NR_ZONES - 1

    def is_sleeping(self) -> bool:
        """``waitqueue_active(&pgdat->kswapd_wait)``: napping counts as sleeping."""
        return self.state in ("sleep", "nap")

    def is_awake(self) -> bool:
        return self.state == "run"

    def wake(self) -> None:
        """``wake_up_interruptible(&pgdat->kswapd_wait)``."""
        if self.state == "sleep":
            self.state = "run"
            self.t = max(self.t, self.k.now)
            self._consume_request()
        elif self.state == "nap":
            self.woken_in_nap = True

    def _consume_request(self) -> None:
        pg = self.pgdat
        self.alloc_order = pg.kswapd_order
        if pg.kswapd_highest_zoneidx != MAX_NR_ZONES:
            self.highest_zoneidx = pg.kswapd_highest_zoneidx
        pg.kswapd_order = 0
        pg.kswapd_highest_zoneidx = MAX_NR_ZONES

    def advance(self, until: float) -> None:
        """Run the thread up to engine time ``until``."""
        k = self.k
        while True:
            if self.state == "sleep":
                self.t = until
                return
            if self.state == "nap":
                if self.woken_in_nap:
                    self.woken_in_nap = False
                    k.vmstat.inc("kswapd_low_wmark_hit_quickly", 1)
                    self.t = max(self.t, k.now)
                    self.state = "run"
                    self._consume_request()
                    continue
                if self.nap_until > until:
                    self.t = until
                    return
                self.t = self.nap_until
                if prepare_kswapd_sleep(k, self.pgdat, self.reclaim_order, self.highest_zoneidx):
                    self.state = "sleep"
                    k.trace.emit(
                        "mm_vmscan_kswapd_sleep",
                        self.pgdat.node_id,
                        f"nid={self.pgdat.node_id}",
                        t=self.t,
                    )
                    continue
                k.vmstat.inc("kswapd_high_wmark_hit_quickly", 1)
                self.state = "run"
                self._consume_request()
                continue
            # run
            if self.t >= until:
                return
            if self.run is None:
                self.runs += 1
                k.trace.emit(
                    "mm_vmscan_kswapd_wake",
                    self.pgdat.node_id,
                    f"nid={self.pgdat.node_id} order={self.alloc_order}",
                    t=self.t,
                )
                self.run = BalancePgdat(k, self.pgdat, self.alloc_order, self.highest_zoneidx)
                self._run_t0 = self.t
                self._run_work = 0
                self._run_failures = self.pgdat.kswapd_failures
            # the pass runs on kswapd's own clock: its accessed-bit checks see that time
            saved, k.now = k.now, self.t
            try:
                cost = self.run.step()
            finally:
                k.now = saved
            self.t += cost
            self.cpu_s += cost
            self._run_work += self.run.sc.pages_scanned + self.run.sc.pages_migrated
            if self.run.done:
                self.reclaim_order = self.run.sc.order
                idle = (
                    self._run_work == 0
                    and self.run.sc.nr_reclaimed == 0
                    and self.pgdat.kswapd_failures == self._run_failures
                )
                self.run = None
                self.try_to_sleep()
                if idle and self.state == "run":
                    self._repeat_idle_runs(until, self.t - self._run_t0)

    def _repeat_idle_runs(self, until: float, d: float) -> None:
        """A run that looked at no page, reclaimed nothing and left ``kswapd_failures`` as it
        was, and after which kswapd cannot sleep, is repeated identically until something
        else changes the node, which can only happen after this engine step: account those
        runs at once (counters, CPU time, one trace line with ``repeat=N``) instead of
        simulating each. This is a kswapd spinning on a node with nothing to scan (v4.10, or
        MGLRU before Wei Xu's fix)."""
        if d <= 0:
            return
        n = int((until - self.t) // d)
        if n <= 0:
            return
        k = self.k
        self.t += n * d
        self.cpu_s += n * d
        self.runs += n
        k.vmstat.inc("pageoutrun", n)
        k.vmstat.inc("kswapd_high_wmark_hit_quickly", n)
        k.trace.emit(
            "mm_vmscan_kswapd_wake",
            self.pgdat.node_id,
            f"nid={self.pgdat.node_id} order={self.alloc_order} repeat={n}",
            t=self.t - d,
        )

    def try_to_sleep(self) -> None:
        """``kswapd_try_to_sleep()``: nap HZ/10 if the node may sleep, else loop at once."""
        k = self.k
        if prepare_kswapd_sleep(k, self.pgdat, self.reclaim_order, self.highest_zoneidx):
            self.state = "nap"
            self.nap_until = self.t + KSWAPD_NAP_S
            self.woken_in_nap = False
        else:
            k.vmstat.inc("kswapd_high_wmark_hit_quickly", 1)
            self._consume_request()


# ---------------------------------------------------------------------------------------------
# direct reclaim


def try_to_free_pages(k: Kernel, zl: list[Zone], order: int, gfp: Gfp) -> tuple[int, float]:
    """``try_to_free_pages()`` → ``do_try_to_free_pages()``: shrink every node of the zonelist
    once per priority, 12 down to 0, until 32 pages are reclaimed. Returns (reclaimed, cost).
    """
    sc = ScanControl(
        nr_to_reclaim=SWAP_CLUSTER_MAX, order=order, reclaim_idx=gfp.highest_zoneidx, kswapd=False
    )
    # throttle_direct_reclaim(): only the first node <= NORMAL is checked; a hopeless node is
    # never throttled. The throttle itself is not modelled (docs/fidelity.md).
    k.vmstat.inc(f"allocstall_{('dma', 'dma32', 'normal', 'movable')[gfp.highest_zoneidx]}", 1)
    k.trace.emit(
        "mm_vmscan_direct_reclaim_begin",
        -1,
        f"order={order} gfp_flags="
        f"{'GFP_KERNEL' if gfp.highest_zoneidx <= ZONE_NORMAL else 'GFP_HIGHUSER_MOVABLE'}",
    )
    do_try_to_free_pages(k, zl, sc)
    k.trace.emit("mm_vmscan_direct_reclaim_end", -1, f"nr_reclaimed={sc.nr_reclaimed}")
    return sc.nr_reclaimed, k.cost_of(sc)


def do_try_to_free_pages(k: Kernel, zl: list[Zone], sc: ScanControl) -> int:
    """``do_try_to_free_pages()``: priorities 12..0 over ``shrink_zones`` until
    nr_to_reclaim; with nothing reclaimed, retry forcing deactivation if an active list was
    skipped, then retry reclaiming memory.low-protected memcgs if any were skipped."""
    while True:
        sc.priority = DEF_PRIORITY
        while sc.priority >= 0:
            sc.nr_scanned = 0
            shrink_zones(k, zl, sc)
            if sc.nr_reclaimed >= sc.nr_to_reclaim:
                break
            sc.priority -= 1
        last = -1
        for z in zl:
            if z.node_id != last:
                last = z.node_id
                snapshot_refaults(k.pgdats[last], sc.target_mem_cgroup)
        if sc.nr_reclaimed:
            return sc.nr_reclaimed
        if sc.skipped_deactivate:
            sc.force_deactivate = True
            sc.skipped_deactivate = False
            continue
        if sc.memcg_low_skipped:
            # "Untapped cgroup reserves? Don't OOM, retry."
            sc.force_deactivate = False
            sc.memcg_low_reclaim = True
            sc.memcg_low_skipped = False
            continue
        return 0


def try_to_free_mem_cgroup_pages(
    k: Kernel, memcg: int, nr_pages: int, may_swap: bool = True, nid: int | None = None
) -> tuple[int, float]:
    """``try_to_free_mem_cgroup_pages()``: limit reclaim of one memcg (memory.high via
    ``reclaim_high``, memory.max via ``try_charge``): ``do_try_to_free_pages`` over the
    zonelist of the current CPU's node with ``sc->target_mem_cgroup`` set, all zones,
    nr_to_reclaim = max(nr_pages, 32). It goes through ``shrink_node``, so its progress
    resets ``kswapd_failures`` like any other reclaim (the policy decides). Not counted in
    allocstall / pgscan_direct / pgsteal_direct (global reclaim only). Returns (reclaimed,
    CPU seconds)."""
    from .page_alloc import GFP_HIGHUSER_MOVABLE, zonelist

    if nid is None:
        nid = next((pg.node_id for pg in k.pgdats if pg.nr_cpus > 0), 0)
    sc = ScanControl(
        nr_to_reclaim=max(nr_pages, SWAP_CLUSTER_MAX),
        reclaim_idx=MAX_NR_ZONES - 1,
        may_swap=may_swap,
        kswapd=False,
        target_mem_cgroup=memcg,
    )
    k.trace.emit("mm_vmscan_memcg_reclaim_begin", -1, f"memcg={memcg} nr_to_reclaim={nr_pages}")
    zl = zonelist(k, nid, GFP_HIGHUSER_MOVABLE, None)
    do_try_to_free_pages(k, zl, sc)
    k.trace.emit("mm_vmscan_memcg_reclaim_end", -1, f"nr_reclaimed={sc.nr_reclaimed}")
    return sc.nr_reclaimed, k.cost_of(sc)


def shrink_zones(k: Kernel, zl: list[Zone], sc: ScanControl) -> None:
    """``shrink_zones()``: each node of the zonelist once per priority pass."""
    last = -1
    for z in zl:
        if z.zone_type > sc.reclaim_idx:
            continue
        if z.node_id == last:
            continue
        last = z.node_id
        shrink_node(k, k.pgdats[z.node_id], sc)


__all__ = [
    "BalancePgdat",
    "Kswapd",
    "ScanControl",
    "ZONE_NORMAL",
    "can_demote",
    "kswapd_clear_hopeless",
    "kswapd_hopeless",
    "prepare_kswapd_sleep",
    "shrink_node",
    "try_to_free_mem_cgroup_pages",
    "try_to_free_pages",
    "wakeup_kswapd",
    "zone_reclaimable_pages",
]
