"""The page allocator (mm/page_alloc.c): zonelist walk, slow path, retry, OOM, free path.

Allocations are handled in batches of pages that one task faults in one engine step. A batch
is split exactly where a page would see a different outcome: the fast path takes pages from a
zone while ``free > LOW + lowmem_reserve``, then moves to the next zone of the zonelist (the
silent spill to the CXL node); when every zone fails LOW the slow path runs once for the next
page (wake all kswapds, retry at MIN, direct reclaim, should_reclaim_retry, OOM).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from . import mem_map as mm
from .constants import (
    LRU_INACTIVE_ANON,
    LRU_INACTIVE_FILE,
    MAX_RECLAIM_RETRIES,
    PAGE_ALLOC_COSTLY_ORDER,
    WMARK_HIGH,
    WMARK_LOW,
    WMARK_MIN,
    ZONE_MOVABLE,
    ZONE_NORMAL,
)
from .mmzone import PgData, Zone
from .watermarks import zone_watermark_ok

if TYPE_CHECKING:
    from .state import Kernel


def zone_batchsize(managed: int) -> int:
    """``zone_batchsize()``: min(managed / 1024, 1 MiB of pages) / 4, clamped to 2^n - 1."""
    batch = max(1, min(managed >> 10, 256) // 4)
    b = batch + batch // 2
    return max(1, (1 << (b.bit_length() - 1)) - 1)


def zone_pcp_init(k: Kernel) -> None:
    """``zone_pcp_update()`` → ``zone_set_pageset_high_and_batch()``: per zone the pcp batch,
    ``high_min = zone_highsize(.., 0)`` (the LOW mark split over the node's CPUs, all online
    CPUs for a CPU-less node, at least 4 batches) and ``high_max = zone_highsize(.., 8)``
    (managed / 8, split the same way); ``pcp->high`` starts at high_min."""
    za = k.za
    online = max(1, sum(pg.nr_cpus for pg in k.pgdats))
    for i in range(za.managed.size):
        managed = int(za.managed[i])
        batch = zone_batchsize(managed)
        split = k.pgdats[int(za.node[i])].nr_cpus or online
        high_min = max(int(za.wmark[i, WMARK_LOW]) // split, batch << 2)
        high_max = max(managed // 8 // split, batch << 2)
        za.pcp_cfg[i] = (batch, high_min, high_max)
        za.pcp[i] = (0, high_min, 0)


@dataclass(frozen=True)
class Gfp:
    """The gfp_t bits this model distinguishes."""

    direct_reclaim: bool = True  # __GFP_DIRECT_RECLAIM
    kswapd_reclaim: bool = True  # __GFP_KSWAPD_RECLAIM
    thisnode: bool = False  # __GFP_THISNODE
    nomemalloc: bool = False  # __GFP_NOMEMALLOC
    highest_zoneidx: int = ZONE_MOVABLE  # gfp_zone()
    fs: bool = True  # __GFP_FS


GFP_HIGHUSER_MOVABLE = Gfp()
# GFP_KERNEL (slab, page tables, skbs): __GFP_RECLAIM | __GFP_IO | __GFP_FS and no zone
# modifier, so gfp_zone() is ZONE_NORMAL: kernel (unmovable) allocations can never use
# ZONE_MOVABLE (a node whose memory is all ZONE_MOVABLE, e.g. CXL onlined movable by dax/kmem,
# is not in their zonelist, and its kswapd is never woken by them).
GFP_KERNEL = Gfp(highest_zoneidx=ZONE_NORMAL)
# alloc_demote_folio(): GFP_HIGHUSER_MOVABLE & ~__GFP_RECLAIM | __GFP_NOWARN | __GFP_NOMEMALLOC
# | GFP_NOWAIT: no direct reclaim, wakes kswapd, never below MIN.
GFP_DEMOTE = Gfp(direct_reclaim=False, kswapd_reclaim=True, nomemalloc=True)
# alloc_misplaced_dst_folio(): __GFP_THISNODE, no __GFP_RECLAIM at all, NOMEMALLOC|NORETRY.
GFP_PROMOTE = Gfp(direct_reclaim=False, kswapd_reclaim=False, thisnode=True, nomemalloc=True)


def zonelist(k: Kernel, preferred_nid: int, gfp: Gfp, nodemask: list[int] | None) -> list[Zone]:
    """``node_zonelist()`` + nodemask: nodes by distance from the preferred node, zones high
    to low within a node (``build_zonelists``); ``__GFP_THISNODE`` keeps the preferred node.

    The kernel builds the zonelists once (``build_all_zonelists`` at boot; distances and
    populated zones do not change here), so each list is built once and copied per call."""
    key = (
        preferred_nid,
        gfp.thisnode,
        gfp.highest_zoneidx,
        tuple(nodemask or ()),
        nodemask is None,
    )
    zl = k.zonelists.get(key)
    if zl is None:
        zl = k.zonelists[key] = _build_zonelist(k, preferred_nid, gfp, nodemask)
    return list(zl)


def _build_zonelist(
    k: Kernel, preferred_nid: int, gfp: Gfp, nodemask: list[int] | None
) -> list[Zone]:
    nodes = sorted(range(len(k.pgdats)), key=lambda n: (k.distance[preferred_nid][n], n))
    if gfp.thisnode:
        nodes = [preferred_nid]
    if nodemask is not None:
        nodes = [n for n in nodes if n in nodemask]
    out: list[Zone] = []
    for n in nodes:
        for z in reversed(k.pgdats[n].zones[: gfp.highest_zoneidx + 1]):
            if z is not None and z.managed > 0:
                out.append(z)
    return out


def _take(k: Kernel, z: Zone, n: int, region: int, lru_id: int) -> int:
    """Place ``n`` pages of ``region`` in zone ``z`` (``rmqueue`` + ``lru_cache_add``).

    New anon folios go to the inactive list (``folio_add_lru_vma`` since v5.9). ``lru_id < 0``:
    an unmovable kernel allocation, on no LRU (``rmqueue`` only).
    """
    if n <= 0:
        return 0
    pg = k.pgdats[z.node_id]
    if lru_id < 0:
        got, cur = mm.take_frames(
            k.mem.gvp,
            k.mem.flags,
            z.start_pfn,
            z.end_pfn,
            k.za.cursor[z.idx],
            n,
            int(k.regions.vspan[region, 0]),
        )
        k.za.cursor[z.idx] = cur
        k.regions.cnt[region, z.node_id] += got
        k.regions.touched[region] += got
        k.za.free[z.idx] -= got
        k.vmstat.inc(f"pgalloc_{z.name.lower()}", got)
        k.policy.prep_new_page(k, pg, got)
        return got
    memcg = int(k.regions.memcg[region])  # the folio's lruvec: (node, memcg)
    ring = pg.lruvecs[memcg].lists[lru_id]
    ring.reserve(n, k.mem.flags, k.mem.lru_pos, lru_id)
    za = k.za
    got, cur = mm.alloc_in_range(
        k.mem.gvp,
        k.mem.flags,
        k.mem.t_look,
        k.mem.lru_pos,
        z.start_pfn,
        z.end_pfn,
        za.cursor[z.idx],
        n,
        region,
        int(k.regions.touched[region]),
        k.now_ms(),
        lru_id,
        ring.data,
        ring.meta,
        k.regions.cnt,
        z.node_id,
        za.lru_count_mc[memcg],
        z.idx,
        k.regions.v2p,
        k.regions.vspan,
    )
    za.cursor[z.idx] = cur
    k.regions.touched[region] += got
    za.free[z.idx] -= got
    k.vmstat.inc(f"pgalloc_{z.name.lower()}", got)
    k.policy.prep_new_page(k, pg, got)
    return got


def get_page_from_freelist(
    k: Kernel,
    n: int,
    gfp: Gfp,
    wmark: int,
    zl: list[Zone],
    preferred_nid: int,
    region: int,
    lru_id: int,
    min_reserve: bool = False,
) -> int:
    """``get_page_from_freelist()`` for a batch of ``n`` order-0 pages; returns pages taken.

    A zone below its mark is skipped (``zone_reclaim_mode == 0``): that is the silent spill to
    the next node. ZONE_BELOW_HIGH is set when an allocation sees the zone at/below HIGH.
    v6.18 first skips nodes whose kswapd is awake, then retries without skipping.
    """
    got = 0
    passes = [True, False] if k.policy.skip_kswapd_nodes and len(k.pgdats) > 1 else [False]
    for skip_awake in passes:
        skipped = False
        for z in zl:
            if got >= n:
                break
            pg = k.pgdats[z.node_id]
            if skip_awake and pg.kswapd is not None and pg.kswapd.is_awake():
                skipped = True
                continue
            hz = gfp.highest_zoneidx
            res = z.lowmem_reserve(hz)
            free = z.free
            mark = z.wmark(wmark)
            if min_reserve:
                mark -= mark // 2
            allowed = free - (mark + res)
            if allowed <= 0:
                if free <= z.wmark(WMARK_HIGH) + res:
                    k.za.below_high[z.idx] = True
                continue
            take = min(n - got, allowed)
            t = _take(k, z, take, region, lru_id)
            got += t
            if t and gfp.kswapd_reclaim:
                rmqueue_boosted_wake(k, z)  # ALLOC_KSWAPD
            if free - t + 1 <= z.wmark(WMARK_HIGH) + res:
                k.za.below_high[z.idx] = True
            zone_statistics(k, preferred_nid, z.node_id, t)
        if got >= n or not skipped:
            break
    return got


PAGEBLOCK_ORDER = 9  # x86-64 with 4 KiB pages (HPAGE_PMD_ORDER)
PAGEBLOCK_NR_PAGES = 1 << PAGEBLOCK_ORDER


def boost_watermark(k: Kernel, z: Zone) -> bool:
    """``boost_watermark()``: after a fallback steals a pageblock of another migratetype, raise
    every mark of the zone by a pageblock, up to watermark_boost_factor (150 %) of HIGH; not
    on zones smaller than 4 pageblocks or with the factor at 0."""
    factor = k.sysctl.watermark_boost_factor
    if not factor:
        return False
    if PAGEBLOCK_NR_PAGES * 4 > z.managed:
        return False
    max_boost = int(k.za.wmark[z.idx, WMARK_HIGH]) * factor // 10000
    if not max_boost:
        return False
    max_boost = max(PAGEBLOCK_NR_PAGES, max_boost)
    k.za.boost[z.idx] = min(int(k.za.boost[z.idx]) + PAGEBLOCK_NR_PAGES, max_boost)
    return True


def steal_pageblocks(k: Kernel, nid: int, count: int) -> None:
    """``count`` unmovable (GFP_KERNEL) allocations on node ``nid`` that find no free block of
    their migratetype and claim a MOVABLE pageblock (``__rmqueue_fallback`` ->
    ``try_to_claim_block``): each boosts the zone's watermarks and sets
    ZONE_BOOSTED_WATERMARK (ALLOC_KSWAPD), and its ``rmqueue`` then clears the bit and wakes
    kswapd (``wakeup_kswapd(zone, 0, 0, zone_idx)``). Buddy fragmentation itself is not
    modelled: this step stands for the moment it makes an allocation steal (docs/fidelity.md).
    """
    z = node_zone_for(k.pgdats[nid], ZONE_NORMAL)
    if z is None:
        return
    for _ in range(count):
        if boost_watermark(k, z):
            k.za.boosted_wmark[z.idx] = True
        rmqueue_boosted_wake(k, z)


def rmqueue_boosted_wake(k: Kernel, z: Zone) -> None:
    """The end of ``rmqueue()``: a zone flagged ZONE_BOOSTED_WATERMARK wakes kswapd."""
    if not k.za.boosted_wmark[z.idx]:
        return
    from .vmscan import wakeup_kswapd

    k.za.boosted_wmark[z.idx] = False
    wakeup_kswapd(k, z, None, 0, z.zone_type)


def zone_statistics(k: Kernel, preferred_nid: int, nid: int, n: int) -> None:
    """``zone_statistics()``: numa_hit/miss/foreign/local/other."""
    if n <= 0:
        return
    if nid == preferred_nid:
        k.vmstat.inc("numa_hit", n)
    else:
        k.vmstat.inc("numa_miss", n)
        k.vmstat.inc("numa_foreign", n)
    if k.pgdats[nid].nr_cpus > 0 and nid == preferred_nid:
        k.vmstat.inc("numa_local", n)
    else:
        k.vmstat.inc("numa_other", n)


@dataclass
class AllocResult:
    """What a batch allocation did: pages placed, simulated CPU time spent, OOM outcome."""

    got: int = 0
    stall_s: float = 0.0
    oom_killed_self: bool = False
    failed: bool = False


def wake_all_kswapds(k: Kernel, order: int, gfp: Gfp, zl: list[Zone]) -> None:
    """``wake_all_kswapds()``: ``wakeup_kswapd`` once per node of the zonelist."""
    from .vmscan import wakeup_kswapd

    last = -1
    for z in zl:
        if z.node_id != last:
            wakeup_kswapd(k, z, gfp, order, gfp.highest_zoneidx)
            last = z.node_id


def alloc_pages(
    k: Kernel,
    n: int,
    gfp: Gfp,
    preferred_nid: int,
    nodemask: list[int] | None,
    region: int,
    file: bool = False,
    task: object | None = None,
    kernel: bool = False,
    active: bool = False,
) -> AllocResult:
    """``__alloc_pages()`` for ``n`` order-0 pages faulted by one task.

    Fast path at LOW over the whole zonelist; for the remainder, the slow path
    (``__alloc_pages_slowpath``) page by page where it matters: wake every kswapd of the
    zonelist, retry at MIN, then direct reclaim and ``should_reclaim_retry`` until pages come
    or OOM is declared. ``kernel``: the pages go on no LRU (unmovable kernel memory).
    """
    from .oom import out_of_memory
    from .vmscan import try_to_free_pages

    res = AllocResult()
    # a refault within the workingset comes back active (workingset_refault: folio_set_active)
    if k.mglru and not file:
        # folio_add_lru() under MGLRU: a folio added in a page fault (lru_gen_in_fault) is set
        # active, so lru_gen_add_folio puts it in the youngest generation. Anon pages only
        # come from faults; page-cache reads are not faults.
        active = True
    lru_id = -1 if kernel else (LRU_INACTIVE_FILE if file else LRU_INACTIVE_ANON) + int(active)
    zl = zonelist(k, preferred_nid, gfp, nodemask)
    if not zl:
        res.failed = True
        return res
    res.got += get_page_from_freelist(k, n, gfp, WMARK_LOW, zl, preferred_nid, region, lru_id)
    no_progress_loops = 0
    while res.got < n:
        # __alloc_pages_slowpath
        if gfp.kswapd_reclaim:
            wake_all_kswapds(k, 0, gfp, zl)
        got = get_page_from_freelist(
            k, n - res.got, gfp, WMARK_MIN, zl, preferred_nid, region, lru_id
        )
        res.got += got
        if res.got >= n:
            break
        if not gfp.direct_reclaim:
            res.failed = True
            break
        # __alloc_pages_direct_reclaim
        progress, cost = try_to_free_pages(k, zl, 0, gfp)
        res.stall_s += cost
        if progress:
            got = get_page_from_freelist(
                k, n - res.got, gfp, WMARK_MIN, zl, preferred_nid, region, lru_id
            )
            res.got += got
            if res.got >= n:
                break
        if should_reclaim_retry(k, zl, gfp, progress > 0, no_progress_loops):
            no_progress_loops = 0 if progress > 0 else no_progress_loops + 1
            if got == 0 and progress == 0:
                res.stall_s += 0.001  # 1-jiffy back-off in should_reclaim_retry
            continue
        # __alloc_pages_may_oom: one last try at HIGH, then the OOM killer
        got = get_page_from_freelist(
            k, n - res.got, gfp, WMARK_HIGH, zl, preferred_nid, region, lru_id
        )
        res.got += got
        if res.got >= n:
            break
        victim_self = out_of_memory(k, gfp, nodemask, task)
        if victim_self is None:
            res.failed = True
            break
        if victim_self:
            res.oom_killed_self = True
            break
        no_progress_loops = 0
    return res


def should_reclaim_retry(
    k: Kernel, zl: list[Zone], gfp: Gfp, did_some_progress: bool, no_progress_loops: int
) -> bool:
    """``should_reclaim_retry()``: give up after MAX_RECLAIM_RETRIES loops without progress;
    otherwise retry while some zone would pass MIN if all its reclaimable pages were freed.

    ``zone_reclaimable_pages`` counts anon only if swap is free or the node can demote, so a
    node with a (full) demotion target keeps the allocator retrying.
    """
    loops = 0 if did_some_progress else no_progress_loops + 1
    if loops > MAX_RECLAIM_RETRIES:
        return False
    from .vmscan import zone_reclaimable_pages

    for z in zl:
        available = zone_reclaimable_pages(k, z) + z.free
        if k.policy.srr_double_counts_free and zone_reclaimable_pages(k, z) == 0:
            available += z.free
        if zone_watermark_ok(z, 0, z.wmark(WMARK_MIN), gfp.highest_zoneidx, free=available):
            return True
    return False


def free_pages_zone(k: Kernel, z: Zone, n: int) -> None:
    """Pages return to the buddy through the per-CPU lists (``free_frozen_page_commit``).

    When a zone flagged ZONE_BELOW_HIGH is above HIGH again the flag is cleared, and from v6.18
    (Chanwon Park) a hopeless node is revived there if a higher-numbered memory node exists.
    The per-CPU lists themselves are not modelled: frees reach the buddy at once.
    """
    if n <= 0:
        return
    k.za.free[z.idx] += n
    k.vmstat.inc("pgfree", n)
    if k.za.below_high[z.idx] and zone_watermark_ok(z, 0, z.wmark(WMARK_HIGH), ZONE_MOVABLE):
        k.za.below_high[z.idx] = False
        k.policy.zone_above_high_on_free(k, k.pgdats[z.node_id], z)


def kernel_alloc_churn(k: Kernel, nid: int) -> None:
    """One GFP_KERNEL order-0 allocation by a task on node ``nid`` that is freed again soon
    (slab, skbs, page-table and other kernel churn): only its watermark checks matter.

    ``__alloc_pages``: the fast path at LOW over the GFP_KERNEL zonelist; if every zone fails,
    ``__alloc_pages_slowpath`` wakes the kswapd of every node in that zonelist
    (``wake_all_kswapds``) and retries at MIN; below MIN it enters direct reclaim. The page
    itself is not placed (its life is short against the engine step), so it neither takes
    memory nor shows in pgalloc/pgfree. When the lower-tier nodes are ZONE_MOVABLE, node0's
    zones are the only ones here: a node0 at its LOW mark, where user allocations silently
    spill to CXL, still wakes kswapd0 through kernel allocations (docs/scenarios.md, Chanwon
    Park 2025).
    """
    from .vmscan import try_to_free_pages

    zl = zonelist(k, nid, GFP_KERNEL, None)
    hz = GFP_KERNEL.highest_zoneidx

    def ok(z: Zone, wmark: int) -> bool:
        return z.free > z.wmark(wmark) + z.lowmem_reserve(hz)

    if not zl or any(ok(z, WMARK_LOW) for z in zl):
        return
    wake_all_kswapds(k, 0, GFP_KERNEL, zl)
    if any(ok(z, WMARK_MIN) for z in zl):
        return
    try_to_free_pages(k, zl, 0, GFP_KERNEL)


def node_zone_for(pg: PgData, zone_type: int = ZONE_NORMAL) -> Zone | None:
    """Highest populated zone of a node at or below ``zone_type``."""
    for z in reversed(pg.zones[: zone_type + 1]):
        if z is not None and z.managed > 0:
            return z
    return None


__all__ = [
    "GFP_DEMOTE",
    "GFP_HIGHUSER_MOVABLE",
    "GFP_KERNEL",
    "GFP_PROMOTE",
    "PAGE_ALLOC_COSTLY_ORDER",
    "AllocResult",
    "Gfp",
    "alloc_pages",
    "free_pages_zone",
    "get_page_from_freelist",
    "kernel_alloc_churn",
    "should_reclaim_retry",
    "zonelist",
]
