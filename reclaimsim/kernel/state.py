"""The simulated kernel's state: memory map, zones, nodes, tiers, counters, policy.

Built from a scenario's machine and sysctls the way the kernel sets itself up at boot
(``free_area_init`` → zones, ``init_per_zone_wmark_min``, ``memory_tier_init``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..scenario import Scenario, SysctlSpec
from . import mem_map as mm
from .constants import MAX_NR_ZONES, ZONE_NAMES
from .mem_map import SPAN_BLOCK, SPAN_SHIFT
from .memcg import MemCgroups
from .memory_tiers import MemoryTiers, node_adistance
from .mmzone import Lruvec, PgData, Zone, ZoneArrays
from .numa_balancing import HintFaultQueue
from .swap import Swap
from .vmstat import Tracer, VmStat
from .watermarks import (
    calculate_min_free_kbytes,
    setup_per_zone_lowmem_reserve,
    setup_per_zone_wmarks,
)

if TYPE_CHECKING:
    from ..policies.base import Policy
    from .vmscan import ScanControl


class MachineError(ValueError):
    """A machine that cannot be built (the message names the field and the fix)."""


class MemMap:
    """``struct page`` fields as arrays indexed by PFN (see mem_map.py), 17 bytes a page.

    gvp int32 (``page->mapping`` + ``page->index`` in one word: the index of the page's PTE
    in the page-table arena of :class:`Regions`, -1 = free), flags uint8, lru_pos uint32
    (ring position modulo 2^32), t_look and stamp uint32 milliseconds (49 days). The page
    tables (virtual page -> frame) are per region, in :class:`Regions`.
    """

    def __init__(self, n: int, regions: Regions) -> None:
        self.gvp = np.full(n, -1, dtype=np.int32)
        self.flags = np.zeros(n, dtype=np.uint8)
        self.lru_pos = np.zeros(n, dtype=np.uint32)
        self.t_look = np.zeros(n, dtype=np.uint32)
        self.stamp = np.zeros(n, dtype=np.uint32)
        self.regions = regions  # the arena's owner table, for owner_of/vidx_of

    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self.gvp, self.flags, self.lru_pos, self.t_look, self.stamp))

    def owner_of(self, pfns: np.ndarray | slice) -> np.ndarray:
        """The region owning each frame (-1: free), ``folio->mapping`` from the gvp's block."""
        return self.regions.owner_of_gvp(self.gvp[pfns])

    def vidx_of(self, pfns: np.ndarray | slice) -> np.ndarray:
        """Each frame's virtual page in its region (``page->index``; meaningless if free)."""
        g = self.gvp[pfns].astype(np.int64)
        return g - self.regions.vspan[self.regions.owner_of_gvp(g), 0]


MAX_REGIONS = 2**15 - 1  # span_owner is int16
MAX_ARENA = 2**31  # gvp (an arena index) is int32


