"""The hook interface a kernel version or patch implements.

A policy is the set of places where kernels differ in the hopeless-node story. The mechanisms
(reclaim, allocation, tiering) call these hooks at the point where the kernel source has the
corresponding code; a patch under review becomes a subclass that overrides one or two hooks,
reading like the patch. See docs/policies.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from ..kernel.constants import MAX_RECLAIM_RETRIES

if TYPE_CHECKING:
    from ..kernel.mmzone import PgData, Zone
    from ..kernel.state import Kernel
    from ..kernel.vmscan import ScanControl


class Policy:
    """Mainline behaviour as of v6.12 (the pre-fix kernel of the seed report)."""

    name: ClassVar[str] = "base"
    description: ClassVar[str] = ""
    # --- version switches (kernel-spec.md section 8) --------------------------------------
    #: CPU-less RAM nodes get an HMAT-derived tier at late init (Ho-Ren Chuang, ~v6.10)
    hmat_cpuless_tiers: ClassVar[bool] = True
    #: fast path skips nodes whose kswapd is awake on the first pass (J. Weiner, v6.18)
    skip_kswapd_nodes: ClassVar[bool] = False
    #: PGPROMOTE_CANDIDATE_NRL on the free-space-enough path (v6.18)
    candidate_nrl: ClassVar[bool] = False
    #: emit mm_vmscan_kswapd_reclaim_fail / _clear_hopeless (real kernels have them from the
    #: 2026 mm tree, v7.0; the simulator shows them for every version unless switched off)
    hopeless_tracepoints: ClassVar[bool] = True
    #: should_reclaim_retry counts free pages twice when zone_reclaimable_pages() is 0
    srr_double_counts_free: ClassVar[bool] = False
    #: balance_pgdat retries its priority loop once with cache_trim_mode off when it reclaimed
    #: nothing and cache trim mode failed (Byungchul Park, "mm, vmscan: retry kswapd's
    #: priority loop with cache_trim_mode off on failure", v6.9)
    cache_trim_retry: ClassVar[bool] = True

    def attach(self, k: Kernel) -> None:
        """Called once the kernel state is built (per-pgdat fields a patch adds go here)."""

    # --- mm/vmscan.c -----------------------------------------------------------------------
    def kswapd_hopeless(self, k: Kernel, pgdat: PgData, order: int) -> bool:
        """The "hopeless node" test in ``wakeup_kswapd()`` and ``prepare_kswapd_sleep()``."""
        return pgdat.kswapd_failures >= MAX_RECLAIM_RETRIES

    def balance_pgdat_failed(self, k: Kernel, pgdat: PgData, boosted: bool) -> None:
        """End of ``balance_pgdat()`` with ``sc.nr_reclaimed == 0``: ``kswapd_failures++``."""
        pgdat.kswapd_failures += 1
        if self.hopeless_tracepoints:
            k.trace.emit(
                "mm_vmscan_kswapd_reclaim_fail",
                pgdat.node_id,
                f"nid={pgdat.node_id} failures={pgdat.kswapd_failures}",
            )
        if pgdat.kswapd_failures == MAX_RECLAIM_RETRIES:
            k.note_hopeless(pgdat)

    def shrink_node_done(self, k: Kernel, pgdat: PgData, sc: ScanControl, reclaimed: int) -> None:
        """End of ``shrink_node()``: any progress, by kswapd or direct or memcg reclaim,
        resets ``kswapd_failures`` ("a successful direct reclaim run will revive a dormant
        kswapd")."""
        from ..kernel.vmscan import kswapd_clear_hopeless

        if reclaimed > 0:
            kswapd_clear_hopeless(k, pgdat, "KSWAPD" if sc.kswapd else "DIRECT")

    def lru_gen_shrink_node_done(
        self, k: Kernel, pgdat: PgData, sc: ScanControl, reclaimed: int
    ) -> None:
        """End of ``lru_gen_shrink_node()`` (MGLRU): after Wei Xu's fix, reset only on
        progress, like ``shrink_node``."""
        self.shrink_node_done(k, pgdat, sc, reclaimed)

    def kswapd_failures_reset(self, k: Kernel, pgdat: PgData) -> None:
        """Called wherever ``kswapd_failures`` is set to 0."""

    # --- mm/page_alloc.c -------------------------------------------------------------------
    def prep_new_page(self, k: Kernel, pgdat: PgData, nr: int) -> None:
        """``prep_new_page()``: called for every allocated batch of ``nr`` pages."""

    def zone_above_high_on_free(self, k: Kernel, pgdat: PgData, zone: Zone) -> None:
        """Per-CPU-list free path: a ZONE_BELOW_HIGH zone is above HIGH again (flag cleared)."""

    # --- mm/memory-tiers.c -----------------------------------------------------------------
    def demotion_enabled_changed(self, k: Kernel, old: bool, new: bool) -> None:
        """``demotion_enabled_store()``."""

    # --- out of tree -----------------------------------------------------------------------
    #: seconds between calls of :meth:`periodic`, or None
    period_s: ClassVar[float | None] = None

    def periodic(self, k: Kernel) -> None:
        """A timer some patches add (e.g. tiering-0.8's 10 s kswapd wake)."""
