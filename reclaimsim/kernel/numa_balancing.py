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
    WMARK_PROMO,
    ZONE_MOVABLE,
)
from .mmzone import PgData
from .watermarks import zone_watermark_ok

if TYPE_CHECKING:
    from .state import Kernel

PMD_PAGES = 512  # HPAGE_PMD_NR: task_numa_work aligns chunk ends to 2 MiB
# folio_xchg_access_time keeps LAST_CPUPID_SHIFT bits of ms (8 pid bits + NR_CPUS_BITS=13 on
# Debian's x86-64 config): latency is computed modulo 2^21 ms.
PAGE_ACCESS_TIME_MASK = (1 << 21) - 1


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


def task_tick_numa(k: Kernel, task: NumaTask, ran_s: float) -> float:
    """``task_tick_numa()``: charge CPU time; when it passes node_stamp + period and the wall
    clock passed ``numa_next_scan``, run ``task_numa_work``. Returns CPU seconds scanning.

    In tiering-only mode ``update_task_scan_period`` is never reached (``task_numa_fault``
    returns early for slow-tier faults), so the period stays at ``task_scan_start`` as first
    computed: it is fixed for the task's life.
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
            if end_v <= nm.numa_scan_offset:
                continue
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
    that may be hinted (tiering only: pages off the top tier; NORMAL: pages off the task's
    node), stamp the access time, count ``numa_pte_updates``, queue the hinting faults."""
    now_ms = k.now_ms()
    total = 0
    for pg in k.pgdats:
        if not _hintable_node(k, task, pg.node_id):
            continue
        if k.regions.cnt[region, pg.node_id] == 0:
            continue
        out = k.scratch(0)
        n, out = _protect(
            k.mem.owner,
            k.mem.flags,
            k.mem.vidx,
            k.mem.stamp,
            pg.start_pfn,
            pg.end_pfn,
            region,
            vlo,
            vhi,
            now_ms,
            out,
        )
        if n:
            total += n
            k.numa_faults.schedule(k, out[:n], region)
    if total:
        k.vmstat.inc("numa_pte_updates", total)
    return total


def _hintable_node(k: Kernel, task: NumaTask, nid: int) -> bool:
    mode = k.sysctl.numa_balancing
    if mode & NUMA_BALANCING_NORMAL:
        return nid != task.cpu_node
    return bool(mode & NUMA_BALANCING_MEMORY_TIERING) and not k.tiers.node_is_toptier(nid)


@njit(cache=True)
def _protect(owner, flags, vidx, stamp, lo, hi, region, vlo, vhi, now_ms, out):
    n = 0
    for pfn in range(lo, hi):
        if owner[pfn] == region:
            v = vidx[pfn]
            if v >= vlo and v < vhi:
                f = flags[pfn]
                if (f & mm.F_PROTNONE) == 0:
                    flags[pfn] = f | mm.F_PROTNONE
                    stamp[pfn] = now_ms
                    if n == out.size:
                        grown = np.empty(max(64, 2 * n), dtype=np.int64)
                        grown[:n] = out[:n]
                        out = grown
                    out[n] = pfn
                    n += 1
    return n, out