class Regions:
    """Workload regions (one per VMA): touch rate, pages per node, faulted-in count, and the
    VMA's page table as a virtual-page -> frame table.

    The tables of all regions share one int32 arena ``v2p``: region r's virtual page v is at
    ``v2p[vspan[r, 0] + v]``, for v < ``vspan[r, 1]`` (the VMA's size in pages). Entries are
    written when a page is placed (``mem_map.alloc_in_range``, ``mem_map.migrate_one``) and
    checked against the frame's ``gvp`` when read (entry g is valid iff ``gvp[v2p[g]] ==
    g``), so they need no clearing; only entries below the region's ``touched`` count were
    ever written. A span starts at a multiple of ``SPAN_BLOCK`` entries and covers whole
    blocks, at least one entry more than the table: that overflow slot ``vspan[r, 0] +
    vspan[r, 1]`` is the gvp of pages numbered past the table (and the one entry of regions
    without a page table, whose frames all hold their span's base). ``span_owner[b + 1]`` is
    the region whose span holds block b (-1: none; ``span_owner[0]`` = -1 is a free frame's).
    A dead region's span is reused (first fit) once no frame holds a gvp in it (exit frees
    them all); the arena is ``np.empty``, so untouched spans and padding cost no memory.
    """

    def __init__(self, nnodes: int, table_pages: int = 1 << 16) -> None:
        self.nnodes = nnodes
        self.default_span = max(1, min(table_pages // 2, MAX_ARENA // 4))  # unsized regions
        cap = min(_span_len(max(1024, table_pages)), MAX_ARENA)
        self.v2p = np.empty(cap, dtype=np.int32)
        self.span_owner = np.full(cap // SPAN_BLOCK + 1, -1, dtype=np.int16)
        self.vspan = np.zeros((0, 2), dtype=np.int64)
        self.holes: list[tuple[int, int]] = [(0, self.v2p.size)]  # free (start, length)
        self.rate = np.zeros(0, dtype=np.float64)
        self.cnt = np.zeros((0, nnodes), dtype=np.int64)
        self.touched = np.zeros(0, dtype=np.int64)
        self.swapped = np.zeros(0, dtype=np.int64)
        self.hot = np.zeros(0, dtype=np.bool_)
        self.memcg = np.zeros(0, dtype=np.int64)
        self.names: list[str] = []

    def add(self, name: str, hot: bool, memcg: int = 0, npages: int | None = None) -> int:
        """A new region charged to ``memcg`` (its pages' memcg: region -> memcg, no per-page
        field, ``folio_memcg``), of ``npages`` virtual pages (None: as many as the machine
        has + swap)."""
        r = len(self.names)
        if r >= MAX_REGIONS:
            raise MachineError(f"more than {MAX_REGIONS} workload regions in one run")
        size = self.default_span if npages is None else max(1, int(npages))
        base = self._take_span(_span_len(size + 1))
        self.span_owner[base // SPAN_BLOCK + 1 : (base + _span_len(size + 1)) // SPAN_BLOCK + 1] = r
        self.vspan = np.vstack([self.vspan, np.array([[base, size]], dtype=np.int64)])
        self.names.append(name)
        self.rate = np.append(self.rate, 0.0)
        self.cnt = np.vstack([self.cnt, np.zeros((1, self.nnodes), dtype=np.int64)])
        self.touched = np.append(self.touched, 0)
        self.swapped = np.append(self.swapped, 0)
        self.hot = np.append(self.hot, hot)
        self.memcg = np.append(self.memcg, np.int64(memcg))
        return r

    def owner_of_gvp(self, g: np.ndarray) -> np.ndarray:
        """The region owning each arena index (-1 for -1), as ``mem_map.gvp_owner``."""
        return self.span_owner[(np.asarray(g, dtype=np.int64) >> SPAN_SHIFT) + 1]

    def unmap(self, r: int) -> None:
        """The VMA is gone (exit, after its frames were freed): its span may be reused."""
        base, size = int(self.vspan[r, 0]), int(self.vspan[r, 1])
        if size == 0:
            return
        length = _span_len(size + 1)
        self.vspan[r, 1] = 0
        self.span_owner[base // SPAN_BLOCK + 1 : (base + length) // SPAN_BLOCK + 1] = -1
        self.holes.append((base, length))
        self.holes.sort()
        merged: list[tuple[int, int]] = []
        for a, n in self.holes:
            if merged and merged[-1][0] + merged[-1][1] == a:
                merged[-1] = (merged[-1][0], merged[-1][1] + n)
            else:
                merged.append((a, n))
        self.holes = merged

    def _take_span(self, size: int) -> int:
        """First fit of ``size`` entries (a multiple of SPAN_BLOCK) in the arena."""
        for i, (a, n) in enumerate(self.holes):
            if n >= size:
                self.holes[i] = (a + size, n - size)
                if n == size:
                    del self.holes[i]
                return a
        # grow the arena (rare: spans are reused); the old contents move with it
        old = self.v2p
        cap = old.size
        tail = self.holes[-1] if self.holes and sum(self.holes[-1]) == old.size else None
        while True:
            if cap >= MAX_ARENA:
                raise MachineError(
                    f"workloads: their page tables need more than {MAX_ARENA} virtual "
                    "pages (8 TiB) at once; make the running workloads' hot + cold smaller "
                    "or start fewer of them together"
                )
            cap = min(2 * cap, MAX_ARENA)
            avail = (tail[1] if tail else 0) + cap - old.size
            if avail >= size:
                break
        new = np.empty(cap, dtype=np.int32)
        for r in range(len(self.names)):  # only entries ever written (below ``touched``)
            a = int(self.vspan[r, 0])
            m = min(int(self.vspan[r, 1]), int(self.touched[r]))
            new[a : a + m] = old[a : a + m]
        self.v2p = new
        owners = np.full(cap // SPAN_BLOCK + 1, -1, dtype=np.int16)
        owners[: self.span_owner.size] = self.span_owner
        self.span_owner = owners
        if tail is not None:
            self.holes[-1] = (tail[0], tail[1] + cap - old.size)
        else:
            self.holes.append((old.size, cap - old.size))
        return self._take_span(size)


def _span_len(n: int) -> int:
    """``n`` arena entries rounded up to whole SPAN_BLOCKs."""
    return -(-n // SPAN_BLOCK) * SPAN_BLOCK


@dataclass
class HopelessSpan:
    """A stretch of time a node spent hopeless, and how it ended."""

    nid: int
    start: float
    end: float | None = None
    reason: str = ""


class Kernel:
    """One simulated machine running one kernel policy."""

    def __init__(self, scenario: Scenario, policy: Policy, seed: int) -> None:
        self.scenario = scenario
        self.policy = policy
        self.sysctl: SysctlSpec = scenario.sysctl.model_copy(deep=True)
        self.costs = scenario.machine.costs
        self.tick_s = scenario.tick_s
        self.now = 0.0
        self.mglru = scenario.machine.lru == "mglru"
        self.vmstat = VmStat()
        self.trace = Tracer(self, enabled=scenario.output.trace)
        self.current_comm = "swapper"
        # bumped on every task state change (start, ready, exit): the engine rebuilds its
        # list of runnable tasks only then, not every tick
        self.task_state_seq = 0
        # page_alloc.zonelist(): built once per (node, gfp zone bits, nodemask), as at boot
        self.zonelists: dict[tuple, list] = {}
        self.rng = np.random.Generator(np.random.PCG64(seed))
        self.rs = mm.seed_rng(seed)  # per-page draws (page_referenced, hint-fault times)
        m = scenario.machine
        nn = len(m.nodes)
        self.distance = m.distance or [[10 if i == j else 20 for j in range(nn)] for i in range(nn)]
        # lay out PFNs: node by node, zones low to high, managed pages only
        zspecs = [(n.id, z) for n in m.nodes for z in n.zone_list()]
        # memory cgroups: id 0 is the root, then [cgroups.NAME] in file order
        self.memcgs = MemCgroups(self, scenario)
        self.za = ZoneArrays(len(zspecs), len(self.memcgs))
        self.zones: list[Zone] = []
        self.pgdats: list[PgData] = []
        pfn = 0
        for n in m.nodes:
            node_start = pfn
            zones: list[Zone | None] = [None] * MAX_NR_ZONES
            for zs in n.zone_list():
                t = ZONE_NAMES.index(zs.type)
                i = len(self.zones)
                pages = zs.pages()
                if pages <= 0:
                    raise MachineError(f"machine.nodes[{n.id}].zones: zone {zs.type} has no pages")
                self.za.start[i] = pfn
                self.za.end[i] = pfn + pages
                self.za.cursor[i] = pfn
                self.za.managed[i] = pages
                self.za.free[i] = pages
                self.za.node[i] = n.id
                self.za.type[i] = t
                z = Zone(self.za, i, n.id, t)
                self.zones.append(z)
                zones[t] = z
                pfn += pages
            pg = PgData(n.id, node_start, pfn, n.cpus, zones)
            pg.lruvecs = [Lruvec(n.id, m) for m in range(len(self.memcgs))]
            zf = pg.zone_first()
            for mc, lv in enumerate(pg.lruvecs):
                lv.attach_counts(self.za.lru_count_mc[mc, zf : zf + len(pg.populated_zones())])
            self.pgdats.append(pg)
        self.nr_pages = pfn
        if pfn >= 2**31:
            raise MachineError(
                f"machine has {pfn} pages; at most 2^31 4-KiB pages (8 TiB) are supported"
            )
        self.node_starts = np.array([pg.start_pfn for pg in self.pgdats], dtype=np.int64)
        self.node_ends = np.array([pg.end_pfn for pg in self.pgdats], dtype=np.int64)
        # virtual spans may exceed memory (the last hog of a series is OOM-killed): room for
        # twice the machine's pages + swap, reserved but not touched (np.empty)
        self.regions = Regions(nn, 2 * (pfn + self._swap_pages()))
        self.mem = MemMap(pfn, self.regions)
        self.swap = Swap(self._swap_pages())
        # watermarks (init_per_zone_wmark_min)
        mfk = self.sysctl.min_free_kbytes or calculate_min_free_kbytes(self.zones)
        self.sysctl.min_free_kbytes = mfk
        setup_per_zone_wmarks(self.zones, mfk, self.sysctl.watermark_scale_factor)
        setup_per_zone_lowmem_reserve(self.pgdats, self.sysctl.lowmem_reserve_ratio)
        from .page_alloc import zone_pcp_init

        zone_pcp_init(self)
        # memory tiers (memory_tier_init / memory_tier_late_init)
        dram = [n.hmat for n in m.nodes if n.cpus > 0 and n.hmat is not None]
        dram_perf = (dram[0].latency_ns, dram[0].bandwidth_MBps) if dram else None
        adist = [
            node_adistance(
                n.memory,
                (n.hmat.latency_ns, n.hmat.bandwidth_MBps) if n.hmat else None,
                dram_perf,
                n.adistance,
                policy.hmat_cpuless_tiers,
                n.cpus > 0,
            )
            for n in m.nodes
        ]
        self.tiers = MemoryTiers(adist, [n.cpus > 0 for n in m.nodes])
        self.tiers.establish_demotion_targets(self.distance)
        for pg in self.pgdats:
            pg.adistance = adist[pg.node_id]
            pg.toptier = self.tiers.node_is_toptier(pg.node_id)
        from .vmscan import Kswapd

        for pg in self.pgdats:
            pg.kswapd = Kswapd(self, pg)
        self.numa_faults = HintFaultQueue()
        self._scratch = np.empty(1024, dtype=np.int64)
        self.hopeless_spans: list[HopelessSpan] = []
        self._open_spans: dict[int, HopelessSpan] = {}
        # engine callbacks (set by the engine)
        self.oom_candidates: Any = lambda: []
        self.oom_kill: Any = lambda task: None
        policy.attach(self)
        # hugetlb pool: hugepages=N on the command line allocates it during boot, before any
        # workload runs (hugetlb_hstate_alloc_pages, the same round-robin as the sysctl)
        from .hugetlb import hugetlb_init, set_max_huge_pages

        self.hugetlb = hugetlb_init(self)
        if self.sysctl.nr_hugepages:
            self.sysctl.nr_hugepages = set_max_huge_pages(
                self, self.hugetlb, self.sysctl.nr_hugepages
            )

    # -- helpers ---------------------------------------------------------------------------
    def _swap_pages(self) -> int:
        from ..units import parse_size

        return parse_size(self.scenario.machine.swap) // 4096

    def now_ms(self) -> int:
        return int(self.now * 1000)

    def scratch(self, n: int) -> np.ndarray:
        if self._scratch.size < n:
            self._scratch = np.empty(max(n, 2 * self._scratch.size), dtype=np.int64)
        return self._scratch

    def node_of(self, pfn: int) -> int:
        return int(np.searchsorted(self.node_starts, pfn, side="right") - 1)

    def node_of_pfn(self, pfns: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.node_starts, pfns, side="right") - 1

    def costs_us(self, name: str) -> float:
        return float(getattr(self.costs, name)) * self.costs.cpu_slowdown

    def cost_of(self, sc: ScanControl) -> float:
        """Simulated CPU seconds of a reclaim pass: a fixed cost per pass (shrink_node's
        set-up, watermark checks; without it a pass that scans nothing would take no time and
        a spinning kswapd would never let the clock move) plus pages scanned and migrated."""
        return (
            self.costs_us("pass_us")
            + sc.pages_scanned * self.costs_us("scan_us")
            + sc.pages_migrated * self.costs_us("migrate_us")
        ) * 1e-6

    def count_hopeless_exit(self, pgdat: PgData, reason: str) -> None:
        span = self._open_spans.pop(pgdat.node_id, None)
        if span is not None:
            span.end = self.now
            span.reason = reason

    def note_hopeless(self, pgdat: PgData) -> None:
        """Called when kswapd_failures reaches MAX_RECLAIM_RETRIES."""
        if pgdat.node_id not in self._open_spans:
            span = HopelessSpan(pgdat.node_id, self.now)
            self._open_spans[pgdat.node_id] = span
            self.hopeless_spans.append(span)

    def check_lru_counts(self) -> bool:
        """Recount LRU pages per zone from the page array (tests/debugging)."""
        out = np.zeros_like(self.za.lru_count_mc)
        for pg in self.pgdats:
            sub = np.zeros((out.shape[0], len(pg.populated_zones()), 4), dtype=np.int64)
            mm.count_lru_by_zone(
                self.mem.flags,
                self.mem.gvp,
                self.regions.span_owner,
                self.regions.memcg,
                pg.start_pfn,
                pg.end_pfn,
                pg.zone_starts(),
                sub,
            )
            out[:, pg.zone_first() : pg.zone_first() + sub.shape[1]] = sub
        return bool((out == self.za.lru_count_mc).all())
