"""Page reclaim (mm/vmscan.c): kswapd, balance_pgdat, shrink_node and below, direct reclaim.

Time: a kswapd step is one priority iteration of ``balance_pgdat``; its simulated CPU cost is
the pages it scanned and migrated times the machine's per-page costs. Between steps the engine
runs the workloads, so allocations, promotions and reclaim interleave at that granularity.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from . import mem_map as mm
from .constants import (
    DEF_PRIORITY,
    KSWAPD_NAP_S,
    LRU_ACTIVE_ANON,
    LRU_ACTIVE_FILE,
    LRU_INACTIVE_ANON,
    LRU_INACTIVE_FILE,
    MAX_NR_ZONES,
    MAX_RECLAIM_RETRIES,
    SWAP_CLUSTER_MAX,
    WMARK_HIGH,
    ZONE_NORMAL,
)
from .mmzone import PgData, Zone
from .watermarks import pgdat_balanced, pgdat_watermark_boosted

if TYPE_CHECKING:
    from .page_alloc import Gfp
    from .state import Kernel

DEACTIVATE_ANON = 1
DEACTIVATE_FILE = 2
SCAN_EQUAL, SCAN_FRACT, SCAN_ANON, SCAN_FILE = 0, 1, 2, 3


@dataclass
class ScanControl:
    """``struct scan_control`` (the fields this model uses)."""

    nr_to_reclaim: int = SWAP_CLUSTER_MAX
    order: int = 0
    priority: int = DEF_PRIORITY
    reclaim_idx: int = MAX_NR_ZONES - 1
    may_writepage: bool = True
    may_unmap: bool = True
    may_swap: bool = True
    may_deactivate: int = 0
    force_deactivate: bool = False
    skipped_deactivate: bool = False
    cache_trim_mode: bool = False
    file_is_tiny: bool = False
    no_demotion: bool = False
    anon_cost: int = 0
    file_cost: int = 0
    nr_reclaimed: int = 0
    nr_scanned: int = 0
    kswapd: bool = False
    # simulated CPU seconds this reclaim spent (scan + migrate costs)
    cost_s: float = 0.0
    # page counts for time accounting
    pages_scanned: int = 0
    pages_migrated: int = 0


# ---------------------------------------------------------------------------------------------
# reclaimability


def can_demote(k: Kernel, nid: int, sc: ScanControl | None) -> bool:
    """``can_demote()``: demotion enabled, not forbidden for this reclaim, a target exists."""
    if not k.sysctl.demotion_enabled:
        return False
    if sc is not None and sc.no_demotion:
        return False
    return k.tiers.next_demotion_node(nid) >= 0


def can_reclaim_anon_pages(k: Kernel, nid: int, sc: ScanControl | None) -> bool:
    """``can_reclaim_anon_pages()``: free swap, or demotion possible from this node."""
    return k.swap.free_pages() > 0 or can_demote(k, nid, sc)


def zone_reclaimable_pages(k: Kernel, z: Zone) -> int:
    """``zone_reclaimable_pages()``: file LRU, plus anon LRU if anon can be reclaimed."""
    anon, file = z.reclaimable_anon_file()
    nr = file
    if can_reclaim_anon_pages(k, z.node_id, None):
        nr += anon
    return nr


def inactive_is_low(pgdat: PgData, inactive_lru: int) -> bool:
    """``inactive_is_low()``: inactive * int_sqrt(10 * size_in_GiB) < active."""
    active_lru = inactive_lru + 1
    inactive = pgdat.lru_size(inactive_lru)
    active = pgdat.lru_size(active_lru)
    gb = (inactive + active) >> (30 - 12)
    ratio = int(np.sqrt(10 * gb)) if gb else 1
    return inactive * ratio < active


# ---------------------------------------------------------------------------------------------
# hopeless-node bookkeeping


def kswapd_hopeless(pgdat: PgData) -> bool:
    """``kswapd_failures >= MAX_RECLAIM_RETRIES`` (``kswapd_test_hopeless()`` in 2026)."""
    return pgdat.kswapd_failures >= MAX_RECLAIM_RETRIES


def kswapd_clear_hopeless(k: Kernel, pgdat: PgData, reason: str) -> None:
    """Reset ``kswapd_failures``; 2026's helper traces resets of a non-zero count."""
    if pgdat.kswapd_failures:
        if k.policy.hopeless_tracepoints:
            k.trace.emit(
                "mm_vmscan_kswapd_clear_hopeless",
                pgdat.node_id,
                f"nid={pgdat.node_id} reason={reason}",
            )
        if kswapd_hopeless(pgdat):
            k.count_hopeless_exit(pgdat, reason)
    pgdat.kswapd_failures = 0
    k.policy.kswapd_failures_reset(k, pgdat)


