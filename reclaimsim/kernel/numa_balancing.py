"""NUMA balancing in memory-tiering mode (kernel/sched/fair.c, mm/mprotect.c, mm/memory.c).

The scanner (``task_tick_numa`` → ``task_numa_work``) is paced by the task's CPU time and makes
slow-tier PTEs PROT_NONE, stamping each folio with the scan time. A hinting fault happens at the
task's first touch after that, drawn from the region's per-page touch rate; the fault's
latency decides hotness (``should_numa_migrate_memory``), then the promotion gate
(``migrate_misplaced_folio_prepare``: free > HIGH + nr, else wake kswapd and give up).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from numba import njit

from . import mem_map as mm
from .constants import (
    MAX_SCAN_WINDOW,
    NUMA_BALANCING_MEMORY_TIERING,
    NUMA_BALANCING_NORMAL,
    NUMA_MIGRATION_ADJUST_STEPS,
    NUMA_PERIOD_SLOTS,
    NUMA_PERIOD_THRESHOLD,
    ZONE_MOVABLE,
)

if TYPE_CHECKING:
    from .state import Kernel

PMD_PAGES = 512  # HPAGE_PMD_NR: task_numa_work aligns chunk ends to 2 MiB
# folio_xchg_access_time keeps LAST_CPUPID_SHIFT bits of ms (8 pid bits + NR_CPUS_BITS=13 on
# Debian's x86-64 config): latency is computed modulo 2^21 ms.
PAGE_ACCESS_TIME_MASK = (1 << 21) - 1
# A hint fault reads its page's struct page fields (gvp, flags, stamp; t_look when it
# promotes) at a random PFN of GiB-sized arrays: without a prefetch each is a cache and TLB
# miss on the critical path. The fault handler prefetches a run's page this many entries
# before its turn (with the runs' heads taking turns, tens to hundreds of faults ahead), and
# the PTE a promotion rewrites (``v2p[gvp]``, as random as the page). 16 ahead measured the
# same as 8 (docs/performance.md).
PF_AHEAD = 8
# above this many runs the fault handler merges their heads with a winner tree
MERGE_TREE_MIN_RUNS = 16


@njit(cache=True, inline="always")
def _prefetch_page(gvp, flags, stamp, t_look, pfn, v2p, g):
    """Prefetch the struct page fields a hint fault on ``pfn`` reads, and the PTE ``v2p[g]``
    a promotion rewrites."""
    mm.prefetch(v2p, g)
    mm.prefetch(gvp, pfn)
    mm.prefetch(flags, pfn)
    mm.prefetch(stamp, pfn)
    mm.prefetch(t_look, pfn)


@dataclass
class NumabState:
    """``vma->numab_state``."""

    start_scan_seq: int
    next_scan: float
    pids_active_reset: float
    prev_scan_seq: int
    pids_active: list[bool] = field(default_factory=lambda: [False, False])


@dataclass
class TaskNuma:
    """The per-task and per-mm NUMA-balancing fields (``p->numa_*``, ``mm->numa_*``)."""

    numa_next_scan: float
    numa_scan_seq: int = 0
    numa_scan_offset: int = 0  # in pages of the task's address space
    node_stamp: float = 0.0  # task CPU seconds
    numa_scan_period: int = 1000  # ms; init_numa_balancing: scan_delay
    runtime: float = 0.0  # sum_exec_runtime, seconds
    vmas: dict[int, NumabState] = field(default_factory=dict)
    # task_numa_fault() / task_numa_placement() state of the task (p->numa_*)
    task_scan_seq: int = 0  # p->numa_scan_seq: mm seq at the last placement
    numa_scan_period_max: int = 0  # ms, task_scan_max() at the last placement
    numa_migrate_retry: float = -math.inf  # s; placement is retried only after this time
    numa_preferred_nid: int = -1
    faults_membuf: int = 0  # counted faults since the last placement (NUMA_MEMBUF)
    faults_locality: list[int] = field(default_factory=lambda: [0, 0, 0])  # remote, local, fail


class NumaTask:
    """What the scanner needs of a task: its VMAs in address order and its CPU node."""

    pid: int
    cpu_node: int
    regions: list[int]
    vm_start: list[int]
    npages: list[int]
    numa: TaskNuma
    fault_clock: float

    def rss(self, k: Kernel) -> int:  # pragma: no cover - implemented by the workload
        raise NotImplementedError


def task_nr_scan_windows(k: Kernel, rss: int) -> int:
    """``task_nr_scan_windows()``: RSS in scan_size windows, rounded up."""
    nr_scan_pages = k.sysctl.numa_balancing_scan_size_mb << 8
    rss = max(rss, nr_scan_pages)
    return (rss + nr_scan_pages - 1) // nr_scan_pages


def task_scan_min(k: Kernel, rss: int) -> int:
    """``task_scan_min()``: max(1000 / (MAX_SCAN_WINDOW / scan_size), period_min / windows)."""
    scan_size = k.sysctl.numa_balancing_scan_size_mb
    windows = MAX_SCAN_WINDOW // scan_size if scan_size < MAX_SCAN_WINDOW else 1
    floor = 1000 // windows
    scan = k.sysctl.numa_balancing_scan_period_min_ms // task_nr_scan_windows(k, rss)
    return max(floor, scan)


def task_scan_max(k: Kernel, rss: int) -> int:
    """``task_scan_max()``: max(task_scan_min, period_max / windows) (no numa_group)."""
    smax = k.sysctl.numa_balancing_scan_period_max_ms // task_nr_scan_windows(k, rss)
    return max(task_scan_min(k, rss), smax)


def update_task_scan_period(
    k: Kernel, task: NumaTask, now: float, shared: int, private: int
) -> None:
    """``update_task_scan_period()`` (kernel/sched/fair.c): no local or shared faults, or a
    failed migration in the window, doubles the period (up to ``numa_scan_period_max``) and
    pushes ``mm->numa_next_scan`` to now + period; otherwise the period moves by slots of
    period/10 toward faster or slower scanning by the private and local ratios."""
    nm = task.numa
    remote, local, failed = nm.faults_locality
    if local + shared == 0 or failed:
        nm.numa_scan_period = min(nm.numa_scan_period_max, nm.numa_scan_period << 1)
        nm.numa_next_scan = now + nm.numa_scan_period / 1000.0
        return
    slots, threshold = NUMA_PERIOD_SLOTS, NUMA_PERIOD_THRESHOLD
    period_slot = -(-nm.numa_scan_period // slots)
    lr_ratio = local * slots // (local + remote)
    ps_ratio = private * slots // (private + shared)
    if ps_ratio >= threshold:
        diff = max(ps_ratio - threshold, 1) * period_slot
    elif lr_ratio >= threshold:
        diff = max(lr_ratio - threshold, 1) * period_slot
    else:
        diff = -(threshold - max(lr_ratio, ps_ratio)) * period_slot
    rss = task.rss(k)
    nm.numa_scan_period = min(
        max(nm.numa_scan_period + diff, task_scan_min(k, rss)), task_scan_max(k, rss)
    )
    nm.faults_locality = [0, 0, 0]


def task_numa_fault_promoted(k: Kernel, task: NumaTask, now: float, nr: int) -> None:
    """``task_numa_fault()`` for ``nr`` hinting faults that promoted their folio, the first
    at ``now``.

    In tiering mode only these faults get past the early return: ``do_numa_page`` passes the
    *target* node after a successful ``migrate_misplaced_folio`` (top tier), while a fault
    that did not migrate passes the slow node and returns at once. Such a fault is private
    (``last_cpupid`` is -1: the field held the access time) and remote (TNF_FAULT_LOCAL was
    decided on the slow node), so ``task_numa_placement``, run once per new
    ``mm->numa_scan_seq`` when ``numa_migrate_retry`` has passed, always takes
    ``update_task_scan_period``'s "no local, no shared faults" branch: the scan period
    doubles toward ``task_scan_max`` and the next scan waits for the new period.
    """
    nm = task.numa
    if now > nm.numa_migrate_retry:
        # task_numa_placement()
        if nm.task_scan_seq != nm.numa_scan_seq:
            nm.task_scan_seq = nm.numa_scan_seq
            nm.numa_scan_period_max = task_scan_max(k, task.rss(k))
            max_faults = nm.faults_membuf  # private faults on the top tier (one node here)
            nm.faults_membuf = 0
            if max_faults:
                nm.numa_preferred_nid = task.cpu_node
            update_task_scan_period(k, task, now, 0, max_faults)
        # numa_migrate_preferred(): retry after min(HZ, period / 16)
        if nm.numa_preferred_nid >= 0:
            nm.numa_migrate_retry = now + min(1.0, nm.numa_scan_period / 16 / 1000.0)
    nm.faults_membuf += nr
    nm.faults_locality[0] += nr


def task_tick_numa(k: Kernel, task: NumaTask, ran_s: float) -> float:
    """``task_tick_numa()``: charge CPU time; when it passes node_stamp + period and the wall
    clock passed ``numa_next_scan``, run ``task_numa_work``. Returns CPU seconds scanning.

    In tiering-only mode the period changes only through ``update_task_scan_period`` after
    successful promotions (:func:`task_numa_fault_promoted`): ``task_numa_fault`` returns
    early for every other fault on the slow tier.
    """
    nm = task.numa
    nm.runtime += ran_s
    period_s = nm.numa_scan_period / 1000.0
    cost = 0.0
    if nm.runtime > nm.node_stamp + period_s:
        if nm.node_stamp == 0.0:
            nm.numa_scan_period = task_scan_min(k, task.rss(k))
        nm.node_stamp += period_s
        if k.now >= nm.numa_next_scan:
            cost = task_numa_work(k, task)
    return cost


def _vma_is_accessed(nm: TaskNuma, st: NumabState, vm_start: int) -> bool:
    """``vma_is_accessed()`` for a single-threaded task."""
    if nm.numa_scan_seq - st.start_scan_seq < 2:
        return True
    if st.pids_active[0] or st.pids_active[1]:
        return True
    if nm.numa_scan_offset > vm_start:
        return True
    return nm.numa_scan_seq > st.prev_scan_seq + 1


def task_numa_work(k: Kernel, task: NumaTask) -> float:
    """``task_numa_work()``: one scan of up to scan_size MB of changed chunks (8x that of
    address space), resuming at ``numa_scan_offset``. Returns the task CPU seconds it used;
    the kernel then pushes node_stamp by 32x that (scanning capped at ~3% of CPU)."""
    nm = task.numa
    now = k.now
    if now < nm.numa_next_scan:
        return 0.0
    nm.numa_next_scan = now + nm.numa_scan_period / 1000.0
    nm.node_stamp += 2 * k.tick_s
    pages = k.sysctl.numa_balancing_scan_size_mb << 8
    virtpages = pages * 8
    ptes_walked = 0
    delay = k.sysctl.numa_balancing_scan_delay_ms / 1000.0
    forced = False
    pids_skipped = False
    while True:
        stopped = False
        for r, start_v, n in zip(task.regions, task.vm_start, task.npages, strict=True):
            end_v = start_v + n
            if n == 0 or end_v <= nm.numa_scan_offset:
                continue  # (an empty VMA: a task's read-once page cache has no mapping)
            st = nm.vmas.get(r)
            if st is None:
                st = NumabState(
                    nm.numa_scan_seq, now + delay, now + 5 * delay, nm.numa_scan_seq - 1
                )
                nm.vmas[r] = st
            if nm.numa_scan_seq and now < st.next_scan:
                continue
            if nm.numa_scan_seq and now > st.pids_active_reset:
                st.pids_active_reset += 4 * delay
                st.pids_active = [st.pids_active[1], False]
            if st.prev_scan_seq == nm.numa_scan_seq:
                nm.numa_scan_offset = end_v
                continue
            if not forced and not _vma_is_accessed(nm, st, start_v):
                pids_skipped = True
                continue
            start = max(nm.numa_scan_offset, start_v)
            while True:
                end = min(((start + pages + PMD_PAGES - 1) // PMD_PAGES) * PMD_PAGES, end_v)
                changed = change_prot_numa(k, task, r, start - start_v, end - start_v)
                ptes_walked += end - start
                if changed:
                    pages -= end - start
                virtpages -= end - start
                start = end
                if pages <= 0 or virtpages <= 0:
                    nm.numa_scan_offset = start
                    stopped = True
                    break
                if end >= end_v:
                    break
            if stopped:
                break
            st.prev_scan_seq = nm.numa_scan_seq
            nm.numa_scan_offset = end_v
            if forced:
                break
        if stopped:
            break
        if not forced and pids_skipped:
            forced = True
            continue
        # reset_ptenuma_scan(): the whole address space was scanned
        nm.numa_scan_seq += 1
        nm.numa_scan_offset = 0
        break
    cost = ptes_walked * k.costs_us("pte_scan_us") * 1e-6
    nm.node_stamp += 32 * cost
    return cost


def change_prot_numa(k: Kernel, task: NumaTask, region: int, vlo: int, vhi: int) -> int:
    """``change_prot_numa()`` on virtual pages [vlo, vhi) of one VMA: PROT_NONE on every page
    that may be hinted (tiering only: pages off the top tier, ``change_pte_range`` skips
    toptier folios; NORMAL: pages off the task's node), stamp the access time, count
    ``numa_pte_updates``, queue the hinting faults.

    As the kernel walks the VMA's page tables in address order, this walks the region's
    virtual-to-frame table (``Regions.v2p``) over the range: the cost is the PTEs walked.
    """
    regions = k.regions
    hint = np.array(
        [_hintable_node(k, task, pg.node_id) and regions.cnt[region, pg.node_id] > 0
         for pg in k.pgdats],
        dtype=np.bool_,
    )  # fmt: skip
    if not hint.any():
        return 0
    # only pages faulted in have PTEs (and table entries)
    vhi = min(vhi, int(regions.touched[region]), int(regions.vspan[region, 1]))
    if vhi <= vlo:
        return 0
    mem = k.mem
    out = k.scratch(vhi - vlo)  # room for every PTE of the range
    n = _protect(
        mem.gvp,
        mem.flags,
        mem.stamp,
        regions.v2p,
        int(regions.vspan[region, 0]),
        k.node_ends,
        hint,
        vlo,
        vhi,
        k.now_ms(),
        out,
    )
    if n:
        k.numa_faults.schedule(k, out[:n], region)
        k.vmstat.inc("numa_pte_updates", n)
    return n


def _hintable_node(k: Kernel, task: NumaTask, nid: int) -> bool:
    mode = k.sysctl.numa_balancing
    if mode & NUMA_BALANCING_NORMAL:
        return nid != task.cpu_node
    return bool(mode & NUMA_BALANCING_MEMORY_TIERING) and not k.tiers.node_is_toptier(nid)


@njit(cache=True)
def _protect(gvp, flags, stamp, v2p, base, node_ends, hint, vlo, vhi, now_ms, out):
    """``change_pte_range()`` over virtual pages [vlo, vhi) of ``region`` (table at ``base``
    in ``v2p``), in address order: PROT_NONE and stamp each present page on a hintable node
    not yet protected, into ``out`` (room for vhi - vlo). Returns the count. (The buffer is
    not grown in the loop: an array reassigned there costs numba's reference counting on
    every PTE, 10 ns, measured in docs/performance.md.)"""
    n = 0
    npfn = gvp.size
    # the PFN span of the hintable nodes (a page's node is the first whose end is above it):
    # most PTEs walked map top-tier pages, rejected here by one range check
    first = 0
    while first < hint.size and not hint[first]:
        first += 1
    if first == hint.size:
        return 0
    last = hint.size - 1
    while not hint[last]:
        last -= 1
    lo = node_ends[first - 1] if first > 0 else 0
    hi = min(node_ends[last], npfn)
    for v in range(vlo, vhi):
        pfn = v2p[base + v]
        if pfn < lo or pfn >= hi:
            continue
        nid = first
        while pfn >= node_ends[nid]:
            nid += 1
        if not hint[nid]:
            continue
        if gvp[pfn] != base + v:
            continue  # not present (freed, swapped out): the entry is stale
        f = flags[pfn]
        if (f & mm.F_PROTNONE) == 0:
            flags[pfn] = f | mm.F_PROTNONE
            stamp[pfn] = now_ms
            out[n] = pfn
            n += 1
    return n


class HintFaultQueue:
    """Pending NUMA hinting faults, drawn when PTEs are protected.

    A protected page of a region touched at rate λ per page faults Exp(λ) after the scan (the
    first touch); a region that is not being touched never faults (its PTEs stay PROT_NONE).
    Each ``change_prot_numa`` batch becomes one *run*: its n fault times are drawn directly
    in increasing order (order statistics of n exponentials, Rényi's representation) and
    given to the pages in a uniformly random order, so a run is sorted at O(n) cost; the
    handler merges the runs' heads in time order. Entries live in one arena (time, pfn, gvp
    when protected: the fault is stale if the frame no longer holds that page); ``runs`` rows
    are (start, head, end, region).
    """

    def __init__(self) -> None:
        self.t = np.empty(1024, dtype=np.float64)
        self.pfn = np.empty(1024, dtype=np.int32)  # PFNs < 2^31 (state.Kernel checks)
        self.gvp = np.empty(1024, dtype=np.int32)
        self.n = 0
        self.runs = np.zeros((0, 4), dtype=np.int64)
        # a lower bound of the earliest run head's time (+inf: no run): the per-tick check
        # "is anything due?" reads it instead of every run's head
        self.next_due = math.inf
        # per-node arrays of the fault kernel that are fixed at boot (zones, managed pages,
        # memory tiers), built at the first fault
        self.node_static: tuple[np.ndarray, ...] | None = None

    def __len__(self) -> int:
        return int((self.runs[:, 2] - self.runs[:, 1]).sum()) if len(self.runs) else 0

    def earliest(self) -> float:
        """The earliest run head's time (+inf: no run); refreshes ``next_due``."""
        runs = self.runs
        self.next_due = float(self.t[runs[:, 1]].min()) if len(runs) else math.inf
        return self.next_due

    def _compact(self, extra: int) -> None:
        """Move the live runs to the front of the arena (in run order, which is arena
        order, so each moves down), growing it only when it would stay over half full:
        a fresh arena is new memory to fault in, the same one is already mapped."""
        live = self.runs[self.runs[:, 1] < self.runs[:, 2]]
        total = int((live[:, 2] - live[:, 1]).sum()) if len(live) else 0
        cap = self.t.size
        while total + extra > cap // 2:
            cap *= 2
        if cap == self.t.size:
            t, pfn, gvp = self.t, self.pfn, self.gvp
        else:
            t = np.empty(cap, dtype=np.float64)
            pfn = np.empty(cap, dtype=np.int32)
            gvp = np.empty(cap, dtype=np.int32)
        w = 0
        for r in live:
            a, b = int(r[1]), int(r[2])
            m = b - a
            if a != w or t is not self.t:
                # numpy copies overlapping slices correctly (w <= a here)
                t[w : w + m] = self.t[a:b]
                pfn[w : w + m] = self.pfn[a:b]
                gvp[w : w + m] = self.gvp[a:b]
            r[0], r[1], r[2] = w, w, w + m
            w += m
        self.t, self.pfn, self.gvp, self.n = t, pfn, gvp, w
        self.runs = live.copy()

    def schedule(self, k: Kernel, pfns: np.ndarray, region: int) -> None:
        lam = float(k.regions.rate[region])
        n = len(pfns)
        if lam <= 0.0 or n == 0:
            return
        if self.n + n > self.t.size:
            self._compact(n)
        a = self.n
        if math.isinf(lam):
            # every page is touched at once: faults at the scan time, in PFN order
            self.t[a : a + n] = k.now
            self.pfn[a : a + n] = pfns
            self.gvp[a : a + n] = k.mem.gvp[self.pfn[a : a + n]]
        else:
            _sorted_exp_run(
                pfns, k.now, 1.0 / lam, self.t[a : a + n], self.pfn[a : a + n], k.mem.gvp,
                self.gvp[a : a + n], k.rs,
            )  # fmt: skip
        self.n = a + n
        self.runs = np.vstack([self.runs, np.array([[a, a, a + n, region]], dtype=np.int64)])
        self.next_due = min(self.next_due, float(self.t[a]))  # a run's first entry is its min

    def pending_pfns(self, region: int) -> np.ndarray:
        """PFNs with a fault of ``region`` still queued."""
        parts = [self.pfn[r[1] : r[2]] for r in self.runs if r[3] == region and r[1] < r[2]]
        return np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)

    def reschedule_region(self, k: Kernel, region: int) -> None:
        """A region starts being touched: its protected pages fault from now on."""
        lam = float(k.regions.rate[region])
        if lam <= 0.0:
            return
        regions = k.regions
        vn = min(int(regions.touched[region]), int(regions.vspan[region, 1]))
        pfns = _protected_pages(
            k.mem.gvp, k.mem.flags, regions.v2p, int(regions.vspan[region, 0]), vn
        )
        pending = self.pending_pfns(region)
        if len(pending):
            pfns = pfns[~np.isin(pfns, pending)]
        if len(pfns):
            self.schedule(k, pfns, region)

    def drop_regions(self, dead: np.ndarray) -> None:
        if len(self.runs):
            gone = dead[self.runs[:, 3]]
            self.runs[gone, 1] = self.runs[gone, 2]
            self.runs = self.runs[self.runs[:, 1] < self.runs[:, 2]]


