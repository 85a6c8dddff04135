"""Ying Huang's tiering-0.8 branch (17a24a354e12, out of tree): wake the kswapd of a failed
(hopeless) node every 10 s, so that a node whose memory became reclaimable gets retried."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..kernel.vmscan import kswapd_hopeless
from ..kernel.watermarks import pgdat_balanced
from .v6_12 import V612

if TYPE_CHECKING:
    from ..kernel.state import Kernel


class Tiering08(V612):
    name = "tiering-0.8"
    description = "periodic 10 s wake-up of a hopeless kswapd"
    period_s = 10.0

    def periodic(self, k: Kernel) -> None:
        for pg in k.pgdats:
            ks = pg.kswapd
            if ks is None or not kswapd_hopeless(pg) or not ks.is_sleeping():
                continue
            if pgdat_balanced(pg, 0, pg.kswapd.highest_zoneidx, k.sysctl.numa_balancing):
                continue
            k.trace.emit("mm_vmscan_wakeup_kswapd", -1, f"nid={pg.node_id} order=0 gfp_flags=none")
            ks.wake()
