"""``struct zone`` and ``struct pglist_data`` (include/linux/mmzone.h).

Zone numbers (free pages, watermarks, boost, lowmem_reserve) live in small numpy arrays shared
by every zone so that numba kernels (promotion, demotion) can test watermarks without calling
back into Python; :class:`Zone` is a named view of one row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from .constants import (
    LRU_ACTIVE_ANON,
    LRU_ACTIVE_FILE,
    LRU_INACTIVE_ANON,
    LRU_INACTIVE_FILE,
    MAX_NR_ZONES,
    NR_LRU_LISTS,
    WMARK_HIGH,
    WMARK_LOW,
    WMARK_MIN,
    WMARK_PROMO,
    ZONE_NAMES,
)
from .mem_map import LruRing

if TYPE_CHECKING:
    from .state import MemMap
    from .vmscan import Kswapd


class ZoneArrays:
    """Per-zone numbers for all zones of the machine, indexed by global zone id."""

    def __init__(self, nz: int, nr_memcgs: int = 1) -> None:
        self.free = np.zeros(nz, dtype=np.int64)  # NR_FREE_PAGES
        self.managed = np.zeros(nz, dtype=np.int64)
        self.wmark = np.zeros((nz, 4), dtype=np.int64)  # _watermark[]
        self.boost = np.zeros(nz, dtype=np.int64)  # watermark_boost
        self.lowmem_reserve = np.zeros((nz, MAX_NR_ZONES), dtype=np.int64)
        self.start = np.zeros(nz, dtype=np.int64)
        self.end = np.zeros(nz, dtype=np.int64)
        self.node = np.zeros(nz, dtype=np.int64)
        self.type = np.zeros(nz, dtype=np.int64)
        self.cursor = np.zeros(nz, dtype=np.int64)
        # per memcg, per zone LRU sizes: ``mem_cgroup_per_node->lru_zone_size`` (row 0 = the
        # root memcg's own pages); the zone's NR_ZONE_*_ANON/FILE counts are their sum
        self.lru_count_mc = np.zeros((nr_memcgs, nz, NR_LRU_LISTS), dtype=np.int64)
        self.below_high = np.zeros(nz, dtype=np.bool_)  # ZONE_BELOW_HIGH
        self.boosted_wmark = np.zeros(nz, dtype=np.bool_)  # ZONE_BOOSTED_WATERMARK
        # ``struct per_cpu_pages`` of the zone on the tasks' CPU (used by promotions, see
        # numa_balancing): count, high, alloc_factor. Its pages are free frames that are not
        # in NR_FREE_PAGES. ``pcp_cfg``: the zone's batch, high_min, high_max.
        self.pcp = np.zeros((nz, 3), dtype=np.int64)
        self.pcp_cfg = np.zeros((nz, 3), dtype=np.int64)

    @property
    def lru_count(self) -> np.ndarray:
        """Per-zone LRU sizes over all memcgs (a fresh array: read it, do not write it)."""
        if self.lru_count_mc.shape[0] == 1:
            return self.lru_count_mc[0]
        return self.lru_count_mc.sum(axis=0)


@dataclass(eq=False)
class Zone:
    """``struct zone``: a named view of one row of :class:`ZoneArrays`."""

    za: ZoneArrays
    idx: int
    node_id: int
    zone_type: int

    @property
    def name(self) -> str:
        return ZONE_NAMES[self.zone_type]

    @property
    def free(self) -> int:
        return int(self.za.free[self.idx])

    @property
    def managed(self) -> int:
        return int(self.za.managed[self.idx])

    @property
    def start_pfn(self) -> int:
        return int(self.za.start[self.idx])

    @property
    def end_pfn(self) -> int:
        return int(self.za.end[self.idx])

    def wmark(self, which: int) -> int:
        """``wmark_pages(z, i)``: the mark plus ``watermark_boost`` (every mark includes it)."""
        return int(self.za.wmark[self.idx, which] + self.za.boost[self.idx])

    def min_wmark_pages(self) -> int:
        return self.wmark(WMARK_MIN)

    def low_wmark_pages(self) -> int:
        return self.wmark(WMARK_LOW)

    def high_wmark_pages(self) -> int:
        return self.wmark(WMARK_HIGH)

    def promo_wmark_pages(self) -> int:
        return self.wmark(WMARK_PROMO)

    def lowmem_reserve(self, highest_zoneidx: int) -> int:
        return int(self.za.lowmem_reserve[self.idx, highest_zoneidx])

    @property
    def boost(self) -> int:
        return int(self.za.boost[self.idx])

    def lru_pages(self, lru: int) -> int:
        return int(self.za.lru_count_mc[:, self.idx, lru].sum())

    def reclaimable_anon_file(self) -> tuple[int, int]:
        c = self.za.lru_count_mc[:, self.idx].sum(axis=0)
        return int(c[LRU_INACTIVE_ANON] + c[LRU_ACTIVE_ANON]), int(
            c[LRU_INACTIVE_FILE] + c[LRU_ACTIVE_FILE]
        )


@dataclass(eq=False)
class Lruvec:
    """``struct lruvec`` of one (node, memcg): its four LRU lists (``mem_cgroup_lruvec``).

    Its per-zone sizes are row ``memcg`` of :attr:`ZoneArrays.lru_count_mc`. The cost
    balance (``anon_cost``/``file_cost``) is kept once per node (docs/fidelity.md).
    """

    node_id: int
    memcg: int
    lists: list[LruRing] = field(default_factory=lambda: [LruRing() for _ in range(4)])
    # mm/workingset.c: evictions + activations (the shadow entries' clock), and
    # WORKINGSET_ACTIVATE_FILE of this lruvec
    nonresident_age: int = 0
    workingset_activate_file: int = 0
    # MGLRU's ``lruvec->lrugen`` (mglru.LruGen), created on first use
    lrugen: Any = None
    # (data, meta) tuples of the four lists for the fused kernel, and LruRing.resizes then
    _arrays: tuple | None = field(default=None, repr=False, compare=False)
    _arrays_stamp: int = field(default=-1, repr=False, compare=False)

    def ring_arrays(self) -> tuple[tuple[np.ndarray, ...], tuple[np.ndarray, ...]]:
        """The lists' ring arrays as the fused kernel takes them; rebuilt only after a
        ring was resized (``LruRing.resizes``)."""
        if self._arrays is None or self._arrays_stamp != LruRing.resizes:
            self._arrays = (
                tuple(r.data for r in self.lists),
                tuple(r.meta for r in self.lists),
            )
            self._arrays_stamp = LruRing.resizes
        return self._arrays

    def attach_counts(self, rows: np.ndarray) -> None:
        """Give each list its live-size bound: ``rows`` is this lruvec's row of
        :attr:`ZoneArrays.lru_count_mc` over the node's zones (a view, kept current)."""
        for lru, ring in enumerate(self.lists):
            ring.count = rows[:, lru : lru + 1]

    def trim(self, mem: MemMap) -> None:
        """Compact and shrink the lists (and MGLRU's generations) whose entries went mostly
        stale, e.g. after a process exit freed its pages (``LruRing.reserve`` of nothing)."""
        for lru, ring in enumerate(self.lists):
            ring.reserve(0, mem.flags, mem.lru_pos, lru)
            ring.release_drained()
        g = self.lrugen
        if g is not None:
            from .mglru import trim_gens

            trim_gens(g, mem)


