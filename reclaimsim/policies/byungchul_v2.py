"""Byungchul Park, v2 (2024-06-04; not merged): as v1, but do not resume kswapd while the
system is under pressure that could affect direct reclaim: ``may_reclaimable()`` also needs a
zone of the node above (low + min) / 2 (kernel-spec.md H2; the mark is ~, from the mail)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..kernel.constants import WMARK_LOW, WMARK_MIN
from ..kernel.watermarks import zone_watermark_ok
from .byungchul_v1 import ByungchulV1

if TYPE_CHECKING:
    from ..kernel.mmzone import PgData
    from ..kernel.state import Kernel


class ByungchulV2(ByungchulV1):
    name = "byungchul-v2"
    description = "v1, and only when free memory is above (low+min)/2"

    def may_reclaimable(self, k: Kernel, pgdat: PgData, order: int) -> bool:
        if not super().may_reclaimable(k, pgdat, order):
            return False
        for z in pgdat.populated_zones():
            mark = (z.wmark(WMARK_LOW) + z.wmark(WMARK_MIN)) // 2
            if zone_watermark_ok(z, order, mark, z.zone_type):
                return True
        return False
