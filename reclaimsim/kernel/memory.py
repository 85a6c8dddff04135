"""Page faults on swapped-out anon pages (mm/memory.c ``do_swap_page``).

A workload touches its pages at a rate per page (workloads.py). A page that reclaim swapped out
faults at its next touch: ``do_swap_page`` allocates a new folio through the normal allocator
(``__read_swap_cache_async`` with the VMA's GFP_HIGHUSER_MOVABLE and mempolicy, so the
allocation spills to the next node at LOW, may wake kswapds, enter direct reclaim or OOM),
reads it (PSWPIN), counts the major fault (PGMAJFAULT) and the shadow-entry refault
(``workingset_refault`` -> WORKINGSET_REFAULT_ANON), maps it and, by
``should_try_to_free_swap``, frees the swap slot.

The fault times are drawn from the touch rate (design-notes section 1): over a step of ``dt``
each of a region's ``s`` swapped-out pages is touched with probability ``1 - exp(-rate * dt)``
(independent Poisson touches), so the number of swap-ins is Binomial(s, p), one draw per region
and step, and the cost follows the kernel's work (pages swapped in), not the access count.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
from numba import njit

from . import mem_map as mm
from .memcg import try_charge
from .page_alloc import GFP_HIGHUSER_MOVABLE, AllocResult, alloc_pages

if TYPE_CHECKING:
    from ..workloads import Process
    from .state import Kernel


def swap_in_count(k: Kernel, swapped: int, rate: float, dt: float) -> int:
    """How many of ``swapped`` pages touched at ``rate`` per page per second fault in ``dt``."""
    if swapped <= 0 or rate <= 0.0 or dt <= 0.0:
        return 0
    p = 1.0 if math.isinf(rate) else -math.expm1(-rate * dt)
    if p >= 1.0:
        return swapped
    return int(k.rng.binomial(swapped, p))


def do_swap_page(k: Kernel, task: Process, region: int, n: int) -> AllocResult:
    """``do_swap_page()`` for ``n`` swapped-out pages of ``region`` touched by ``task``.

    Simplifications (docs/fidelity.md): no swap readahead (``swap_cluster_readahead`` /
    ``swap_vma_readahead`` read 2^page-cluster slots per major fault, so the kernel counts
    fewer ``pgmajfault`` than ``pswpin``; here each page is its own major fault); the
    swapped-in pages are not activated by
    ``workingset_test_recent`` (they join the inactive list as new anon does); the read's I/O
    wait is not charged to the task's CPU time. Each page is mapped at a swapped-out address
    of the VMA chosen uniformly (:func:`_map_at_holes`): the touches are uniform.
    """
    res = AllocResult()
    n = min(n, int(k.regions.swapped[region]))
    if n <= 0 or not task.alive:
        return res
    regs = k.regions
    touched = int(regs.touched[region])
    base = int(regs.vspan[region, 0])
    # alloc_pages numbers new pages from regions.touched and writes their page-table entries
    # there (first touch is sequential); a swap-in belongs at the address of a swapped-out
    # page: number the batch at the table's end, then move each page to a hole
    vs = max(0, min(touched, int(regs.vspan[region, 1])) - n)
    saved = regs.v2p[base + vs : base + vs + n].copy()
    regs.touched[region] = vs
    preferred = task.cpu_node
    if task.bind is not None and preferred not in task.bind:
        preferred = task.bind[0]
    k.current_comm = task.name
    stall = 0.0
    if task.memcg:
        # mem_cgroup_swapin_charge_folio() -> try_charge(): memory.max reclaim / memcg OOM
        n, stall = try_charge(k, task.memcg, n, task)
        if n <= 0 or not task.alive:
            regs.touched[region] = touched
            res.stall_s = stall
            return res
    res = alloc_pages(k, n, GFP_HIGHUSER_MOVABLE, preferred, task.bind, region, task=task)
    res.stall_s += stall
    regs.touched[region] = touched
    if task.alive and res.got:
        _map_at_holes(k, region, vs, res.got, saved)
    if not task.alive:  # OOM-killed while allocating: exit already released its slots
        return res
    got = res.got
    if got:
        k.regions.swapped[region] -= got
        k.vmstat.inc("pswpin", got)
        k.vmstat.inc("pgmajfault", got)
        k.vmstat.inc("workingset_refault_anon", got)
        # the workloads write what they touch (hog's loop writes a byte per page): a write
        # fault on an exclusive folio frees the slot whatever the fill level of swap
        if k.swap.should_try_to_free_swap(write_fault=True):
            k.swap.release(got)
        task.return_to_user(k, got)  # memory.high: reclaim + penalty on the way out
    return res


@njit(cache=True, inline="always")
def _resident(v2p, base, gvp, v):
    """Virtual page ``v`` of the table at ``base`` maps a frame (a valid page-table entry)."""
    p = v2p[base + v]
    return p >= 0 and p < gvp.size and gvp[p] == base + v


@njit(cache=True)
def _take_new_frames(v2p, base, vs, got, saved, gvp):
    """The frames ``alloc_pages`` just numbered ``vs..vs+got-1`` (those still holding their
    page: reclaim during the allocation may have taken one again); the table entries they
    overwrote are restored."""
    frames = np.empty(got, dtype=np.int64)
    nf = 0
    for i in range(got):
        if _resident(v2p, base, gvp, vs + i):
            frames[nf] = v2p[base + vs + i]
            nf += 1
    for i in range(saved.size):
        v2p[base + vs + i] = saved[i]
    return frames[:nf]


@njit(cache=True)
def _collect_holes(v2p, base, touched, gvp):
    """Every virtual page below ``touched`` that maps no frame (its PTE holds a swap entry):
    one pass over the VMA's table."""
    out = np.empty(touched, dtype=np.int64)
    n = 0
    for v in range(touched):
        if not _resident(v2p, base, gvp, v):
            out[n] = v
            n += 1
    return out[:n].copy()