def shrink_node_progress(k: Kernel, pgdat: PgData, sc: ScanControl, reclaimed: int) -> None:
    """The reset at the end of ``shrink_node()`` / ``lru_gen_shrink_node()``."""
    k.policy.shrink_node_done(k, pgdat, sc, reclaimed)


# ---------------------------------------------------------------------------------------------
# shrink_node and below


def prepare_scan_control(k: Kernel, pgdat: PgData, sc: ScanControl) -> None:
    """``prepare_scan_control()``: deactivation bits, cache_trim_mode, file_is_tiny."""
    sc.anon_cost = pgdat.anon_cost
    sc.file_cost = pgdat.file_cost
    if not sc.force_deactivate:
        sc.may_deactivate = 0
        if inactive_is_low(pgdat, LRU_INACTIVE_ANON):
            sc.may_deactivate |= DEACTIVATE_ANON
        if inactive_is_low(pgdat, LRU_INACTIVE_FILE):
            sc.may_deactivate |= DEACTIVATE_FILE
    else:
        sc.may_deactivate = DEACTIVATE_ANON | DEACTIVATE_FILE
    inactive_file = pgdat.lru_size(LRU_INACTIVE_FILE)
    sc.cache_trim_mode = bool(inactive_file >> sc.priority) and not (
        sc.may_deactivate & DEACTIVATE_FILE
    )
    free = pgdat.free_pages()
    file = pgdat.lru_size(LRU_ACTIVE_FILE) + pgdat.lru_size(LRU_INACTIVE_FILE)
    total_high = sum(z.wmark(WMARK_HIGH) for z in pgdat.populated_zones())
    anon = pgdat.lru_size(LRU_INACTIVE_ANON)
    sc.file_is_tiny = (
        file + free <= total_high
        and not (sc.may_deactivate & DEACTIVATE_ANON)
        and bool(anon >> sc.priority)
    )


def get_scan_count(k: Kernel, pgdat: PgData, sc: ScanControl) -> list[int]:
    """``get_scan_count()``: how many pages of each LRU to scan at this priority."""
    swappiness = k.sysctl.swappiness
    if not sc.may_swap or not can_reclaim_anon_pages(k, pgdat.node_id, sc):
        scan_balance = SCAN_FILE
    elif sc.priority == 0 and swappiness:
        scan_balance = SCAN_EQUAL
    elif sc.file_is_tiny:
        scan_balance = SCAN_ANON
    elif sc.cache_trim_mode:
        scan_balance = SCAN_FILE
    else:
        scan_balance = SCAN_FRACT
    ap = fp = 0
    if scan_balance == SCAN_FRACT:
        total_cost = sc.anon_cost + sc.file_cost
        anon_cost = total_cost + sc.anon_cost
        file_cost = total_cost + sc.file_cost
        total_cost = anon_cost + file_cost
        ap = swappiness * (total_cost + 1) // (anon_cost + 1)
        fp = (200 - swappiness) * (total_cost + 1) // (file_cost + 1)
    nr = [0, 0, 0, 0]
    for lru in (LRU_INACTIVE_ANON, LRU_ACTIVE_ANON, LRU_INACTIVE_FILE, LRU_ACTIVE_FILE):
        file = lru >= LRU_INACTIVE_FILE
        size = pgdat.lru_size(lru, sc.reclaim_idx)
        scan = size >> sc.priority
        if scan_balance == SCAN_FRACT:
            scan = scan * (fp if file else ap) // max(ap + fp, 1)
        elif scan_balance == SCAN_FILE and not file:
            scan = 0
        elif scan_balance == SCAN_ANON and file:
            scan = 0
        nr[lru] = scan
    return nr


