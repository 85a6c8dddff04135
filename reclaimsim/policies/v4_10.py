"""v4.10: before Johannes Weiner's "mm: fix 100% CPU kswapd busyloop on unreclaimable nodes"
(c73322d098e4, 2017). There is no ``kswapd_failures``: kswapd sleeps only when the node is
balanced, so on a node with nothing reclaimable it loops at 100% CPU. (The old
``pgdat_reclaimable()`` scan-ratio test steered direct reclaim and OOM, never kswapd's sleep.)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .v6_12 import V612

if TYPE_CHECKING:
    from ..kernel.mmzone import PgData
    from ..kernel.state import Kernel


class V410(V612):
    name = "v4.10"
    description = "pre-2017: no kswapd_failures, kswapd spins on unreclaimable nodes"
    cache_trim_retry = False  # Byungchul Park's cache_trim_mode retry came in v6.9
    hmat_cpuless_tiers = False

    def kswapd_hopeless(self, k: Kernel, pgdat: PgData, order: int) -> bool:
        return False

    def balance_pgdat_failed(self, k: Kernel, pgdat: PgData, boosted: bool) -> None:
        """The counter does not exist yet."""
