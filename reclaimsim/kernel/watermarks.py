"""Watermarks (mm/page_alloc.c): min_free_kbytes, per-zone marks, lowmem_reserve, checks."""

from __future__ import annotations

import math
from collections.abc import Sequence

from .constants import (
    MAX_NR_ZONES,
    NUMA_BALANCING_MEMORY_TIERING,
    WMARK_HIGH,
    WMARK_LOW,
    WMARK_MIN,
    WMARK_PROMO,
    ZONE_MOVABLE,
)
from .mmzone import PgData, Zone


def calculate_min_free_kbytes(zones: Sequence[Zone]) -> int:
    """``calculate_min_free_kbytes()``: clamp(int_sqrt(lowmem_kbytes * 16), 128, 262144).

    lowmem_kbytes = nr_free_buffer_pages() * 4, i.e. the managed pages of zones <= NORMAL.
    (The kernel subtracts each zone's high mark, which is still 0 when this first runs at
    boot, so it is left out.)
    """
    lowmem_pages = sum(z.managed for z in zones if z.zone_type < ZONE_MOVABLE)
    lowmem_kbytes = lowmem_pages * 4
    return max(128, min(262144, math.isqrt(lowmem_kbytes * 16)))


def setup_per_zone_wmarks(
    zones: Sequence[Zone], min_free_kbytes: int, watermark_scale_factor: int
) -> None:
    """``__setup_per_zone_wmarks()``: min is a share of min_free_kbytes by managed pages;
    low/high/promo are min + 1/2/3 gaps of max(min/4, managed * scale_factor / 10000).

    ZONE_MOVABLE gets the small fixed min (clamp(managed/1024, SWAP_CLUSTER_MAX, 128)) and is
    left out of lowmem_pages, as highmem is.
    """
    pages_min = min_free_kbytes >> 2  # PAGE_SHIFT - 10
    lowmem_pages = sum(z.managed for z in zones if z.zone_type != ZONE_MOVABLE)
    for z in zones:
        managed = z.managed
        tmp = pages_min * managed // max(lowmem_pages, 1)
        if z.zone_type == ZONE_MOVABLE:
            wmin = max(32, min(managed // 1024, 128))
        else:
            wmin = tmp
        gap = max(tmp >> 2, managed * watermark_scale_factor // 10000)
        za, i = z.za, z.idx
        za.wmark[i, WMARK_MIN] = wmin
        za.wmark[i, WMARK_LOW] = wmin + gap
        za.wmark[i, WMARK_HIGH] = wmin + 2 * gap
        za.wmark[i, WMARK_PROMO] = wmin + 3 * gap
        za.boost[i] = 0


def setup_per_zone_lowmem_reserve(pgdats: Sequence[PgData], ratio: Sequence[int]) -> None:
    """``setup_per_zone_lowmem_reserve()``: for zone i and class j > i, reserve
    sum(managed(i+1..j)) / lowmem_reserve_ratio[i] (ratio 0 = no reserve)."""
    for pgdat in pgdats:
        for i in range(MAX_NR_ZONES):
            zi = pgdat.zones[i]
            if zi is None:
                continue
            r = ratio[i] if i < len(ratio) else 0
            managed_above = 0
            for j in range(i + 1, MAX_NR_ZONES):
                zj = pgdat.zones[j]
                if zj is not None:
                    managed_above += zj.managed
                res = managed_above // r if r else 0
                zi.za.lowmem_reserve[zi.idx, j] = res
            zi.za.lowmem_reserve[zi.idx, i] = 0


def zone_watermark_ok(
    z: Zone,
    order: int,
    mark: int,
    highest_zoneidx: int,
    free: int | None = None,
    min_reserve: bool = False,
) -> bool:
    """``__zone_watermark_ok()`` for the flags this model uses.

    free - (2^order - 1) must exceed mark (halved for ALLOC_MIN_RESERVE) plus
    lowmem_reserve[highest_zoneidx]. Order > 0 needs a free block of that order; every free
    page is its own block here (no buddy fragmentation is modelled), see docs/fidelity.md.
    """
    f = z.free if free is None else free
    f -= (1 << order) - 1
    m = mark
    if min_reserve:
        m -= m // 2
    return f > m + z.lowmem_reserve(highest_zoneidx)


def pgdat_balanced(pgdat: PgData, order: int, highest_zoneidx: int, numa_balancing: int) -> bool:
    """``pgdat_balanced()``: ANY eligible managed zone at/above its mark balances the node.

    The mark is PROMO when NUMA_BALANCING_MEMORY_TIERING is set (a global test: the CXL
    node's kswapd aims at PROMO too), HIGH otherwise. A node with no eligible managed zone is
    balanced.
    """
    which = WMARK_PROMO if numa_balancing & NUMA_BALANCING_MEMORY_TIERING else WMARK_HIGH
    saw_managed = False
    for i in range(min(highest_zoneidx, MAX_NR_ZONES - 1) + 1):
        z = pgdat.zones[i]
        if z is None or z.managed == 0:
            continue
        saw_managed = True
        if zone_watermark_ok(z, order, z.wmark(which), highest_zoneidx):
            return True
    return not saw_managed


def pgdat_watermark_boosted(pgdat: PgData, highest_zoneidx: int) -> bool:
    """``pgdat_watermark_boosted()``: any eligible zone has a watermark boost."""
    return any(z is not None and z.boost > 0 for z in pgdat.zones[: highest_zoneidx + 1])


def allow_direct_reclaim(pgdat: PgData) -> bool:
    """``allow_direct_reclaim()``: free > half the sum of MIN over zones <= NORMAL that have
    reclaimable pages; always true for a hopeless node."""
    from .constants import MAX_RECLAIM_RETRIES, ZONE_NORMAL

    if pgdat.kswapd_failures >= MAX_RECLAIM_RETRIES:
        return True
    pfmemalloc_reserve = 0
    free = 0
    for z in pgdat.zones[: ZONE_NORMAL + 1]:
        if z is None or z.managed == 0:
            continue
        anon, file = z.reclaimable_anon_file()
        if anon + file == 0:
            continue
        pfmemalloc_reserve += z.wmark(WMARK_MIN)
        free += z.free
    if not pfmemalloc_reserve:
        return True
    return free > pfmemalloc_reserve // 2


__all__ = [
    "WMARK_HIGH",
    "WMARK_LOW",
    "WMARK_MIN",
    "WMARK_PROMO",
    "allow_direct_reclaim",
    "calculate_min_free_kbytes",
    "pgdat_balanced",
    "pgdat_watermark_boosted",
    "setup_per_zone_lowmem_reserve",
    "setup_per_zone_wmarks",
    "zone_watermark_ok",
]
