"""Page migration for tiering (mm/migrate.c, demotion in mm/vmscan.c).

Demotion (``demote_folio_list``) allocates on the lower tier with no direct reclaim, wakes the
target's kswapd, never dips below MIN, and stops the batch at the first allocation failure
(``migrate_pages_batch`` on -ENOMEM: the rest count as failed; there is no ``pgdemote_fail``).
Promotion (``migrate_misplaced_folio``) allocates THISNODE with no reclaim flags at all.

Both run inside the fused numba kernels, where the pages are: demotion in
``vmscan._shrink_lruvec_fused`` (per 32-page batch of ``shrink_folio_list``), promotion in
``numa_balancing._hint_fault_batch``; the page move itself is ``mem_map.migrate_one``. This
module keeps the helpers they share with Python (zonelist order, the promotion gate).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .state import Kernel


def zonelist_nodes(k: Kernel, nid: int) -> list[int]:
    """Nodes in zonelist order from ``nid`` (by distance, then id)."""
    return sorted(range(len(k.pgdats)), key=lambda n: (k.distance[nid][n], n))