def shrink_node(k: Kernel, pgdat: PgData, sc: ScanControl) -> None:
    """``shrink_node()``: one pass over the node's LRUs, then the kswapd_failures reset."""
    if k.mglru:
        from .mglru import lru_gen_shrink_node

        lru_gen_shrink_node(k, pgdat, sc)
        return
    before = sc.nr_reclaimed
    prepare_scan_control(k, pgdat, sc)
    shrink_lruvec(k, pgdat, sc)
    reclaimed = sc.nr_reclaimed - before
    shrink_node_progress(k, pgdat, sc, reclaimed)


def shrink_lruvec(k: Kernel, pgdat: PgData, sc: ScanControl) -> None:
    """``shrink_lruvec()``: scan the lists in SWAP_CLUSTER_MAX batches; kswapd stops early
    once nr_to_reclaim is met, keeping the anon:file proportions (once)."""
    nr = get_scan_count(k, pgdat, sc)
    targets = list(nr)
    proportional_reclaim = not sc.kswapd and sc.priority == DEF_PRIORITY
    nr_reclaimed = 0
    scan_adjusted = False
    while nr[LRU_INACTIVE_ANON] or nr[LRU_ACTIVE_FILE] or nr[LRU_INACTIVE_FILE]:
        for lru in (LRU_INACTIVE_ANON, LRU_ACTIVE_ANON, LRU_INACTIVE_FILE, LRU_ACTIVE_FILE):
            if nr[lru]:
                n = min(nr[lru], SWAP_CLUSTER_MAX)
                nr[lru] -= n
                nr_reclaimed += shrink_list(k, pgdat, lru, n, sc)
        if nr_reclaimed < sc.nr_to_reclaim or proportional_reclaim or scan_adjusted:
            continue
        nr_file = nr[LRU_INACTIVE_FILE] + nr[LRU_ACTIVE_FILE]
        nr_anon = nr[LRU_INACTIVE_ANON] + nr[LRU_ACTIVE_ANON]
        if not nr_file or not nr_anon:
            break
        if nr_file > nr_anon:
            scan_target = targets[LRU_INACTIVE_ANON] + targets[LRU_ACTIVE_ANON] + 1
            base = LRU_INACTIVE_ANON
            percentage = nr_anon * 100 // scan_target
        else:
            scan_target = targets[LRU_INACTIVE_FILE] + targets[LRU_ACTIVE_FILE] + 1
            base = LRU_INACTIVE_FILE
            percentage = nr_file * 100 // scan_target
        nr[base] = 0
        nr[base + 1] = 0
        other = LRU_INACTIVE_ANON if base == LRU_INACTIVE_FILE else LRU_INACTIVE_FILE
        for lru in (other, other + 1):
            scanned = targets[lru] - nr[lru]
            nr[lru] = targets[lru] * (100 - percentage) // 100
            nr[lru] -= min(nr[lru], scanned)
        scan_adjusted = True
    sc.nr_reclaimed += nr_reclaimed
    if can_age_anon_pages(k, pgdat, sc) and inactive_is_low(pgdat, LRU_INACTIVE_ANON):
        shrink_active_list(k, pgdat, SWAP_CLUSTER_MAX, sc, LRU_ACTIVE_ANON)


def can_age_anon_pages(k: Kernel, pgdat: PgData, sc: ScanControl) -> bool:
    """``can_age_anon_pages()``: swap configured, or demotion possible from this node."""
    return k.swap.total_pages > 0 or can_demote(k, pgdat.node_id, sc)


def shrink_list(k: Kernel, pgdat: PgData, lru: int, n: int, sc: ScanControl) -> int:
    """``shrink_list()``: active lists are only deactivated when allowed."""
    if lru & 1:  # active
        bit = DEACTIVATE_FILE if lru >= LRU_INACTIVE_FILE else DEACTIVATE_ANON
        if sc.may_deactivate & bit:
            shrink_active_list(k, pgdat, n, sc, lru)
        else:
            sc.skipped_deactivate = True
        return 0
    return shrink_inactive_list(k, pgdat, n, sc, lru)


