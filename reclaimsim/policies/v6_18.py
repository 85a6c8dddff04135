"""v6.18: Chanwon Park's fix "mm: re-enable kswapd when memory pressure subsides or demotion is
toggled" (e7a5f249e6db), plus the other v6.18 changes this model has switches for.

    if (test_bit(ZONE_BELOW_HIGH, &zone->flags) &&
        zone_watermark_ok(zone, 0, high_wmark_pages(zone), ZONE_MOVABLE, 0)) {
            struct pglist_data *pgdat = zone->zone_pgdat;
            clear_bit(ZONE_BELOW_HIGH, &zone->flags);
            if (atomic_read(&pgdat->kswapd_failures) >= MAX_RECLAIM_RETRIES &&
                next_memory_node(pgdat->node_id) < MAX_NUMNODES)
                    atomic_set(&pgdat->kswapd_failures, 0);
    }
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..kernel.vmscan import kswapd_clear_hopeless, kswapd_hopeless
from .v6_12 import V612

if TYPE_CHECKING:
    from ..kernel.mmzone import PgData, Zone
    from ..kernel.state import Kernel


def next_memory_node(k: Kernel, nid: int) -> int | None:
    """``next_memory_node()``: the next node id with memory above ``nid`` (None = none)."""
    higher = [pg.node_id for pg in k.pgdats if pg.node_id > nid and pg.managed_pages() > 0]
    return min(higher) if higher else None


class V618(V612):
    name = "v6.18"
    description = "Chanwon Park: reset kswapd_failures when freeing lifts a zone above HIGH"
    skip_kswapd_nodes = True  # 19c5fb83f2a4 "avoid kswapd thrashing due to NUMA restrictions"
    candidate_nrl = True  # 337135e6124b "fix PGPROMOTE_CANDIDATE counting"

    def zone_above_high_on_free(self, k: Kernel, pgdat: PgData, zone: Zone) -> None:
        # the check is "a higher-numbered memory node exists", so the last node never resets
        if kswapd_hopeless(pgdat) and next_memory_node(k, pgdat.node_id) is not None:
            kswapd_clear_hopeless(k, pgdat, "PCP")

    def demotion_enabled_changed(self, k: Kernel, old: bool, new: bool) -> None:
        if not old and new:
            for pg in k.pgdats:
                kswapd_clear_hopeless(k, pg, "OTHER")
