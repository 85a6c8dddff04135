"""Byungchul Park, "[PATCH] mm: let kswapd work again for node that used to be hopeless but
may not now" (v1, 2024-05-23; not merged).

    prep_new_page():      if (pgdat->kswapd_failures >= MAX_RECLAIM_RETRIES)
                                  pgdat->nr_may_reclaimable += 1 << order;
    shrink_node() / lru_gen_shrink_node() reset, balance_pgdat() failure:
                          pgdat->nr_may_reclaimable = 0;
    wakeup_kswapd(), prepare_kswapd_sleep():
                          hopeless only if also !may_recaimable(pgdat, order),
                          i.e. nr_may_reclaimable < 1 << order
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..kernel.constants import MAX_RECLAIM_RETRIES
from .v6_12 import V612

if TYPE_CHECKING:
    from ..kernel.mmzone import PgData
    from ..kernel.state import Kernel


class ByungchulV1(V612):
    name = "byungchul-v1"
    description = "kswapd works again once pages were allocated on a hopeless node"

    def attach(self, k: Kernel) -> None:
        for pg in k.pgdats:
            pg.ext["nr_may_reclaimable"] = 0
            pg.ext["nr_may_reclaimable_updates"] = 0  # hot-path writes (Ying Huang's objection)

    def may_reclaimable(self, k: Kernel, pgdat: PgData, order: int) -> bool:
        return pgdat.ext["nr_may_reclaimable"] >= 1 << order

    def kswapd_hopeless(self, k: Kernel, pgdat: PgData, order: int) -> bool:
        return pgdat.kswapd_failures >= MAX_RECLAIM_RETRIES and not self.may_reclaimable(
            k, pgdat, order
        )

    def prep_new_page(self, k: Kernel, pgdat: PgData, nr: int) -> None:
        if pgdat.kswapd_failures >= MAX_RECLAIM_RETRIES:
            pgdat.ext["nr_may_reclaimable"] += nr
            pgdat.ext["nr_may_reclaimable_updates"] += nr

    def balance_pgdat_failed(self, k: Kernel, pgdat: PgData, boosted: bool) -> None:
        super().balance_pgdat_failed(k, pgdat, boosted)
        pgdat.ext["nr_may_reclaimable"] = 0

    def kswapd_failures_reset(self, k: Kernel, pgdat: PgData) -> None:
        pgdat.ext["nr_may_reclaimable"] = 0
