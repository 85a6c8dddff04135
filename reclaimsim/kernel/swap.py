"""Swap space (mm/swapfile.c, mm/swap_state.c): a finite pool of slots.

``add_to_swap()`` takes a slot for an anon folio being reclaimed and fails when the device is
full (or absent), after which ``shrink_folio_list`` activates the folio. Swap-in (refault) is
not modelled yet: swapped pages stay out (docs/fidelity.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import mem_map as mm

if TYPE_CHECKING:
    from .state import Kernel


class Swap:
    """One swap device of ``total_pages`` slots."""

    def __init__(self, total_pages: int) -> None:
        self.total_pages = total_pages
        self.used = 0

    def free_pages(self) -> int:
        """``get_nr_swap_pages()``."""
        return self.total_pages - self.used

    def swap_out(self, k: Kernel, pfn: int) -> bool:
        """``add_to_swap()`` + pageout of one isolated anon page; False when no slot is free.

        The frame itself is returned to the buddy by the caller with the other reclaimed
        frames.
        """
        if self.used >= self.total_pages:
            return False
        self.used += 1
        o = int(k.mem.owner[pfn])
        k.regions.cnt[o, k.node_of(pfn)] -= 1
        k.regions.swapped[o] += 1
        k.mem.owner[pfn] = -1
        k.mem.flags[pfn] = 0
        k.vmstat.inc("pswpout", 1)
        return True

    def release(self, n: int) -> None:
        """Slots freed when a process exits."""
        self.used = max(0, self.used - n)


__all__ = ["Swap", "mm"]
