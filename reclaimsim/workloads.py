"""Workload processes: anon mappings laid out [hot][guard][cold], touched cold first, then hot,
then the hot set rewritten in a loop (the real-kernel harness's ``hog``).

A process never emits accesses one by one. Each region carries a per-page touch rate, and
the kernel draws what it would observe (PTE accessed bit, first touch after a NUMA scan) from
that rate when it looks (design-notes.md section 1).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from .kernel import mem_map as mm
from .kernel.memcg import mem_cgroup_handle_over_high, try_charge
from .kernel.numa_balancing import TaskNuma
from .kernel.page_alloc import GFP_HIGHUSER_MOVABLE, GFP_KERNEL, alloc_pages
from .scenario import WorkloadSpec
from .units import PAGE_SIZE, eval_expr, parse_size

if TYPE_CHECKING:
    from .kernel.state import Kernel


class Process:
    """A task with its mm: regions (VMAs), memory policy, NUMA-balancing state."""

    def __init__(self, k: Kernel, name: str, pid: int, spec: WorkloadSpec, env: dict) -> None:
        self.name = name
        self.pid = pid
        self.spec = spec
        self.oom_score_adj = spec.oom_score_adj
        self.bind = spec.bind
        self.memcg = k.memcgs.id_of(spec.memcg)  # the task's memory cgroup
        self.nr_pages_over_high = 0  # current->memcg_nr_pages_over_high
        self.throttle_s = 0.0  # memory.high penalty still to sleep
        cpu_nodes = [pg.node_id for pg in k.pgdats if pg.nr_cpus > 0]
        self.cpu_node = cpu_nodes[0]
        hot = _pages(spec.hot, env)
        cold = _pages(spec.cold, env)
        kern = _pages(spec.kernel, env)
        self.state = "touching"
        self.start_t = k.now
        self.ready_t: float | None = None
        self.exit_t: float | None = None
        self.carry = 0.0
        self.cpu_share = 1.0
        self.full_rate = 0.0
        self.fault_clock = 0.0  # hinting faults are taken one after another
        # VMAs in address order: hot at the lower address (the scanner reaches it first)
        self.regions: list[int] = []
        self.vm_start: list[int] = []
        self.npages: list[int] = []
        self.hot_region: int | None = None
        addr = 0
        if hot:
            self.hot_region = k.regions.add(f"{name}.hot", True, self.memcg, npages=hot)
            self.regions.append(self.hot_region)
            self.vm_start.append(addr)
            self.npages.append(hot)
            addr += hot + 1  # the PROT_NONE guard page
        self.cold_region: int | None = None
        if cold:
            self.cold_region = k.regions.add(f"{name}.cold", False, self.memcg, npages=cold)
            self.regions.append(self.cold_region)
            self.vm_start.append(addr)
            self.npages.append(cold)
        # unmovable kernel memory (GFP_KERNEL, on no LRU): not a VMA, so the NUMA scanner and
        # rss never see it; allocated first, freed at exit
        self.kernel_region: int | None = None
        self.kernel_pages = kern
        if kern:
            self.kernel_region = k.regions.add(
                f"{name}.kernel", False, self.memcg, npages=1
            )  # no page table: kernel memory is not mapped through the task's tables
        self.alloc_budget = 0.0  # pages the alloc_MBps cap still allows
        # touch order: kernel memory, then cold, then hot
        self.touch_order = [
            r for r in (self.kernel_region, self.cold_region, self.hot_region) if r is not None
        ]
        self.numa = TaskNuma(numa_next_scan=k.now + k.sysctl.numa_balancing_scan_delay_ms / 1000)
        if not self.touch_order:
            self._become_ready(k)

    # -- accounting used by the OOM killer and the scanner ---------------------------------
    def rss(self, k: Kernel) -> int:
        return int(sum(k.regions.cnt[r].sum() for r in self.regions))

    def swapents(self, k: Kernel) -> int:
        return int(sum(k.regions.swapped[r] for r in self.regions))

    def pgtables(self) -> int:
        return sum(self.npages) // 512 + 1

    @property
    def alive(self) -> bool:
        return self.state != "dead"

    def runnable(self) -> bool:
        """On a CPU: while faulting its memory in, and while rewriting a hot set."""
        return self.state == "touching" or (self.state == "running" and self.hot_region is not None)

    # -- one engine step -------------------------------------------------------------------
    def step(self, k: Kernel, cpu_s: float) -> float:
        """Fault in pages for ``cpu_s`` of CPU time; returns the CPU time left unused."""
        if self.state != "touching":
            return cpu_s
        fault_s = k.costs_us("fault_us") * 1e-6
        budget = cpu_s + self.carry
        if self.throttle_s > 0:
            # memory.high penalty sleep owed from the last return to user
            used = min(self.throttle_s, budget)
            self.throttle_s -= used
            budget -= used
        charged = 0
        cap = self.spec.alloc_MBps
        if cap is not None:
            self.alloc_budget = min(
                self.alloc_budget + cap * 1e6 / PAGE_SIZE * cpu_s, cap * 1e6 / PAGE_SIZE
            )
        while self.touch_order and budget >= fault_s:
            r = self.touch_order[0]
            kern = r == self.kernel_region
            total = self.kernel_pages if kern else self.npages[self.regions.index(r)]
            left = total - int(k.regions.touched[r])
            want = min(left, int(budget / fault_s))
            if cap is not None:
                want = min(want, int(self.alloc_budget))
            if want <= 0:
                break
            preferred = self.cpu_node
            if self.bind is not None and preferred not in self.bind:
                preferred = self.bind[0]
            k.current_comm = self.name
            if kern:
                # kmalloc & co: local node, GFP_KERNEL (ZONE_NORMAL at most), no memcg charge
                # (no __GFP_ACCOUNT), not subject to the task's user-memory mempolicy
                res = alloc_pages(
                    k, want, GFP_KERNEL, self.cpu_node, None, r, task=self, kernel=True
                )
                budget -= res.got * fault_s + res.stall_s
                self.alloc_budget -= res.got
                if res.oom_killed_self or not self.alive:
                    return 0.0
                if res.failed and res.got == 0:
                    break
                if k.regions.touched[r] >= total:
                    self.touch_order.pop(0)
                continue
            if self.memcg:
                # mem_cgroup_charge() -> try_charge(): memory.max reclaim / memcg OOM
                want, stall = try_charge(k, self.memcg, want, self)
                budget -= stall
                if not self.alive:
                    return 0.0
                if want <= 0:
                    break
            res = alloc_pages(k, want, GFP_HIGHUSER_MOVABLE, preferred, self.bind, r, task=self)
            budget -= res.got * fault_s + res.stall_s
            self.alloc_budget -= res.got
            charged += res.got
            if res.oom_killed_self or not self.alive:
                return 0.0
            if res.failed and res.got == 0:
                break
            if k.regions.touched[r] >= total:
                self.touch_order.pop(0)
        self.carry = max(0.0, min(budget, fault_s))
        self.return_to_user(k, charged)
        if not self.alive:
            return 0.0
        if not self.touch_order:
            self._become_ready(k)
        return 0.0

    def return_to_user(self, k: Kernel, charged: int) -> None:
        """``try_charge`` marked the pages charged over memory.high
        (``memcg_nr_pages_over_high``); ``mem_cgroup_handle_over_high`` runs on the way back
        to user space: reclaim, then the penalty sleep (taken from the next steps' CPU)."""
        if not self.memcg or charged <= 0:
            return
        m = k.memcgs[self.memcg]
        if k.memcgs.usage(self.memcg) <= m.high:
            return
        self.nr_pages_over_high += charged
        nr, self.nr_pages_over_high = self.nr_pages_over_high, 0
        saved = k.current_comm
        k.current_comm = self.name
        self.throttle_s += mem_cgroup_handle_over_high(k, self.memcg, nr)
        k.current_comm = saved

    def swap_in_faults(self, k: Kernel, dt: float) -> None:
        """Touches of swapped-out pages in the next ``dt``: each faults (``do_swap_page``).
        The number is drawn from the regions' touch rates (memory.swap_in_count)."""
        from .kernel.memory import do_swap_page, swap_in_count

        for r in self.regions:
            n = swap_in_count(k, int(k.regions.swapped[r]), float(k.regions.rate[r]), dt)
            if n:
                do_swap_page(k, self, r, n)
                if not self.alive:
                    return

    def _become_ready(self, k: Kernel) -> None:
        """All memory touched: the loop over the hot set starts (or pause() if none)."""
        self.state = "running"
        self.ready_t = k.now
        if self.hot_region is not None:
            acc = self.spec.access
            if acc == "busy":
                # one pass over the hot set takes hot_pages * touch cost
                per_pass = (
                    self.npages[self.regions.index(self.hot_region)] * k.costs_us("touch_us") * 1e-6
                )
                rate = 1.0 / per_pass if per_pass > 0 else math.inf
            else:
                rate = float(acc)
            self.full_rate = rate
            k.regions.rate[self.hot_region] = rate * self.cpu_share
            k.numa_faults.reschedule_region(k, self.hot_region)

    def set_cpu_share(self, k: Kernel, share: float) -> None:
        """A busy loop sharing CPUs with other tasks touches each page less often."""
        self.cpu_share = share
        if self.hot_region is not None and self.state == "running" and self.spec.access == "busy":
            k.regions.rate[self.hot_region] = self.full_rate * share

    def kill(self, k: Kernel) -> None:
        """Exit: every page goes back through the per-CPU free path (``free_unref_folios``)."""
        if not self.alive:
            return
        self.state = "dead"
        self.exit_t = k.now
        dead = np.zeros(len(k.regions.names), dtype=np.bool_)
        owned = self.regions + ([self.kernel_region] if self.kernel_region is not None else [])
        for r in owned:
            dead[r] = True
            k.regions.rate[r] = 0.0
        from .kernel.page_alloc import free_pages_zone

        counts = np.zeros(len(k.zones), dtype=np.int64)
        regs = k.regions
        # kernel memory has no page table: its frames are found frame by frame
        kr = self.kernel_region
        missed = kr is not None and bool(regs.cnt[kr].any())
        for r in self.regions:
            freed = mm.free_region(
                k.mem.owner,
                k.mem.flags,
                k.mem.vidx,
                regs.v2p,
                int(regs.vspan[r, 0]),
                min(int(regs.touched[r]), int(regs.vspan[r, 1])),
                r,
                k.za.start,
                k.za.end,
                counts,
                k.za.lru_count_mc[self.memcg],
            )
            missed |= freed < int(regs.cnt[r].sum())
        if missed:
            # pages the tables do not reach (a swap-in numbered at a virtual page that is
            # still present, see memory.do_swap_page): found frame by frame
            for pg in k.pgdats:
                sub = np.zeros(len(pg.populated_zones()), dtype=np.int64)
                mm.free_regions(
                    k.mem.owner,
                    k.mem.flags,
                    pg.start_pfn,
                    pg.end_pfn,
                    dead,
                    regs.cnt,
                    pg.zone_starts(),
                    sub,
                    k.za.lru_count_mc[self.memcg],
                    pg.zone_first(),
                )
                counts[pg.zone_first() : pg.zone_first() + len(sub)] += sub
        for pg in k.pgdats:
            if not k.regions.cnt[owned, pg.node_id].any():
                continue
            for z in pg.populated_zones():
                free_pages_zone(k, z, int(counts[z.idx]))
        for r in owned:
            k.swap.release(int(k.regions.swapped[r]))
            k.regions.swapped[r] = 0
            k.regions.cnt[r, :] = 0
        k.numa_faults.drop_regions(dead)
        for r in self.regions:
            k.regions.unmap(r)

    def placement(self, k: Kernel) -> dict[str, dict[str, int]]:
        """Resident and hot pages per node (numa_maps)."""
        res = {str(n): 0 for n in range(len(k.pgdats))}
        hot = {str(n): 0 for n in range(len(k.pgdats))}
        for r in self.regions:
            for n in range(len(k.pgdats)):
                c = int(k.regions.cnt[r, n])
                res[str(n)] += c
                if k.regions.hot[r]:
                    hot[str(n)] += c
        out = {"resident_pages_by_node": res, "hot_pages_by_node": hot}
        if self.kernel_region is not None:
            out["kernel_pages_by_node"] = {
                str(n): int(k.regions.cnt[self.kernel_region, n]) for n in range(len(k.pgdats))
            }
        return out


def _pages(value: str | int, env: dict) -> int:
    """A size or size expression -> pages, rounded up as mmap rounds a length."""
    if isinstance(value, str):
        try:
            b = parse_size(value)
        except ValueError:
            b = int(eval_expr(value, env))
    else:
        b = int(value)
    return max(0, -(-b // PAGE_SIZE))