@njit(cache=True)
def _sorted_exp_run(pfns, now, mean, t_out, pfn_out, gvp, gvp_out, rs):
    """n i.i.d. Exp(mean) delays after ``now``, drawn already sorted (the k-th smallest of n
    is a sum of Exp(mean)/(n-j) spacings), paired with the pages in uniformly random order
    (Fisher-Yates): the same law as drawing each page's delay independently. Each page's
    ``gvp`` goes with it (read in address order, before the shuffle)."""
    n = pfns.size
    acc = 0.0
    for j in range(n):
        acc += -mean * np.log(1.0 - mm.rand01(rs)) / (n - j)
        t_out[j] = now + acc
        pfn_out[j] = pfns[j]
        gvp_out[j] = gvp[pfns[j]]
    for j in range(n - 1, 0, -1):
        i = min(j, np.int64(mm.rand01(rs) * (j + 1)))
        tmp = pfn_out[j]
        pfn_out[j] = pfn_out[i]
        pfn_out[i] = tmp
        g = gvp_out[j]
        gvp_out[j] = gvp_out[i]
        gvp_out[i] = g


@njit(cache=True)
def _protected_pages(gvp, flags, v2p, base, vn):
    """PFNs of ``region``'s present pages whose PTE is PROT_NONE, in address order (a walk
    of its table over the ``vn`` pages faulted in)."""
    out = np.empty(vn, dtype=np.int64)
    n = 0
    npfn = gvp.size
    for v in range(vn):
        pfn = v2p[base + v]
        if pfn < 0 or pfn >= npfn:
            continue
        if gvp[pfn] == base + v and (flags[pfn] & mm.F_PROTNONE) != 0:
            out[n] = pfn
            n += 1
    return out[:n].copy()