@njit(cache=True)
def _map_frames(frames, j, v2p, base, touched, gvp, holes, hcnt, rs):
    """Map ``frames[j:]`` at swapped-out addresses drawn uniformly: from the cached hole list
    ``holes[:hcnt[0]]`` (entries are re-checked and removed as used), then, with the list
    used up, by 64 random probes of the table. Returns the index of the first frame left
    unmapped (the caller rebuilds the list)."""
    while j < frames.size:
        v = -1
        while v < 0 and hcnt[0] > 0:
            i = int(mm.rand01(rs) * hcnt[0])
            c = holes[i]
            hcnt[0] -= 1
            holes[i] = holes[hcnt[0]]
            if not _resident(v2p, base, gvp, c):
                v = c
        if v < 0:
            for _ in range(64):
                c = int(mm.rand01(rs) * touched)
                if not _resident(v2p, base, gvp, c):
                    v = c
                    break
        if v < 0:
            return j
        p = frames[j]
        gvp[p] = base + v
        v2p[base + v] = p
        j += 1
    return j


def _map_at_holes(k: Kernel, region: int, vs: int, got: int, saved: np.ndarray) -> None:
    """Move the pages a swap-in just allocated to the addresses of swapped-out pages, chosen
    uniformly from a list of the VMA's holes (one O(VMA) pass to build). The list is rebuilt
    when the region has more than twice as many pages out as it lists (reclaim swapped more
    out since), or when it runs dry; between rebuilds, holes added by swap-outs are reached
    only by the probes a dry list falls back to (docs/fidelity.md)."""
    regs, mem = k.regions, k.mem
    base = int(regs.vspan[region, 0])
    touched = min(int(regs.touched[region]), int(regs.vspan[region, 1]))
    frames = _take_new_frames(regs.v2p, base, vs, got, saved, mem.gvp)
    if touched <= 0 or frames.size == 0:
        return
    cache = k.__dict__.setdefault("_swap_holes", {})
    holes, hcnt = cache.get(region, (np.zeros(0, dtype=np.int64), np.zeros(1, dtype=np.int64)))
    args = (regs.v2p, base, touched, mem.gvp)
    if int(regs.swapped[region]) + frames.size > 2 * int(hcnt[0]) + 1024:
        holes = _collect_holes(*args)
        hcnt = np.array([holes.size], dtype=np.int64)
    j = _map_frames(frames, 0, *args, holes, hcnt, k.rs)
    if j < frames.size:
        holes = _collect_holes(*args)
        hcnt = np.array([holes.size], dtype=np.int64)
        _map_frames(frames, j, *args, holes, hcnt, k.rs)
    cache[region] = (holes, hcnt)


__all__ = ["do_swap_page", "swap_in_count"]