def _isolate(k: Kernel, pgdat: PgData, n: int, sc: ScanControl, lru: int) -> tuple[np.ndarray, int]:
    ring = pgdat.lists[lru]
    out = k.scratch(n)
    taken, scanned, _skipped = mm.isolate_lru(
        ring.data,
        ring.meta,
        k.mem.flags,
        k.mem.lru_pos,
        np.uint8(lru),
        n,
        pgdat.highest_zone_limit_pfn(sc.reclaim_idx),
        out,
        k.za.lru_count,
        pgdat.zone_starts(),
        pgdat.zone_first(),
    )
    return out[:taken].copy(), scanned


def shrink_active_list(k: Kernel, pgdat: PgData, n: int, sc: ScanControl, lru: int) -> None:
    """``shrink_active_list()``: isolate from the active tail, clear the accessed bits, move
    to the inactive list (referenced anon too; only VM_EXEC file folios are rotated)."""
    pfns, scanned = _isolate(k, pgdat, n, sc, lru)
    k.vmstat.inc("pgrefill", scanned)
    sc.pages_scanned += scanned
    if len(pfns) == 0:
        return
    inact = lru - 1
    ring = pgdat.lists[inact]
    ring.reserve(len(pfns), k.mem.flags, k.mem.lru_pos, inact)
    deact, _rot = mm.shrink_active_pages(
        pfns,
        len(pfns),
        k.mem.flags,
        k.mem.t_look,
        k.mem.owner,
        k.regions.rate,
        k.mem.lru_pos,
        k.now_ms(),
        ring.data,
        ring.meta,
        k.za.lru_count,
        pgdat.zone_starts(),
        pgdat.zone_first(),
    )
    k.vmstat.inc("pgdeactivate", deact)