def handle_hint_faults(k: Kernel, until: float, task_of_region: dict[int, NumaTask]) -> float:
    """``do_numa_page()`` for every fault due by ``until``, in time order. Returns the CPU
    seconds the faults and promotions took (charged to the faulting tasks' time).

    The faults run in one numba kernel (:func:`_hint_fault_batch`); it comes back to Python
    only where Python code must run at that point: a ``wakeup_kswapd`` that may wake a
    sleeping, non-hopeless kswapd (promotion gate failed), and the free path's
    ZONE_BELOW_HIGH policy hook. A task takes its faults one after the other; a fault the
    task cannot reach by ``until`` stays queued.
    """
    q = k.numa_faults
    # nothing due (run heads are each run's earliest fault): the cached lower bound first,
    # then the exact minimum
    if q.next_due > until or q.earliest() > until:
        return 0.0
    from .vmscan import (
        _HOOKS,
        _WAKE,
        _run_hooks,
        _wake_bookkeeping,
        apply_counters,
        flush_pushes,
        fused_buffers,
        refresh_wake_possible,
    )

    nreg = len(k.regions.names)
    tasks: list[NumaTask] = []
    tix: dict[int, int] = {}
    task_of = np.empty(nreg, dtype=np.int64)
    task_of[:] = -1
    for r, task in task_of_region.items():
        if id(task) not in tix:
            tix[id(task)] = len(tasks)
            tasks.append(task)
        task_of[r] = tix[id(task)]
    clock = np.array([t.fault_clock for t in tasks] or [0.0], dtype=np.float64)
    cpu_node = np.array([t.cpu_node for t in tasks] or [0], dtype=np.int64)
    accessed = np.zeros(nreg, dtype=np.bool_)
    pgs = k.pgdats
    nbp = np.array(
        [
            [
                pg.nbp_threshold,
                pg.nbp_rl_start,
                pg.nbp_rl_nr_cand,
                pg.nbp_th_start,
                pg.nbp_th_nr_cand,
            ]
            for pg in pgs
        ],
        dtype=np.int64,
    )
    nstat = np.array(
        [[pg.stat.get(key, 0) for key in _NSTAT_KEYS] for pg in pgs],
        dtype=np.int64,
    )
    nstat0 = nstat.copy()
    if q.node_static is None:
        q.node_static = (
            np.array([pg.zone_first() for pg in pgs], dtype=np.int64),
            np.array([len(pg.populated_zones()) for pg in pgs], dtype=np.int64),
            np.array([max((1 << 30) >> 12, pg.managed_pages() >> 4) for pg in pgs], np.int64),
            np.array([k.tiers.node_is_toptier(pg.node_id) for pg in pgs], dtype=np.bool_),
        )
    node_zfirst, node_znum, node_enough, toptier = q.node_static
    p = np.array(
        [
            int(bool(k.sysctl.numa_balancing & NUMA_BALANCING_MEMORY_TIERING)),
            k.sysctl.numa_balancing_promote_rate_limit_MBps << (20 - 12),
            k.sysctl.numa_balancing_hot_threshold_ms,
            k.sysctl.numa_balancing_scan_period_max_ms,
            int(k.policy.candidate_nrl),
            MERGE_TREE_MIN_RUNS,
        ],
        dtype=np.int64,
    )
    fp = np.array(
        [until, k.costs_us("hint_fault_us") * 1e-6, k.costs_us("migrate_us") * 1e-6, 0.0, 0.0]
    )
    buf = fused_buffers(k)
    refresh_wake_possible(k, buf)
    st = np.zeros(4, dtype=np.int64)
    # per task: time of the first promotion of this call (-1: none) and the promotions
    promo = np.zeros((max(1, len(tasks)), 2), dtype=np.float64)
    promo[:, 0] = -1.0
    za, mem = k.za, k.mem
    while True:
        status = _hint_fault_batch(
            q.runs,
            q.t,
            q.pfn,
            q.gvp,
            task_of,
            clock,
            cpu_node,
            accessed,
            fp,
            p,
            st,
            mem.flags,
            mem.gvp,
            k.regions.span_owner,
            mem.stamp,
            mem.t_look,
            k.regions.cnt,
            k.node_starts,
            toptier,
            node_zfirst,
            node_znum,
            node_enough,
            nbp,
            nstat,
            za.free,
            za.wmark,
            za.boost,
            za.lowmem_reserve,
            za.start,
            za.end,
            za.cursor,
            za.type,
            za.lru_count_mc,
            k.regions.memcg,
            za.below_high,
            buf.node_has_cpu,
            buf.wake_possible,
            buf.wake_req,
            buf.hook_zones,
            buf.push,
            buf.counters,
            k.regions.v2p,
            promo,
            za.pcp,
            za.pcp_cfg,
        )
        flush_pushes(k, buf.push, int(st[0]))
        st[0] = 0
        _write_back_nbp(k, nbp, nstat, nstat0)
        nstat0[:] = nstat
        _wake_bookkeeping(k, buf)
        if status == _WAKE:
            from .page_alloc import node_zone_for
            from .vmscan import wakeup_kswapd

            z = node_zone_for(pgs[int(st[1])], ZONE_MOVABLE)
            if z is not None:
                saved = k.now
                k.now = float(fp[4])
                wakeup_kswapd(k, z, None, 0, ZONE_MOVABLE)
                k.now = saved
            refresh_wake_possible(k, buf)
        elif status == _HOOKS:
            _run_hooks(k, buf)
            refresh_wake_possible(k, buf)
        elif status == _NEED_PUSH_ROOM:
            continue
        else:
            break
    apply_counters(k, None, buf.counters, "")
    for i, (task, c) in enumerate(zip(tasks, clock.tolist(), strict=False)):
        task.fault_clock = c
        if promo[i, 1] > 0:
            task_numa_fault_promoted(k, task, float(promo[i, 0]), int(promo[i, 1]))
    for r in np.flatnonzero(accessed):
        task = task_of_region.get(int(r))
        if task is not None:
            vst = task.numa.vmas.get(int(r))
            if vst is not None:
                vst.pids_active[1] = True  # vma_set_access_pid_bit
    q.runs = q.runs[q.runs[:, 1] < q.runs[:, 2]]
    q.earliest()
    return float(fp[3])


