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

from .mmzone import PgData

if TYPE_CHECKING:
    from .state import Kernel


def zonelist_nodes(k: Kernel, nid: int) -> list[int]:
    """Nodes in zonelist order from ``nid`` (by distance, then id)."""
    return sorted(range(len(k.pgdats)), key=lambda n: (k.distance[nid][n], n))


def migrate_balanced_pgdat(k: Kernel, pgdat: PgData, nr: int) -> bool:
    """``migrate_balanced_pgdat()``: some zone has free > HIGH + nr + lowmem_reserve[MOVABLE]."""
    from .constants import WMARK_HIGH, ZONE_MOVABLE
    from .watermarks import zone_watermark_ok

    for z in reversed(pgdat.zones):
        if z is None or z.managed == 0:
            continue
        if zone_watermark_ok(z, 0, z.wmark(WMARK_HIGH) + nr, ZONE_MOVABLE):
            return True
    return False