def shrink_inactive_list(k: Kernel, pgdat: PgData, n: int, sc: ScanControl, lru: int) -> int:
    """``shrink_inactive_list()`` + ``shrink_folio_list()``: isolate, check references,
    demote the cold ones, fall back to normal reclaim for failed demotions (no swap: the
    anon folio is activated), put the survivors back; count PGSCAN/PGSTEAL/PGDEMOTE."""
    from .migrate import demote_folio_list

    pfns, scanned = _isolate(k, pgdat, n, sc, lru)
    who = "kswapd" if sc.kswapd else "direct"
    k.vmstat.inc(f"pgscan_{who}", scanned)
    file = lru >= LRU_INACTIVE_FILE
    k.vmstat.inc("pgscan_file" if file else "pgscan_anon", scanned)
    pgdat.add_stat(f"pgscan_{who}", scanned)
    sc.pages_scanned += scanned
    taken = len(pfns)
    if taken == 0:
        return 0
    refs = np.empty(taken, dtype=np.int8)
    # shrink_folio_list(): first pass with do_demote_pass = can_demote()
    sc.nr_scanned += taken
    mm.check_references(
        pfns, taken, k.mem.flags, k.mem.t_look, k.mem.owner, k.regions.rate, k.now_ms(), refs
    )
    activate = refs == mm.FOLIOREF_ACTIVATE
    reclaim = refs == mm.FOLIOREF_RECLAIM
    nr_reclaimed = 0
    nr_demoted = 0
    nr_pageout = 0
    freed_mask = np.zeros(taken, dtype=np.bool_)
    if reclaim.any():
        cand = np.flatnonzero(reclaim)
        if can_demote(k, pgdat.node_id, sc) and not file:
            done = demote_folio_list(k, pgdat, pfns[cand], sc)
            nr_demoted = int(done.sum())
            freed_mask[cand[done]] = True
            failed = cand[~done]
            if len(failed):
                # retry the leftovers with demotion off (not proactive); they are scanned again
                sc.nr_scanned += len(failed)
                refs2 = np.empty(len(failed), dtype=np.int8)
                sub = pfns[failed].copy()
                mm.check_references(
                    sub,
                    len(sub),
                    k.mem.flags,
                    k.mem.t_look,
                    k.mem.owner,
                    k.regions.rate,
                    k.now_ms(),
                    refs2,
                )
                for i, r in zip(failed, refs2, strict=True):
                    if r == mm.FOLIOREF_ACTIVATE:
                        activate[i] = True
                    elif r == mm.FOLIOREF_RECLAIM:
                        ok = k.swap.swap_out(k, int(pfns[i])) if not file else True
                        if ok:
                            freed_mask[i] = True
                            nr_pageout += 1
                        else:
                            activate[i] = True  # add_to_swap() failed
        else:
            for i in cand:
                ok = True if file else k.swap.swap_out(k, int(pfns[i]))
                if ok:
                    freed_mask[i] = True
                    nr_pageout += 0 if file else 1
                else:
                    activate[i] = True
    nr_reclaimed = int(freed_mask.sum())
    if nr_reclaimed:
        # demoted and swapped-out frames go back to the buddy (free_unref_folios)
        k.free_frames(pgdat, pfns[freed_mask])
    keep = ~freed_mask
    keep_pfns = pfns[keep]
    keep_act = activate[keep]
    if len(keep_pfns):
        ia, aa = lru & ~1, (lru & ~1) + 1
        ri, ra = pgdat.lists[ia], pgdat.lists[aa]
        ri.reserve(len(keep_pfns), k.mem.flags, k.mem.lru_pos, ia)
        ra.reserve(len(keep_pfns), k.mem.flags, k.mem.lru_pos, aa)
        mm.putback(
            keep_pfns,
            len(keep_pfns),
            k.mem.flags,
            k.mem.lru_pos,
            k.za.lru_count,
            pgdat.zone_starts(),
            pgdat.zone_first(),
            keep_act,
            ri.data,
            ri.meta,
            ra.data,
            ra.meta,
            ia,
        )
    nr_activate = int(keep_act.sum())
    k.vmstat.inc("pgactivate", nr_activate)
    if nr_demoted:
        k.vmstat.inc(f"pgdemote_{who}", nr_demoted)
        pgdat.add_stat(f"pgdemote_{who}", nr_demoted)
    k.vmstat.inc(f"pgsteal_{who}", nr_reclaimed)
    k.vmstat.inc("pgsteal_file" if file else "pgsteal_anon", nr_reclaimed)
    pgdat.add_stat(f"pgsteal_{who}", nr_reclaimed)
    lru_note_cost(pgdat, file, nr_pageout, taken - nr_reclaimed)
    return nr_reclaimed


def lru_note_cost(pgdat: PgData, file: bool, nr_io: int, nr_rotated: int) -> None:
    """``lru_note_cost()``: cost = io * SWAP_CLUSTER_MAX + rotated; halve both when they
    exceed a quarter of the LRU."""
    cost = nr_io * SWAP_CLUSTER_MAX + nr_rotated
    if file:
        pgdat.file_cost += cost
    else:
        pgdat.anon_cost += cost
    lru_size = sum(pgdat.lru_size(lru) for lru in range(4))
    if pgdat.file_cost + pgdat.anon_cost > lru_size // 4:
        pgdat.file_cost //= 2
        pgdat.anon_cost //= 2


# ---------------------------------------------------------------------------------------------
# kswapd


def wakeup_kswapd(k: Kernel, zone: Zone, gfp: Gfp | None, order: int, highest_zoneidx: int) -> None:
    """``wakeup_kswapd()``: record the request; wake the thread unless it is awake already,
    the node is hopeless, or it is balanced and not boosted (then only kcompactd, a no-op at
    order 0)."""
    if zone.managed == 0:
        return
    pgdat = k.pgdats[zone.node_id]
    ks = pgdat.kswapd
    assert ks is not None
    if (
        pgdat.kswapd_highest_zoneidx == MAX_NR_ZONES
        or pgdat.kswapd_highest_zoneidx < highest_zoneidx
    ):
        pgdat.kswapd_highest_zoneidx = highest_zoneidx
    if pgdat.kswapd_order < order:
        pgdat.kswapd_order = order
    if not ks.is_sleeping():
        return
    if k.policy.kswapd_hopeless(k, pgdat, order) or (
        pgdat_balanced(pgdat, order, highest_zoneidx, k.sysctl.numa_balancing)
        and not pgdat_watermark_boosted(pgdat, highest_zoneidx)
    ):
        return
    k.trace.emit(
        "mm_vmscan_wakeup_kswapd",
        -1,
        f"nid={pgdat.node_id} order={order} gfp_flags="
        f"{'GFP_HIGHUSER_MOVABLE' if gfp is not None and gfp.direct_reclaim else 'none'}",
    )
    ks.wake()


