"""v6.6 as released, up to 6.6.57 (any kernel from v6.3, per-node MGLRU lists e4dde56cd208,
until Wei Xu's fix reached it in 6.6.58): with MGLRU enabled, ``lru_gen_shrink_node`` ends with
``pgdat->kswapd_failures = 0`` whatever it reclaimed ("kswapd should never fail"), so a node
never goes hopeless and kswapd spins. With the classic LRU it behaves as v6.12."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .v6_12 import V612

if TYPE_CHECKING:
    from ..kernel.mmzone import PgData
    from ..kernel.state import Kernel
    from ..kernel.vmscan import ScanControl


class V66(V612):
    name = "v6.6"
    description = "v6.6.0-6.6.57: MGLRU resets kswapd_failures on every pass (before Wei Xu's fix)"
    cache_trim_retry = False  # Byungchul Park's cache_trim_mode retry came in v6.9

    def lru_gen_shrink_node_done(
        self, k: Kernel, pgdat: PgData, sc: ScanControl, reclaimed: int
    ) -> None:
        """``lru_gen_shrink_node()`` before b130ba4a6259: ``pgdat->kswapd_failures = 0`` at
        ``done:`` unconditionally."""
        from ..kernel.vmscan import kswapd_clear_hopeless

        kswapd_clear_hopeless(k, pgdat, "KSWAPD" if sc.kswapd else "DIRECT")