@dataclass(eq=False)
class PgData:
    """``struct pglist_data``: one NUMA node, its zones, LRU lists and kswapd state."""

    node_id: int
    start_pfn: int
    end_pfn: int
    nr_cpus: int
    zones: list[Zone | None]  # indexed by zone type; None = not populated
    # one lruvec per memcg (index = memcg id; 0 = root), set up by the Kernel
    lruvecs: list[Lruvec] = field(default_factory=list)
    # kswapd state (mm/vmscan.c)
    kswapd_failures: int = 0
    kswapd_order: int = 0
    kswapd_highest_zoneidx: int = MAX_NR_ZONES  # MAX_NR_ZONES = "no request"
    kswapd: Kswapd | None = None
    # lruvec cost accounting (lru_note_cost)
    anon_cost: int = 0
    file_cost: int = 0
    # NUMA-balancing tiering state (pgdat->nbp_*)
    nbp_rl_start: int = 0
    nbp_rl_nr_cand: int = 0
    nbp_threshold: int = 0
    nbp_th_start: int = 0
    nbp_th_nr_cand: int = 0
    # memory tiers
    adistance: int = 0
    toptier: bool = True
    # per-node stats (node_stat_item subset and kswapd accounting)
    stat: dict[str, int] = field(default_factory=dict)
    # state that a patch adds to pglist_data (e.g. nr_may_reclaimable)
    ext: dict[str, Any] = field(default_factory=dict)
    # built on first use, after the boot-time zone layout (populated_zones, zone_starts)
    _populated: list[Zone] | None = field(default=None, repr=False, compare=False)
    _zone_starts: np.ndarray | None = field(default=None, repr=False, compare=False)
    _limit_pfn: dict[int, int] = field(default_factory=dict, repr=False, compare=False)

    @property
    def lists(self) -> list[LruRing]:
        """The root memcg's lists (pages not charged to any cgroup)."""
        return self.lruvecs[0].lists

    def populated_zones(self) -> list[Zone]:
        """The node's populated zones, low to high. Zones are laid out once at boot
        (``free_area_init``), so the list is built once (callers must not modify it)."""
        if self._populated is None:
            self._populated = [z for z in self.zones if z is not None]
        return self._populated

    def zone_starts(self) -> np.ndarray:
        """First PFN of each populated zone (built once; callers must not modify it)."""
        if self._zone_starts is None:
            self._zone_starts = np.array(
                [z.start_pfn for z in self.populated_zones()], dtype=np.int64
            )
        return self._zone_starts

    def zone_first(self) -> int:
        """Global index of the node's first populated zone."""
        return self.populated_zones()[0].idx

    def free_pages(self) -> int:
        return sum(z.free for z in self.populated_zones())

    def managed_pages(self) -> int:
        return sum(z.managed for z in self.populated_zones())

    def lru_size(self, lru: int, reclaim_idx: int = MAX_NR_ZONES - 1) -> int:
        """``lruvec_lru_size(lruvec, lru, zone_idx)``: pages on ``lru`` in zones <= idx."""
        return sum(z.lru_pages(lru) for z in self.zones[: reclaim_idx + 1] if z is not None)

    def highest_zone_limit_pfn(self, reclaim_idx: int) -> int:
        """First PFN above the zones eligible for ``sc->reclaim_idx`` (fixed at boot, so
        computed once per index)."""
        end = self._limit_pfn.get(reclaim_idx)
        if end is None:
            end = self.start_pfn
            for z in self.zones[: reclaim_idx + 1]:
                if z is not None:
                    end = z.end_pfn
            self._limit_pfn[reclaim_idx] = end
        return end

    def add_stat(self, name: str, n: int) -> None:
        self.stat[name] = self.stat.get(name, 0) + n
