"""Swap space (mm/swapfile.c, mm/swap_state.c): a finite pool of slots.

``add_to_swap()`` takes a slot for an anon folio being reclaimed (in the fused
``shrink_folio_list`` loop of vmscan.py, which reads ``used`` and ``total_pages``) and fails when
the device is full (or absent), after which the folio is activated; with no slot left
``can_reclaim_anon_pages()`` is false and ``get_scan_count()`` scans file pages only.
Swap-in (``do_swap_page``) is in memory.py; it frees the slot by the kernel's rule
(:meth:`Swap.should_try_to_free_swap`).

Slots are counted per workload region (``Regions.swapped``), not per page: which of a region's
pages are out is not recorded, because a uniformly accessed region refaults them at the same
rate whichever they are (docs/fidelity.md).
"""

from __future__ import annotations


class Swap:
    """One swap device of ``total_pages`` slots."""

    def __init__(self, total_pages: int) -> None:
        self.total_pages = total_pages
        self.used = 0

    def free_pages(self) -> int:
        """``get_nr_swap_pages()``."""
        return self.total_pages - self.used

    def vm_swap_full(self) -> bool:
        """``vm_swap_full()`` (include/linux/swap.h): more than half the slots in use,
        ``atomic_long_read(&nr_swap_pages) * 2 < total_swap_pages``."""
        return self.free_pages() * 2 < self.total_pages

    def should_try_to_free_swap(self, write_fault: bool) -> bool:
        """``should_try_to_free_swap()`` (mm/memory.c, ``do_swap_page``): drop the slot of a
        folio just swapped in if swap is more than half full (``mem_cgroup_swap_full`` without
        a memcg limit is ``vm_swap_full``), or on a write fault to an exclusive, non-KSM folio
        (every workload folio here: one private mapping, no KSM, no mlock)."""
        return self.vm_swap_full() or write_fault

    def release(self, n: int) -> None:
        """Slots freed: a swapped-in folio dropped from the swap cache
        (``folio_free_swap``), or a process exiting with pages in swap."""
        self.used = max(0, self.used - n)


__all__ = ["Swap"]