def prepare_kswapd_sleep(k: Kernel, pgdat: PgData, order: int, highest_zoneidx: int) -> bool:
    """``prepare_kswapd_sleep()``: a hopeless node sleeps ("leave it to direct reclaim"); so
    does a balanced one."""
    if k.policy.kswapd_hopeless(k, pgdat, order):
        return True
    return pgdat_balanced(pgdat, order, highest_zoneidx, k.sysctl.numa_balancing)


@dataclass
class BalancePgdat:
    """One call of ``balance_pgdat()``, run one priority iteration per :meth:`step`."""

    k: Kernel
    pgdat: PgData
    order: int
    highest_zoneidx: int
    sc: ScanControl = field(default_factory=ScanControl)
    nr_boost_reclaim: int = 0
    boosted: bool = False
    zone_boosts: list[int] = field(default_factory=list)
    done: bool = False

    def __post_init__(self) -> None:
        k, pgdat = self.k, self.pgdat
        self.sc = ScanControl(order=self.order, kswapd=True, may_unmap=True)
        k.vmstat.inc("pageoutrun", 1)
        zs = pgdat.zones[: self.highest_zoneidx + 1]
        self.zone_boosts = [z.boost if z is not None else 0 for z in zs]
        self.nr_boost_reclaim = sum(self.zone_boosts)
        self.boosted = self.nr_boost_reclaim > 0
        self._restart()

    def _restart(self) -> None:
        self.sc.priority = DEF_PRIORITY

    def step(self) -> float:
        """One iteration of balance_pgdat's priority loop; returns the CPU seconds it took."""
        k, pgdat, sc = self.k, self.pgdat, self.sc
        sc.pages_scanned = sc.pages_migrated = 0
        nr_reclaimed_before = sc.nr_reclaimed
        raise_priority = True
        sc.reclaim_idx = self.highest_zoneidx
        balanced = pgdat_balanced(pgdat, sc.order, self.highest_zoneidx, k.sysctl.numa_balancing)
        if not balanced and self.nr_boost_reclaim:
            self.nr_boost_reclaim = 0
            self._restart()
            return k.cost_of(sc)
        if not self.nr_boost_reclaim and balanced:
            self._finish(failed=False)
            return k.cost_of(sc)
        if self.nr_boost_reclaim and sc.priority == DEF_PRIORITY - 2:
            raise_priority = False
        sc.may_writepage = not self.nr_boost_reclaim
        sc.may_swap = not self.nr_boost_reclaim
        kswapd_age_node(k, pgdat, sc)
        sc.nr_scanned = 0
        if kswapd_shrink_node(k, pgdat, sc):
            raise_priority = False
        delta = sc.nr_reclaimed - nr_reclaimed_before
        self.nr_boost_reclaim -= min(self.nr_boost_reclaim, delta)
        if self.nr_boost_reclaim and not delta:
            self._end_of_loop()
            return k.cost_of(sc)
        if raise_priority or not delta:
            sc.priority -= 1
        if sc.priority < 1:
            self._end_of_loop()
        return k.cost_of(sc)

    def _end_of_loop(self) -> None:
        """After the priority loop: a run that reclaimed nothing is a failure."""
        failed = self.sc.nr_reclaimed == 0
        if failed:
            self.k.policy.balance_pgdat_failed(self.k, self.pgdat, self.boosted)
        self._finish(failed)

    def _finish(self, failed: bool) -> None:
        # out: clear the boosts this run consumed (then kcompactd at pageblock order)
        if self.boosted:
            for z, b in zip(self.pgdat.zones, self.zone_boosts, strict=False):
                if z is not None and b:
                    z.za.boost[z.idx] = max(0, z.za.boost[z.idx] - b)
        self.done = True


