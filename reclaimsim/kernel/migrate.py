"""Page migration for tiering (mm/migrate.c, demotion in mm/vmscan.c).

Demotion (``demote_folio_list``) allocates on the lower tier with no direct reclaim, wakes the
target's kswapd, never dips below MIN, and stops the batch at the first allocation failure
(``migrate_pages_batch`` on -ENOMEM: the rest count as failed; there is no ``pgdemote_fail``).
Promotion (``migrate_misplaced_folio``) allocates THISNODE with no reclaim flags at all.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from . import mem_map as mm
from .constants import LRU_ACTIVE_ANON, LRU_INACTIVE_ANON, WMARK_LOW, WMARK_MIN
from .mmzone import PgData, Zone
from .page_alloc import GFP_DEMOTE, Gfp, wake_all_kswapds, zone_statistics, zonelist

if TYPE_CHECKING:
    from .state import Kernel
    from .vmscan import ScanControl


def zone_allowance(k: Kernel, z: Zone, wmark: int, gfp: Gfp) -> int:
    """How many order-0 pages the zonelist walk may take from ``z`` at mark ``wmark``."""
    res = z.lowmem_reserve(gfp.highest_zoneidx)
    return max(0, z.free - (z.wmark(wmark) + res))


def migrate_into(k: Kernel, src: np.ndarray, z: Zone, keep_young: bool) -> int:
    """Move isolated pages ``src`` into free frames of zone ``z``; returns pages moved."""
    if len(src) == 0:
        return 0
    pg = k.pgdats[z.node_id]
    ri, ra = pg.lists[LRU_INACTIVE_ANON], pg.lists[LRU_ACTIVE_ANON]
    n = len(src)
    ri.reserve(n, k.mem.flags, k.mem.lru_pos, LRU_INACTIVE_ANON)
    ra.reserve(n, k.mem.flags, k.mem.lru_pos, LRU_ACTIVE_ANON)
    src_nodes = k.node_of_pfn(src)
    # pages of one call come from one node
    src_col = int(src_nodes[0])
    done, cur = mm.migrate_pages_to(
        src,
        n,
        k.mem.owner,
        k.mem.flags,
        k.mem.t_look,
        k.mem.stamp,
        k.mem.lru_pos,
        k.mem.vidx,
        z.start_pfn,
        z.end_pfn,
        k.za.cursor[z.idx],
        ri.data,
        ri.meta,
        ra.data,
        ra.meta,
        k.regions.cnt,
        src_col,
        z.node_id,
        keep_young,
        k.za.lru_count,
        z.idx,
    )
    k.za.cursor[z.idx] = cur
    k.za.free[z.idx] -= done
    k.vmstat.inc(f"pgalloc_{z.name.lower()}", done)
    zone_statistics(k, z.node_id, z.node_id, done)
    return done


def demote_folio_list(k: Kernel, pgdat: PgData, pfns: np.ndarray, sc: ScanControl) -> np.ndarray:
    """``demote_folio_list()``: migrate cold folios to the demotion target.

    ``alloc_demote_folio`` tries the preferred target THISNODE, then any node of the lower
    tiers; each allocation runs the fast path at LOW and the slow path at MIN after waking the
    node's kswapd (GFP_NOWAIT has __GFP_KSWAPD_RECLAIM). Returns a mask of demoted pages.
    """
    done = np.zeros(len(pfns), dtype=np.bool_)
    target = k.tiers.next_demotion_node(pgdat.node_id)
    if len(pfns) == 0 or target < 0:
        return done
    allowed = k.tiers.lower_tier_mask[pgdat.node_id]
    order = [target] + [n for n in zonelist_nodes(k, target) if n in allowed and n != target]
    pos = 0
    n = len(pfns)
    for nid in order:
        zl = zonelist(k, nid, Gfp(direct_reclaim=False, thisnode=True, nomemalloc=True), None)
        for mark in (WMARK_LOW, WMARK_MIN):
            if mark == WMARK_MIN and pos < n:
                wake_all_kswapds(k, 0, GFP_DEMOTE, zl)
            for z in zl:
                if pos >= n:
                    break
                allow = zone_allowance(k, z, mark, GFP_DEMOTE)
                take = min(allow, n - pos)
                if take <= 0:
                    continue
                moved = migrate_into(k, pfns[pos : pos + take].copy(), z, keep_young=False)
                done[pos : pos + moved] = True
                pos += moved
        if pos >= n:
            break
    moved_total = int(done.sum())
    failed = n - moved_total
    k.vmstat.inc("pgmigrate_success", moved_total)
    if failed:
        k.vmstat.inc("pgmigrate_fail", failed)
    sc.pages_migrated += moved_total
    k.trace.emit(
        "mm_migrate_pages",
        -1,
        f"succeeded={moved_total} failed={failed} reason=demotion",
        verbose=True,
    )
    return done


def zonelist_nodes(k: Kernel, nid: int) -> list[int]:
    """Nodes in zonelist order from ``nid`` (by distance, then id)."""
    return sorted(range(len(k.pgdats)), key=lambda n: (k.distance[nid][n], n))


def migrate_balanced_pgdat(k: Kernel, pgdat: PgData, nr: int) -> bool:
    """``migrate_balanced_pgdat()``: some zone has free > HIGH + nr + lowmem_reserve[MOVABLE]."""
    from .constants import WMARK_HIGH, ZONE_MOVABLE
    from .watermarks import zone_watermark_ok

    for z in reversed(pgdat.zones):
        if z is None or z.managed == 0:
            continue
        if zone_watermark_ok(z, 0, z.wmark(WMARK_HIGH) + nr, ZONE_MOVABLE):
            return True
    return False


def promote_pages(k: Kernel, pfns: np.ndarray, dst: PgData) -> int:
    """``migrate_misplaced_folio()`` for pages that passed ``migrate_misplaced_folio_prepare``:
    allocate on ``dst`` THISNODE (fast path LOW, slow path MIN, no kswapd wake, no reclaim)."""
    from .page_alloc import GFP_PROMOTE

    zl = zonelist(k, dst.node_id, GFP_PROMOTE, None)
    pos = 0
    n = len(pfns)
    for mark in (WMARK_LOW, WMARK_MIN):
        for z in zl:
            if pos >= n:
                break
            take = min(zone_allowance(k, z, mark, GFP_PROMOTE), n - pos)
            if take <= 0:
                continue
            moved = migrate_into(k, pfns[pos : pos + take].copy(), z, keep_young=True)
            pos += moved
    return pos