_NEED_PUSH_ROOM = 4


_NSTAT_KEYS = ("pgpromote_candidate", "pgpromote_candidate_nrl", "pgpromote_success")


def _write_back_nbp(k: Kernel, nbp: np.ndarray, nstat: np.ndarray, nstat0: np.ndarray) -> None:
    """Store the fault kernel's ``pgdat->nbp_*`` and per-node promotion counts back."""
    deltas = (nstat - nstat0).tolist()
    for pg, row, d in zip(k.pgdats, nbp.tolist(), deltas, strict=True):
        (
            pg.nbp_threshold,
            pg.nbp_rl_start,
            pg.nbp_rl_nr_cand,
            pg.nbp_th_start,
            pg.nbp_th_nr_cand,
        ) = row
        for key, n in zip(_NSTAT_KEYS, d, strict=True):
            if n:
                pg.add_stat(key, n)


@njit(cache=True, inline="always")
def _zone_ok(z_free, z_wmark, z_boost, z_lres, z, which, extra):
    """``zone_watermark_ok(z, 0, mark + extra, ZONE_MOVABLE)`` (marks include the boost)."""
    return z_free[z] > z_wmark[z, which] + z_boost[z] + extra + z_lres[z, 3]


@njit(cache=True)
def _hint_fault_batch(
    runs,
    q_t,
    q_pfn,
    q_gvp,
    task_of,
    clock,
    cpu_node,
    accessed,
    fp,
    p,
    st,
    flags,
    gvp,
    span_owner,
    stamp,
    t_look,
    cnt,
    node_starts,
    toptier,
    node_zfirst,
    node_znum,
    node_enough,
    nbp,
    nstat,
    z_free,
    z_wmark,
    z_boost,
    z_lres,
    z_start,
    z_end,
    z_cursor,
    z_type,
    lru_count,
    rmemcg,
    below_high,
    node_has_cpu,
    wake_possible,
    wake_req,
    hook_zones,
    push,
    counters,
    v2p,
    promo,
    pcp,
    pcp_cfg,
):
    """``do_numa_page()`` → ``should_numa_migrate_memory()`` (tiering: free-space-enough,
    hot threshold on the fault latency, promotion rate limit, threshold adjustment) →
    ``migrate_misplaced_folio_prepare()`` (gate: free > HIGH + 1, else wake kswapd) →
    ``migrate_misplaced_folio()`` (THISNODE at LOW then MIN, no reclaim) for due faults in
    (time, pfn) order, merged over the runs. Returns 0 when done, or a reason to run Python.
    """
    until = fp[0]
    fault_s = fp[1]
    migrate_s = fp[2]
    tiering = p[0] != 0
    rate_limit = p[1]
    def_th = p[2]
    th_period = p[3]
    cand_nrl = p[4] != 0
    nruns = runs.shape[0]
    nnodes = node_starts.size
    # each run's head (time, pfn), +inf once the run is exhausted, not due by ``until`` or
    # blocked (its task has not reached it): the merge reads these few contiguous values
    # instead of chasing every run's head in the arena per fault
    ht = np.empty(nruns, dtype=np.float64)
    hp = np.empty(nruns, dtype=np.int64)
    for r in range(nruns):
        h = runs[r, 1]
        ht[r] = q_t[h] if h < runs[r, 2] and q_t[h] <= until else np.inf
        hp[r] = q_pfn[h] if h < runs[r, 2] else 0
        for j in range(h, min(h + PF_AHEAD, runs[r, 2])):
            _prefetch_page(gvp, flags, stamp, t_look, q_pfn[j], v2p, q_gvp[j])
    # The merge order: the earliest head; ties by PFN, then by run order. With many runs a
    # winner tree (leaves at nl + r, node i holds the better of its children's winners)
    # finds it in O(log runs) per fault; with few, a scan of the heads is faster (fewer
    # mispredicted branches: 14 vs 21 ns per fault at 8 runs, 36 vs 32 ns at 26, measured
    # on this merge alone).
    use_tree = nruns > p[5]  # MERGE_TREE_MIN_RUNS
    nl = 1
    while use_tree and nl < nruns:
        nl *= 2
    win = np.full(2 * nl, -1, dtype=np.int64)
    if use_tree:
        for r in range(nruns):
            win[nl + r] = r
        for i in range(nl - 1, 0, -1):
            a = win[2 * i]
            b = win[2 * i + 1]
            if b >= 0 and (a < 0 or ht[b] < ht[a] or (ht[b] == ht[a] and hp[b] < hp[a])):
                a = b
            win[i] = a
    changed = -1  # the run whose head changed since the tree was last brought up to date
    while True:
        if st[0] + 1 > push.size:
            return 4
        if use_tree:
            if changed >= 0:
                i = (nl + changed) >> 1
                while i >= 1:
                    a = win[2 * i]
                    b = win[2 * i + 1]
                    # a (left) wins ties of time and PFN: the lower run index
                    if b >= 0 and (a < 0 or ht[b] < ht[a] or (ht[b] == ht[a] and hp[b] < hp[a])):
                        a = b
                    win[i] = a
                    i >>= 1
                changed = -1
            best = win[1]
            if best >= 0 and ht[best] == np.inf:
                best = -1
        else:
            best = -1
            bt = np.inf
            bp = 0
            for r in range(nruns):
                t = ht[r]
                if t < bt or (t == bt and t != np.inf and hp[r] < bp):
                    best = r
                    bt = t
                    bp = hp[r]
        if best < 0:
            return 0
        bt = ht[best]
        h = runs[best, 1]
        region = runs[best, 3]
        pfn = q_pfn[h]
        f = flags[pfn]
        # the run moves past this head now, except when its task has not reached it
        # the frame still holds the page protected (same PTE index: owner and index)
        stale = gvp[pfn] != q_gvp[h] or (f & mm.F_PROTNONE) == 0
        task = task_of[region]
        t = max(bt, clock[task]) if task >= 0 else bt
        if not stale and task >= 0 and t > until:
            ht[best] = np.inf  # blocked until the next call
            changed = best
            continue
        h += 1
        runs[best, 1] = h
        if h + PF_AHEAD < runs[best, 2]:
            _prefetch_page(gvp, flags, stamp, t_look, q_pfn[h + PF_AHEAD], v2p, q_gvp[h + PF_AHEAD])
        if h < runs[best, 2] and q_t[h] <= until:
            ht[best] = q_t[h]
            hp[best] = q_pfn[h]
        else:
            ht[best] = np.inf
        changed = best
        if stale or task < 0:
            continue  # migrated, freed or re-protected since; or the task is gone
        clock[task] = t + fault_s
        fp[3] += fault_s
        now_ms = np.int64(t * 1000)
        flags[pfn] = (f & ~mm.F_PROTNONE) | mm.F_YOUNG  # numa_rebuild_single_mapping: young
        counters[mm.C_HINT] += 1
        src = 0
        while src + 1 < nnodes and pfn >= node_starts[src + 1]:
            src += 1
        accessed[region] = True
        dst = cpu_node[task]
        if src == dst:
            counters[mm.C_HINT_LOCAL] += 1
            continue
        if not (tiering and not toptier[src]):
            continue  # NORMAL-mode task placement is not modelled (docs/fidelity.md)
        z0 = node_zfirst[dst]
        nz = node_znum[dst]
        # pgdat_free_space_enough(): some zone above PROMO + max(1 GiB, node/16)
        enough = False
        for zz in range(z0 + nz - 1, z0 - 1, -1):
            if _zone_ok(z_free, z_wmark, z_boost, z_lres, zz, 3, node_enough[dst]):
                enough = True
                break
        if enough:
            nbp[dst, 0] = 0
            if cand_nrl:
                nstat[dst, 1] += 1
                counters[mm.C_CAND_NRL] += 1
        else:
            # numa_promotion_adjust_threshold()
            if now_ms - nbp[dst, 3] > th_period:
                nbp[dst, 3] = now_ms
                ref_cand = rate_limit * th_period // 1000
                diff = nstat[dst, 0] - nbp[dst, 4]
                unit = def_th * 2 // NUMA_MIGRATION_ADJUST_STEPS
                th = nbp[dst, 0] if nbp[dst, 0] else def_th
                if diff > ref_cand * 11 // 10:
                    th = max(th - unit, unit)
                elif diff < ref_cand * 9 // 10:
                    th = min(th + unit, def_th * 2)
                nbp[dst, 4] = nstat[dst, 0]
                nbp[dst, 0] = th
            th = nbp[dst, 0] if nbp[dst, 0] else def_th
            latency = (now_ms - stamp[pfn]) & PAGE_ACCESS_TIME_MASK
            stamp[pfn] = now_ms
            if latency >= th:
                continue
            # numa_promotion_rate_limit()
            nstat[dst, 0] += 1
            counters[mm.C_CAND] += 1
            if now_ms - nbp[dst, 1] > 1000:
                nbp[dst, 1] = now_ms
                nbp[dst, 2] = nstat[dst, 0]
            if nstat[dst, 0] - nbp[dst, 2] >= rate_limit:
                continue
        # migrate_misplaced_folio_prepare() -> migrate_balanced_pgdat(dst, 1)
        balanced = False
        for zz in range(z0 + nz - 1, z0 - 1, -1):
            if _zone_ok(z_free, z_wmark, z_boost, z_lres, zz, 2, 1):
                balanced = True
                break
        if not balanced:
            if nz > 0:
                if wake_possible[dst]:
                    st[1] = dst
                    fp[4] = t
                    return 2
                wake_req[dst] = True
            continue
        # folio_isolate_lru()
        if (flags[pfn] & mm.F_ONLRU) == 0:
            continue
        f = flags[pfn]
        sz0 = node_zfirst[src]
        zsrc = sz0
        while zsrc + 1 < sz0 + node_znum[src] and pfn >= z_start[zsrc + 1]:
            zsrc += 1
        flags[pfn] = f & ~mm.F_ONLRU
        # the folio's lruvec: its memcg's (region -> memcg), per-zone sizes
        lc = lru_count[rmemcg[region]]
        lc[zsrc, f & mm.F_LRU_MASK] -= 1
        # migrate_misplaced_folio(): dst THISNODE, zones high to low, at LOW then MIN
        moved_to = -1
        for wm in (1, 0):
            for zz in range(z0 + nz - 1, z0 - 1, -1):
                if z_free[zz] - (z_wmark[zz, wm] + z_boost[zz] + z_lres[zz, 3]) <= 0:
                    continue
                # the zone cursor walks to the next free frame (written out: an inlined
                # helper with a loop keeps numba's array reference counting per call)
                c = z_cursor[zz]
                looked = 0
                while looked < z_end[zz] - z_start[zz]:
                    if c >= z_end[zz]:
                        c = z_start[zz]
                    if gvp[c] < 0:
                        break
                    c += 1
                    looked += 1
                if looked >= z_end[zz] - z_start[zz]:
                    continue
                # rmqueue_pcplist() on the faulting CPU: an empty list is refilled from the
                # buddy with nr_pcp_alloc() pages (rmqueue_bulk, no watermark check), which
                # leave NR_FREE_PAGES at once; the next faults' gate above sees only the
                # buddy, so pages on the list wait until kswapd lifts the buddy over HIGH.
                if pcp[zz, 0] == 0:
                    base = pcp_cfg[zz, 0]
                    hmin = pcp_cfg[zz, 1]
                    hmax = pcp_cfg[zz, 2]
                    high = min(max(pcp[zz, 1], hmin), hmax)
                    bt = base << pcp[zz, 2]
                    if hmin != hmax and not below_high[zz]:
                        high = min(high + bt, hmax)
                    pcp[zz, 1] = high
                    max_nr = max(high - pcp[zz, 0] - base, base)
                    if bt <= max_nr and pcp[zz, 2] < 5:  # CONFIG_PCP_BATCH_SCALE_MAX
                        pcp[zz, 2] += 1
                    bt = min(bt, max_nr, z_free[zz])
                    z_free[zz] -= bt
                    pcp[zz, 0] += bt
                pcp[zz, 0] -= 1
                mm.migrate_one(
                    pfn, c, gvp, span_owner, flags, t_look, True, cnt, src, dst, lc, zz, v2p
                )
                z_cursor[zz] = c + 1
                counters[mm.C_PGALLOC0 + z_type[zz]] += 1
                counters[mm.C_NUMA_HIT] += 1
                if node_has_cpu[dst]:
                    counters[mm.C_NUMA_LOCAL] += 1
                else:
                    counters[mm.C_NUMA_OTHER] += 1
                push[st[0]] = c
                st[0] += 1
                moved_to = c
                break
            if moved_to >= 0:
                break
        clock[task] += migrate_s
        if moved_to >= 0:
            z_free[zsrc] += 1
            counters[mm.C_PGFREE] += 1
            if below_high[zsrc] and _zone_ok(z_free, z_wmark, z_boost, z_lres, zsrc, 2, 0):
                below_high[zsrc] = False
                hook_zones[zsrc] = True
            counters[mm.C_NUMA_MIGRATED] += 1
            counters[mm.C_MIGRATE_OK] += 1
            if not toptier[src] and toptier[dst]:
                counters[mm.C_PROMOTE_OK] += 1
                nstat[dst, 2] += 1
                # task_numa_fault() on the top-tier target node (Python side)
                if promo[task, 0] < 0:
                    promo[task, 0] = t
                promo[task, 1] += 1
            fp[3] += migrate_s
            if hook_zones[zsrc]:
                return 3
        else:
            counters[mm.C_MIGRATE_FAIL] += 1
            flags[pfn] = flags[pfn] | mm.F_ONLRU  # folio_putback_lru()
            lc[zsrc, f & mm.F_LRU_MASK] += 1
            push[st[0]] = pfn
            st[0] += 1
