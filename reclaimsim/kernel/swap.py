"""Swap space (mm/swapfile.c, mm/swap_state.c): a finite pool of slots.

``add_to_swap()`` takes a slot for an anon folio being reclaimed (in the fused
``shrink_folio_list`` loop of vmscan.py, which reads ``used`` and ``total_pages``) and fails when
the device is full (or absent), after which the folio is activated. Swap-in (refault) is
not modelled yet: swapped pages stay out (docs/fidelity.md).
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

    def release(self, n: int) -> None:
        """Slots freed when a process exits."""
        self.used = max(0, self.used - n)


__all__ = ["Swap"]