class HintFaultQueue:
    """Pending NUMA hinting faults: (time, pfn, region, vidx), drawn when PTEs are protected.

    A protected page of a region touched at rate λ per page faults Exp(λ) after the scan (the
    first touch); a region that is not being touched never faults (its PTEs stay PROT_NONE).
    """

    def __init__(self) -> None:
        self.t = np.empty(0, dtype=np.float64)
        self.pfn = np.empty(0, dtype=np.int64)
        self.region = np.empty(0, dtype=np.int64)
        self.vidx = np.empty(0, dtype=np.int64)

    def schedule(self, k: Kernel, pfns: np.ndarray, region: int) -> None:
        lam = float(k.regions.rate[region])
        if lam <= 0.0:
            return
        n = len(pfns)
        if math.isinf(lam):
            delay = np.zeros(n)
        else:
            delay = k.rng.exponential(1.0 / lam, size=n)
        self.t = np.concatenate([self.t, k.now + delay])
        self.pfn = np.concatenate([self.pfn, pfns])
        self.region = np.concatenate([self.region, np.full(n, region, dtype=np.int64)])
        self.vidx = np.concatenate([self.vidx, k.mem.vidx[pfns].astype(np.int64)])

    def push(self, items: list[tuple[float, int, int, int]]) -> None:
        """Faults that a busy task has not reached yet go back in the queue."""
        t, pfn, region, vidx = (np.array(x) for x in zip(*items, strict=True))
        self.t = np.concatenate([self.t, t.astype(np.float64)])
        self.pfn = np.concatenate([self.pfn, pfn.astype(np.int64)])
        self.region = np.concatenate([self.region, region.astype(np.int64)])
        self.vidx = np.concatenate([self.vidx, vidx.astype(np.int64)])

    def reschedule_region(self, k: Kernel, region: int) -> None:
        """A region starts being touched: its protected pages fault from now on."""
        lam = float(k.regions.rate[region])
        if lam <= 0.0:
            return
        pfns = np.flatnonzero(
            (k.mem.owner == region) & ((k.mem.flags & mm.F_PROTNONE) != 0)
        ).astype(np.int64)
        pending = set(self.pfn[self.region == region].tolist())
        pfns = np.array([p for p in pfns if p not in pending], dtype=np.int64)
        if len(pfns):
            self.schedule(k, pfns, region)

    def pop_due(self, until: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        due = self.t <= until
        if not due.any():
            e = np.empty(0)
            return e, e.astype(np.int64), e.astype(np.int64), e.astype(np.int64)
        idx = np.flatnonzero(due)
        order = idx[np.lexsort((self.pfn[idx], self.t[idx]))]
        out = self.t[order], self.pfn[order], self.region[order], self.vidx[order]
        keep = ~due
        self.t, self.pfn = self.t[keep], self.pfn[keep]
        self.region, self.vidx = self.region[keep], self.vidx[keep]
        return out

    def drop_regions(self, dead: np.ndarray) -> None:
        keep = ~dead[self.region] if len(self.region) else np.empty(0, dtype=np.bool_)
        self.t, self.pfn = self.t[keep], self.pfn[keep]
        self.region, self.vidx = self.region[keep], self.vidx[keep]


def pgdat_free_space_enough(pgdat: PgData) -> bool:
    """``pgdat_free_space_enough()``: some zone has free > PROMO + max(1 GiB, node/16)."""
    enough = max((1 << 30) >> 12, pgdat.managed_pages() >> 4)
    for z in reversed(pgdat.zones):
        if z is None or z.managed == 0:
            continue
        if zone_watermark_ok(z, 0, z.wmark(WMARK_PROMO) + enough, ZONE_MOVABLE):
            return True
    return False


def numa_promotion_rate_limit(
    k: Kernel, pgdat: PgData, rate_limit: int, nr: int, now_ms: int
) -> bool:
    """``numa_promotion_rate_limit()``: count PGPROMOTE_CANDIDATE on the destination node
    (before the decision), limit candidates per 1 s window."""
    pgdat.add_stat("pgpromote_candidate", nr)
    k.vmstat.inc("pgpromote_candidate", nr)
    nr_cand = pgdat.stat["pgpromote_candidate"]
    if now_ms - pgdat.nbp_rl_start > 1000:
        pgdat.nbp_rl_start = now_ms
        pgdat.nbp_rl_nr_cand = nr_cand
    return nr_cand - pgdat.nbp_rl_nr_cand >= rate_limit


def numa_promotion_adjust_threshold(
    k: Kernel, pgdat: PgData, rate_limit: int, ref_th: int, now_ms: int
) -> None:
    """``numa_promotion_adjust_threshold()``: every scan_period_max, move the hot threshold
    one step (2*th/16) toward the candidate rate the rate limit allows, within [unit, 2*th]."""
    th_period = k.sysctl.numa_balancing_scan_period_max_ms
    if now_ms - pgdat.nbp_th_start > th_period:
        pgdat.nbp_th_start = now_ms
        ref_cand = rate_limit * th_period // 1000
        nr_cand = pgdat.stat.get("pgpromote_candidate", 0)
        diff = nr_cand - pgdat.nbp_th_nr_cand
        unit = ref_th * 2 // NUMA_MIGRATION_ADJUST_STEPS
        th = pgdat.nbp_threshold or ref_th
        if diff > ref_cand * 11 // 10:
            th = max(th - unit, unit)
        elif diff < ref_cand * 9 // 10:
            th = min(th + unit, ref_th * 2)
        pgdat.nbp_th_nr_cand = nr_cand
        pgdat.nbp_threshold = th


def handle_hint_faults(k: Kernel, until: float, task_of_region: dict[int, NumaTask]) -> float:
    """``do_numa_page()`` for every fault due by ``until``, in time order. Returns the CPU
    seconds the faults and promotions took (charged to the faulting tasks' time)."""
    from .migrate import migrate_balanced_pgdat, promote_pages
    from .page_alloc import node_zone_for
    from .vmscan import wakeup_kswapd

    ts, pfns, regions, vidxs = k.numa_faults.pop_due(until)
    if len(ts) == 0:
        return 0.0
    mem = k.mem
    tiering = bool(k.sysctl.numa_balancing & NUMA_BALANCING_MEMORY_TIERING)
    rate_limit = k.sysctl.numa_balancing_promote_rate_limit_MBps << (20 - 12)
    def_th = k.sysctl.numa_balancing_hot_threshold_ms
    cost = 0.0
    nr_faults = 0
    fault_s = k.costs_us("hint_fault_us") * 1e-6
    migrate_s = k.costs_us("migrate_us") * 1e-6
    later: list[tuple[float, int, int, int]] = []
    for t, pfn, region, v in zip(
        ts.tolist(), pfns.tolist(), regions.tolist(), vidxs.tolist(), strict=True
    ):
        f = int(mem.flags[pfn])
        if mem.owner[pfn] != region or mem.vidx[pfn] != v or not f & mm.F_PROTNONE:
            continue  # migrated, freed or re-protected since
        task = task_of_region.get(region)
        if task is None:
            continue
        # a task takes its hinting faults one after the other: each costs it CPU time
        t = max(t, task.fault_clock)
        if t > until:
            later.append((t, pfn, region, v))
            continue
        task.fault_clock = t + fault_s
        now_ms = int(t * 1000)
        nr_faults += 1
        mem.flags[pfn] = (f & ~mm.F_PROTNONE) | mm.F_YOUNG  # numa_rebuild_single_mapping: young
        k.vmstat.inc("numa_hint_faults", 1)
        src = k.node_of(pfn)
        st = task.numa.vmas.get(region)
        if st is not None:
            st.pids_active[1] = True  # vma_set_access_pid_bit
        if src == task.cpu_node:
            k.vmstat.inc("numa_hint_faults_local", 1)
            continue
        dst = k.pgdats[task.cpu_node]
        # should_numa_migrate_memory(), tiering branch (folio_use_access_time)
        if tiering and not k.tiers.node_is_toptier(src):
            if pgdat_free_space_enough(dst):
                dst.nbp_threshold = 0
                if k.policy.candidate_nrl:
                    dst.add_stat("pgpromote_candidate_nrl", 1)
                    k.vmstat.inc("pgpromote_candidate_nrl", 1)
            else:
                numa_promotion_adjust_threshold(k, dst, rate_limit, def_th, now_ms)
                th = dst.nbp_threshold or def_th
                latency = (now_ms - int(mem.stamp[pfn])) & PAGE_ACCESS_TIME_MASK
                mem.stamp[pfn] = now_ms
                if latency >= th:
                    continue
                if numa_promotion_rate_limit(k, dst, rate_limit, 1, now_ms):
                    continue
        elif tiering:
            continue
        else:
            continue  # NORMAL-mode task placement is not modelled (docs/fidelity.md)
        # migrate_misplaced_folio_prepare()
        if not migrate_balanced_pgdat(k, dst, 1):
            z = node_zone_for(dst, ZONE_MOVABLE)
            if z is not None:
                saved = k.now
                k.now = t
                wakeup_kswapd(k, z, None, 0, ZONE_MOVABLE)
                k.now = saved
            continue
        ok = np.zeros(1, dtype=np.bool_)
        srcpg = k.pgdats[src]
        one = np.array([pfn], dtype=np.int64)
        mm.isolate_pages(
            one, mem.flags, k.za.lru_count, srcpg.zone_starts(), srcpg.zone_first(), ok
        )
        if not ok[0]:
            continue
        moved = promote_pages(k, one, dst)
        task.fault_clock += migrate_s
        if moved:
            k.free_frames(srcpg, one)
            k.vmstat.inc("numa_pages_migrated", 1)
            k.vmstat.inc("pgmigrate_success", 1)
            if not k.tiers.node_is_toptier(src) and k.tiers.node_is_toptier(dst.node_id):
                k.vmstat.inc("pgpromote_success", 1)
                dst.add_stat("pgpromote_success", 1)
            cost += migrate_s
        else:
            k.vmstat.inc("pgmigrate_fail", 1)
            k.putback_isolated(srcpg, one)
    if later:
        k.numa_faults.push(later)
    cost += nr_faults * fault_s
    return cost
