"""Wei Xu, "mm/mglru: only clear kswapd_failures if reclaimable" (posted 2024-10-14; mainline
b130ba4a6259 in v6.12-rc4, Cc stable: 6.6.58 and 6.11.5), applied to v6.6:

    -	/* kswapd should never fail */
    -	pgdat->kswapd_failures = 0;
    +	/* whether this lruvec is completely out of cold folios */
    +	if (sc->nr_reclaimed > reclaimed_before)
    +		pgdat->kswapd_failures = 0;

So ``lru_gen_shrink_node`` resets like ``shrink_node``: only on progress. v6.12 already has it
(the ``v6.12`` policy); this policy is the patch on the kernel it fixed, for before/after runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .v6_6 import V66

if TYPE_CHECKING:
    from ..kernel.mmzone import PgData
    from ..kernel.state import Kernel
    from ..kernel.vmscan import ScanControl


class WeiXuMglru(V66):
    name = "wei-xu-mglru"
    description = "v6.6 + Wei Xu's fix: MGLRU resets kswapd_failures only on progress"

    def lru_gen_shrink_node_done(
        self, k: Kernel, pgdat: PgData, sc: ScanControl, reclaimed: int
    ) -> None:
        """``lru_gen_shrink_node()`` after b130ba4a6259: reset iff
        ``sc->nr_reclaimed > reclaimed_before``."""
        from ..kernel.vmscan import kswapd_clear_hopeless

        if reclaimed > 0:
            kswapd_clear_hopeless(k, pgdat, "KSWAPD" if sc.kswapd else "DIRECT")
