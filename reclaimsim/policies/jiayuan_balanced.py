"""jiayuan-balanced: Jiayuan Chen, "mm/vmscan: mitigate spurious kswapd_failures reset from
direct reclaim" (v4, 2026-01-20; in akpm's mm tree), on top of v6.18.

Patch 1: ``shrink_node`` and ``lru_gen_shrink_node`` reset ``kswapd_failures`` only if the
node is also balanced::

    void kswapd_try_clear_hopeless(struct pglist_data *pgdat,
                                   unsigned int order, int highest_zoneidx)
    {
            if (pgdat_balanced(pgdat, order, highest_zoneidx))
                    kswapd_clear_hopeless(pgdat, current_is_kswapd() ?
                            KSWAPD_CLEAR_HOPELESS_KSWAPD : KSWAPD_CLEAR_HOPELESS_DIRECT);
    }

Patch 2 (Johannes Weiner's suggestion): ``kswapd_clear_hopeless(pgdat, reason)`` with reasons
KSWAPD / DIRECT / PCP / OTHER and the tracepoints ``mm_vmscan_kswapd_reclaim_fail`` and
``mm_vmscan_kswapd_clear_hopeless`` (the simulator emits them under every policy).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..kernel.vmscan import kswapd_clear_hopeless
from ..kernel.watermarks import pgdat_balanced
from .v6_18 import V618

if TYPE_CHECKING:
    from ..kernel.mmzone import PgData
    from ..kernel.state import Kernel
    from ..kernel.vmscan import ScanControl


def kswapd_try_clear_hopeless(
    k: Kernel, pgdat: PgData, sc: ScanControl, order: int, highest_zoneidx: int
) -> None:
    """``kswapd_try_clear_hopeless()``: reset only on a balanced node."""
    if pgdat_balanced(pgdat, order, highest_zoneidx, k.sysctl.numa_balancing):
        kswapd_clear_hopeless(k, pgdat, "KSWAPD" if sc.kswapd else "DIRECT")


class JiayuanBalanced(V618):
    name = "jiayuan-balanced"
    description = "v6.18 + reset kswapd_failures from shrink_node only on a balanced node"

    def shrink_node_done(self, k: Kernel, pgdat: PgData, sc: ScanControl, reclaimed: int) -> None:
        if reclaimed > 0:
            kswapd_try_clear_hopeless(k, pgdat, sc, sc.order, sc.reclaim_idx)

    def lru_gen_shrink_node_done(
        self, k: Kernel, pgdat: PgData, sc: ScanControl, reclaimed: int
    ) -> None:
        if reclaimed > 0:
            kswapd_try_clear_hopeless(k, pgdat, sc, sc.order, sc.reclaim_idx)