def kswapd_age_node(k: Kernel, pgdat: PgData, sc: ScanControl) -> None:
    """``kswapd_age_node()``: keep the anon inactive list from getting too small."""
    if k.mglru:
        return
    if not can_age_anon_pages(k, pgdat, sc):
        return
    if not inactive_is_low(pgdat, LRU_INACTIVE_ANON):
        return
    shrink_active_list(k, pgdat, SWAP_CLUSTER_MAX, sc, LRU_ACTIVE_ANON)


def kswapd_shrink_node(k: Kernel, pgdat: PgData, sc: ScanControl) -> bool:
    """``kswapd_shrink_node()``: aim at sum(max(HIGH, 32)) pages per pass (HIGH, not PROMO);
    report whether the pass scanned at least that many."""
    sc.nr_to_reclaim = 0
    for z in pgdat.zones[: sc.reclaim_idx + 1]:
        if z is not None and z.managed > 0:
            sc.nr_to_reclaim += max(z.wmark(WMARK_HIGH), SWAP_CLUSTER_MAX)
    shrink_node(k, pgdat, sc)
    if sc.order and sc.nr_reclaimed >= (2 << sc.order):
        sc.order = 0
    return sc.nr_scanned >= sc.nr_to_reclaim


class Kswapd:
    """The ``kswapd()`` thread of one node as a state machine: sleep, run, nap.

    run: executing ``balance_pgdat`` (one priority iteration per step);
    nap: ``kswapd_try_to_sleep``'s HZ/10 nap (a wakeup cuts it short);
    sleep: the full sleep, left only through ``wakeup_kswapd``.
    """

    def __init__(self, k: Kernel, pgdat: PgData) -> None:
        self.k = k
        self.pgdat = pgdat
        self.state = "sleep"
        self.t = 0.0  # the thread's own clock (it may run ahead of the engine by one step)
        self.run: BalancePgdat | None = None
        self.nap_until = 0.0
        self.woken_in_nap = False
        self.cpu_s = 0.0
        self.runs = 0
        self.alloc_order = 0
        self.reclaim_order = 0
        self.highest_zoneidx = MAX_NR_ZONES - 1

    def is_sleeping(self) -> bool:
        """``waitqueue_active(&pgdat->kswapd_wait)``: napping counts as sleeping."""
        return self.state in ("sleep", "nap")

    def is_awake(self) -> bool:
        return self.state == "run"

    def wake(self) -> None:
        """``wake_up_interruptible(&pgdat->kswapd_wait)``."""
        if self.state == "sleep":
            self.state = "run"
            self.t = max(self.t, self.k.now)
            self._consume_request()
        elif self.state == "nap":
            self.woken_in_nap = True

    def _consume_request(self) -> None:
        pg = self.pgdat
        self.alloc_order = pg.kswapd_order
        if pg.kswapd_highest_zoneidx != MAX_NR_ZONES:
            self.highest_zoneidx = pg.kswapd_highest_zoneidx
        pg.kswapd_order = 0
        pg.kswapd_highest_zoneidx = MAX_NR_ZONES

    def advance(self, until: float) -> None:
        """Run the thread up to engine time ``until``."""
        k = self.k
        while True:
            if self.state == "sleep":
                self.t = until
                return
            if self.state == "nap":
                if self.woken_in_nap:
                    self.woken_in_nap = False
                    k.vmstat.inc("kswapd_low_wmark_hit_quickly", 1)
                    self.t = max(self.t, k.now)
                    self.state = "run"
                    self._consume_request()
                    continue
                if self.nap_until > until:
                    self.t = until
                    return
                self.t = self.nap_until
                if prepare_kswapd_sleep(k, self.pgdat, self.reclaim_order, self.highest_zoneidx):
                    self.state = "sleep"
                    k.trace.emit(
                        "mm_vmscan_kswapd_sleep",
                        self.pgdat.node_id,
                        f"nid={self.pgdat.node_id}",
                        t=self.t,
                    )
                    continue
                k.vmstat.inc("kswapd_high_wmark_hit_quickly", 1)
                self.state = "run"
                self._consume_request()
                continue
            # run
            if self.t >= until:
                return
            if self.run is None:
                self.runs += 1
                k.trace.emit(
                    "mm_vmscan_kswapd_wake",
                    self.pgdat.node_id,
                    f"nid={self.pgdat.node_id} order={self.alloc_order}",
                    t=self.t,
                )
                self.run = BalancePgdat(k, self.pgdat, self.alloc_order, self.highest_zoneidx)
            # the pass runs on kswapd's own clock: its accessed-bit checks see that time
            saved, k.now = k.now, self.t
            try:
                cost = self.run.step()
            finally:
                k.now = saved
            self.t += cost
            self.cpu_s += cost
            if self.run.done:
                self.reclaim_order = self.run.sc.order
                self.run = None
                self.try_to_sleep()

    def try_to_sleep(self) -> None:
        """``kswapd_try_to_sleep()``: nap HZ/10 if the node may sleep, else loop at once."""
        k = self.k
        if prepare_kswapd_sleep(k, self.pgdat, self.reclaim_order, self.highest_zoneidx):
            self.state = "nap"
            self.nap_until = self.t + KSWAPD_NAP_S
            self.woken_in_nap = False
        else:
            k.vmstat.inc("kswapd_high_wmark_hit_quickly", 1)
            self._consume_request()


