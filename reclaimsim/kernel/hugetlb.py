"""The persistent hugetlb pool (mm/hugetlb.c): ``vm.nr_hugepages``.

Writing ``nr_hugepages`` runs ``set_max_huge_pages()``. Growing the pool allocates one huge
page at a time from the buddy allocator, round-robin over the nodes with memory
(``alloc_pool_huge_folio`` / ``for_each_node_mask_to_alloc`` starting at
``h->next_nid_to_alloc``); each attempt is a ``__GFP_THISNODE`` allocation of order
``huge_page_order(h)`` with ``htlb_alloc_mask(h)`` (GFP_HIGHUSER_MOVABLE for a migratable size)
and ``__GFP_RETRY_MAYFAIL`` (``alloc_buddy_hugetlb_folio``). When the attempt fails on every
node the loop stops, so the pool ends with "as many as could be allocated" and the sysctl reads
back the real count. Shrinking frees free huge pages round-robin (``remove_pool_hugetlb_folio``
with ``h->next_nid_to_free``) back to the buddy through the normal free path.

Huge pages in the pool are off every LRU (``PageHuge`` folios are never on ``lruvec`` lists), so
reclaim neither scans nor frees them; ``HugePages_Total``/``HugePages_Free`` (/proc/meminfo and
/sys/devices/system/node/nodeN/meminfo) count them.

Simplified (docs/fidelity.md): nobody maps pool pages (``HugePages_Free == HugePages_Total``,
no reservations), so ``HugePages_Rsvd`` and surplus pages (``nr_overcommit_hugepages``) stay 0;
the pool is resized within one engine step (the writer's time and kswapd's concurrent runs
during the resize are not interleaved); buddy fragmentation is not modelled, so a huge page is
"order-N free pages of the zone", not a physically contiguous block (compaction is moot).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from numba import njit

from .constants import MAX_RECLAIM_RETRIES, WMARK_LOW, WMARK_MIN
from .mem_map import take_frames
from .page_alloc import Gfp, free_pages_zone, wake_all_kswapds, zone_statistics
from .watermarks import zone_watermark_ok

if TYPE_CHECKING:
    from .mmzone import Zone
    from .state import Kernel

# alloc_pool_huge_folio(): htlb_alloc_mask(h) | __GFP_THISNODE, plus __GFP_RETRY_MAYFAIL
# (alloc_buddy_hugetlb_folio, "try hard"): direct reclaim, wakes kswapd, never OOM.
GFP_HUGETLB = Gfp(thisnode=True)


@njit(cache=True)
def _release_frames(gvp, flags, start, end, n, g):
    """Give ``n`` of the pool's frames in [start, end) back (their gvp is the pool region's
    span base ``g``; -1 = free)."""
    got = 0
    for c in range(end - 1, start - 1, -1):
        if got >= n:
            break
        if gvp[c] == g:
            gvp[c] = -1
            flags[c] = 0
            got += 1
    return got


@dataclass
class HState:
    """``struct hstate`` for the one huge page size of the machine."""

    order: int
    region: int
    nr_huge_pages: int = 0
    free_huge_pages: int = 0
    nr_huge_pages_node: list[int] = field(default_factory=list)
    free_huge_pages_node: list[int] = field(default_factory=list)
    # (zone index, huge pages) per node, so frees go back to the zone they came from
    zone_pages: dict[int, int] = field(default_factory=dict)
    next_nid_to_alloc: int = 0
    next_nid_to_free: int = 0

    @property
    def pages_per_huge_page(self) -> int:
        return 1 << self.order


def hugetlb_init(k: Kernel) -> HState:
    """``hugetlb_init()`` / ``hugetlb_add_hstate(order)``: an empty pool of the machine's
    ``hugepagesz``."""
    from ..units import parse_size

    size = parse_size(k.scenario.machine.hugepagesz)
    order = (size // 4096).bit_length() - 1
    region = k.regions.add("hugetlb", False, npages=1)  # pool frames: no page table
    nn = len(k.pgdats)
    h = HState(order, region, nr_huge_pages_node=[0] * nn, free_huge_pages_node=[0] * nn)
    h.next_nid_to_alloc = h.next_nid_to_free = _first_memory_node(k)
    return h


def _memory_nodes(k: Kernel) -> list[int]:
    """``node_states[N_MEMORY]``: nodes with managed memory."""
    return [pg.node_id for pg in k.pgdats if pg.managed_pages() > 0]


def _first_memory_node(k: Kernel) -> int:
    nodes = _memory_nodes(k)
    return nodes[0] if nodes else 0


def _next_node(nodes: list[int], nid: int) -> int:
    """``next_node_allowed()``: the next node of the mask after ``nid``, wrapping."""
    later = [n for n in nodes if n > nid]
    return later[0] if later else nodes[0]


def _take_huge(k: Kernel, h: HState, z: Zone) -> None:
    n = h.pages_per_huge_page
    got, cur = take_frames(
        k.mem.gvp,
        k.mem.flags,
        z.start_pfn,
        z.end_pfn,
        k.za.cursor[z.idx],
        n,
        int(k.regions.vspan[h.region, 0]),
    )
    assert got == n, "zone free count and frame owners disagree"
    k.za.cursor[z.idx] = cur
    k.za.free[z.idx] -= n
    k.regions.cnt[h.region, z.node_id] += n
    k.vmstat.inc(f"pgalloc_{z.name.lower()}", n)
    zone_statistics(k, z.node_id, z.node_id, n)
    h.zone_pages[z.idx] = h.zone_pages.get(z.idx, 0) + 1


def _freelist_zone(k: Kernel, zl: list[Zone], order: int, wmark: int) -> Zone | None:
    """``get_page_from_freelist()`` for one order-``order`` block: the first zone of the
    (single-node) zonelist that passes the mark."""
    for z in zl:
        if zone_watermark_ok(z, order, z.wmark(wmark), GFP_HUGETLB.highest_zoneidx):
            return z
    return None


def alloc_buddy_hugetlb_folio(k: Kernel, h: HState, nid: int) -> bool:
    """``alloc_buddy_hugetlb_folio()``: one huge page from node ``nid`` only.

    ``__alloc_pages`` with ``__GFP_THISNODE | __GFP_RETRY_MAYFAIL`` at order
    ``huge_page_order(h)``: fast path at LOW; slow path wakes this node's kswapd (with the
    huge page order), retries at MIN, then direct reclaim and ``should_reclaim_retry`` (whose
    watermark test is done at the huge page order, so with no reclaimable pages it gives up at
    once). A costly order never reaches the OOM killer (``__alloc_pages_may_oom``).
    """
    from .page_alloc import zonelist
    from .vmscan import try_to_free_pages, zone_reclaimable_pages

    order = h.order
    zl = zonelist(k, nid, GFP_HUGETLB, None)
    if not zl:
        return False
    z = _freelist_zone(k, zl, order, WMARK_LOW)
    no_progress_loops = 0
    while z is None:
        wake_all_kswapds(k, order, GFP_HUGETLB, zl)
        z = _freelist_zone(k, zl, order, WMARK_MIN)
        if z is not None:
            break
        progress, _cost = try_to_free_pages(k, zl, order, GFP_HUGETLB)
        if progress:
            z = _freelist_zone(k, zl, order, WMARK_MIN)
            if z is not None:
                break
        # should_reclaim_retry() at this order
        no_progress_loops = 0 if progress else no_progress_loops + 1
        if no_progress_loops > MAX_RECLAIM_RETRIES:
            return False
        if not any(
            zone_watermark_ok(
                zz,
                order,
                zz.wmark(WMARK_MIN),
                GFP_HUGETLB.highest_zoneidx,
                free=zz.free + zone_reclaimable_pages(k, zz),
            )
            for zz in zl
        ):
            return False
    _take_huge(k, h, z)
    return True


def alloc_pool_huge_folio(k: Kernel, h: HState) -> bool:
    """``alloc_pool_huge_folio()``: try each memory node once, from ``next_nid_to_alloc``."""
    nodes = _memory_nodes(k)
    if not nodes:
        return False
    if h.next_nid_to_alloc not in nodes:
        h.next_nid_to_alloc = _next_node(nodes, h.next_nid_to_alloc)
    for _ in range(len(nodes)):
        # hstate_next_node_to_alloc(): use the current node, advance for the next call
        nid = h.next_nid_to_alloc
        h.next_nid_to_alloc = _next_node(nodes, nid)
        if alloc_buddy_hugetlb_folio(k, h, nid):
            h.nr_huge_pages += 1
            h.free_huge_pages += 1
            h.nr_huge_pages_node[nid] += 1
            h.free_huge_pages_node[nid] += 1
            return True
    return False


def remove_pool_hugetlb_folio(k: Kernel, h: HState) -> bool:
    """``remove_pool_hugetlb_folio()`` + ``update_and_free_hugetlb_folio()``: a free huge page
    of the next node (round-robin from ``next_nid_to_free``) goes back to the buddy through
    the normal free path (``free_pages_zone``: ZONE_BELOW_HIGH is re-checked)."""
    nodes = [n for n in _memory_nodes(k) if h.free_huge_pages_node[n] > 0]
    if not nodes:
        return False
    nid = h.next_nid_to_free
    if nid not in nodes:
        nid = _next_node(nodes, nid)
    h.next_nid_to_free = _next_node(_memory_nodes(k), nid)
    pg = k.pgdats[nid]
    z = next(zz for zz in reversed(pg.populated_zones()) if h.zone_pages.get(zz.idx, 0) > 0)
    n = h.pages_per_huge_page
    base = int(k.regions.vspan[h.region, 0])
    got = _release_frames(k.mem.gvp, k.mem.flags, z.start_pfn, z.end_pfn, n, base)
    assert got == n, "pool accounting and frame owners disagree"
    h.zone_pages[z.idx] -= 1
    k.regions.cnt[h.region, nid] -= n
    h.nr_huge_pages -= 1
    h.free_huge_pages -= 1
    h.nr_huge_pages_node[nid] -= 1
    h.free_huge_pages_node[nid] -= 1
    free_pages_zone(k, z, n)
    return True


def set_max_huge_pages(k: Kernel, h: HState, count: int) -> int:
    """``set_max_huge_pages(h, count, NUMA_NO_NODE, &node_states[N_MEMORY])``; returns the
    pool size reached (what reading ``nr_hugepages`` then shows).

    Grow: one huge page at a time until ``count`` or until an attempt fails on every node.
    Shrink: free pool pages down to ``max(count, in use)``; none are in use here.
    """
    before = h.nr_huge_pages
    while h.nr_huge_pages < count:
        if not alloc_pool_huge_folio(k, h):
            break
    while h.nr_huge_pages > count:
        if not remove_pool_hugetlb_folio(k, h):
            break
    k.trace.emit(
        "reclaimsim_hugetlb",
        -1,
        f"nr_hugepages {before} -> {h.nr_huge_pages} (requested {count}) "
        f"per node {h.nr_huge_pages_node}",
    )
    return h.nr_huge_pages


def meminfo(k: Kernel, h: HState) -> dict[str, int]:
    """The hugetlb lines of /proc/meminfo (``hugetlb_report_meminfo``), sizes in kB."""
    kb = h.pages_per_huge_page * 4
    return {
        "HugePages_Total": h.nr_huge_pages,
        "HugePages_Free": h.free_huge_pages,
        "HugePages_Rsvd": 0,
        "HugePages_Surp": 0,
        "Hugepagesize": kb,
        "Hugetlb": h.nr_huge_pages * kb,
    }


def node_meminfo(h: HState, nid: int) -> dict[str, int]:
    """``hugetlb_report_node_meminfo()``: Node N HugePages_Total/Free/Surp."""
    return {
        "HugePages_Total": h.nr_huge_pages_node[nid],
        "HugePages_Free": h.free_huge_pages_node[nid],
        "HugePages_Surp": 0,
    }


__all__ = [
    "GFP_HUGETLB",
    "HState",
    "alloc_buddy_hugetlb_folio",
    "hugetlb_init",
    "meminfo",
    "node_meminfo",
    "set_max_huge_pages",
]
