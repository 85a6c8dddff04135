"""Multi-gen LRU (mm/vmscan.c ``lru_gen_*``), as far as the hopeless-node story needs it.

Modelled: ``lru_gen_shrink_node``'s entry conditions (boosted kswapd reclaim, which runs with
``may_writepage = 0``, does nothing) and, per kernel version, how it resets
``kswapd_failures`` (unconditionally from ~v6.3 until Wei Xu's fix; on progress after it;
only on a balanced node in the 2026 mm tree). Simplified: eviction itself reuses the classic
inactive/active machinery (oldest generation = inactive tail); generations, tiers, the PID
controller and page-table walks are not modelled (docs/fidelity.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .mmzone import PgData
    from .state import Kernel
    from .vmscan import ScanControl


def lru_gen_shrink_node(k: Kernel, pgdat: PgData, sc: ScanControl) -> None:
    """``lru_gen_shrink_node()``."""
    from .vmscan import prepare_scan_control, shrink_node_memcgs

    reclaimed_before = sc.nr_reclaimed
    if sc.may_writepage and sc.may_unmap:
        prepare_scan_control(k, pgdat, sc)
        shrink_node_memcgs(k, pgdat, sc)
    k.policy.lru_gen_shrink_node_done(k, pgdat, sc, sc.nr_reclaimed - reclaimed_before)
