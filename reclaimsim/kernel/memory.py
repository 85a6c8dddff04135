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
    ``swap_vma_readahead`` read ahead 2^page-cluster slots; their window shrinks to one page
    under random access, which is this workload); the swapped-in pages are not activated by
    ``workingset_test_recent`` (they join the inactive list as new anon does); the batch gets
    consecutive virtual page numbers at a random offset of the VMA (the scanner's view); the
    read's I/O wait is not charged to the task's CPU time.
    """
    res = AllocResult()
    n = min(n, int(k.regions.swapped[region]))
    if n <= 0 or not task.alive:
        return res
    npages = task.npages[task.regions.index(region)]
    saved = int(k.regions.touched[region])
    # alloc_pages numbers the new pages from regions.touched (first touch is sequential); a
    # swap-in is at a random address of the VMA
    k.regions.touched[region] = int(k.rng.integers(0, max(1, npages - n + 1)))
    preferred = task.cpu_node
    if task.bind is not None and preferred not in task.bind:
        preferred = task.bind[0]
    k.current_comm = task.name
    stall = 0.0
    if task.memcg:
        # mem_cgroup_swapin_charge_folio() -> try_charge(): memory.max reclaim / memcg OOM
        n, stall = try_charge(k, task.memcg, n, task)
        if n <= 0 or not task.alive:
            k.regions.touched[region] = saved
            res.stall_s = stall
            return res
    res = alloc_pages(k, n, GFP_HIGHUSER_MOVABLE, preferred, task.bind, region, task=task)
    res.stall_s += stall
    k.regions.touched[region] = saved
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


__all__ = ["do_swap_page", "swap_in_count"]