# ---------------------------------------------------------------------------------------------
# direct reclaim


def try_to_free_pages(k: Kernel, zl: list[Zone], order: int, gfp: Gfp) -> tuple[int, float]:
    """``try_to_free_pages()`` → ``do_try_to_free_pages()``: shrink every node of the zonelist
    once per priority, 12 down to 0, until 32 pages are reclaimed. Returns (reclaimed, cost).
    """
    sc = ScanControl(
        nr_to_reclaim=SWAP_CLUSTER_MAX, order=order, reclaim_idx=gfp.highest_zoneidx, kswapd=False
    )
    # throttle_direct_reclaim(): only the first node <= NORMAL is checked; a hopeless node is
    # never throttled. The throttle itself is not modelled (docs/fidelity.md).
    k.vmstat.inc(f"allocstall_{('dma', 'dma32', 'normal', 'movable')[gfp.highest_zoneidx]}", 1)
    first = zl[0].node_id if zl else 0
    k.trace.emit(
        "mm_vmscan_direct_reclaim_begin", -1, f"order={order} gfp_flags=GFP_HIGHUSER_MOVABLE"
    )
    retried_force = False
    while True:
        sc.priority = DEF_PRIORITY
        while sc.priority >= 0:
            sc.nr_scanned = 0
            shrink_zones(k, zl, sc)
            if sc.nr_reclaimed >= sc.nr_to_reclaim:
                break
            sc.priority -= 1
        if sc.nr_reclaimed or retried_force or not sc.skipped_deactivate:
            break
        sc.force_deactivate = True
        retried_force = True
    _ = first
    k.trace.emit("mm_vmscan_direct_reclaim_end", -1, f"nr_reclaimed={sc.nr_reclaimed}")
    return sc.nr_reclaimed, k.cost_of(sc)


def shrink_zones(k: Kernel, zl: list[Zone], sc: ScanControl) -> None:
    """``shrink_zones()``: each node of the zonelist once per priority pass."""
    last = -1
    for z in zl:
        if z.zone_type > sc.reclaim_idx:
            continue
        if z.node_id == last:
            continue
        last = z.node_id
        shrink_node(k, k.pgdats[z.node_id], sc)


__all__ = [
    "BalancePgdat",
    "Kswapd",
    "ScanControl",
    "ZONE_NORMAL",
    "can_demote",
    "kswapd_clear_hopeless",
    "kswapd_hopeless",
    "prepare_kswapd_sleep",
    "shrink_node",
    "try_to_free_pages",
    "wakeup_kswapd",
    "zone_reclaimable_pages",
]
