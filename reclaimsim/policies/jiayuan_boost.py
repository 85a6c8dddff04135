"""jiayuan-boost: Jiayuan Chen, "mm/vmscan: skip increasing kswapd_failures when reclaim was
boosted" (v2, 2025-10-24; in akpm's mm tree, expected in v6.19), on top of v6.18.

A boosted ``balance_pgdat`` (watermark boost after a fragmentation steal) runs at priority
>= 10 with ``may_swap = 0`` and may reclaim nothing while free memory is far above HIGH
(memory.low skips the protected memcgs); counting it as a failure made nodes hopeless with
plenty of free memory::

    if (!sc.nr_reclaimed && !boosted) {
            int fail_cnt = atomic_inc_return(&pgdat->kswapd_failures);
            ...
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .v6_18 import V618

if TYPE_CHECKING:
    from ..kernel.mmzone import PgData
    from ..kernel.state import Kernel


class JiayuanBoost(V618):
    name = "jiayuan-boost"
    description = "v6.18 + a boosted balance_pgdat that reclaimed nothing is not a failure"

    def balance_pgdat_failed(self, k: Kernel, pgdat: PgData, boosted: bool) -> None:
        if boosted:
            return
        super().balance_pgdat_failed(k, pgdat, boosted)
