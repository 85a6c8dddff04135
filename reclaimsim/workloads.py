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
from .kernel.memory import do_swap_page, swap_in_count
from .kernel.numa_balancing import TaskNuma
from .kernel.page_alloc import GFP_HIGHUSER_MOVABLE, GFP_KERNEL, alloc_pages
from .kernel.workingset import workingset_refault
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
        k.task_state_seq += 1
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
            # no page table: kernel memory is not mapped through the task's tables; not
            # charged to the task's memcg (no __GFP_ACCOUNT), so it counts as the root's
            self.kernel_region = k.regions.add(f"{name}.kernel", False, 0, npages=1)
        self.alloc_budget = 0.0  # pages the alloc_MBps cap still allows
        # page cache: a mapped file set (read after the anon is touched) and read-once data
        self.file_region: int | None = None
        nfile = _pages(spec.file, env)
        if nfile:
            addr += (self.npages[-1] if self.npages else 0) + 1
            # the table spans refaulted pages too (a re-read page gets the next virtual index)
            self.file_region = k.regions.add(f"{name}.file", False, self.memcg)
            self.regions.append(self.file_region)
            self.vm_start.append(addr)
            self.npages.append(nfile)
            acc = spec.file_access
            k.regions.rate[self.file_region] = (
                1.0 / (nfile * k.costs_us("touch_us") * 1e-6) if acc == "busy" else float(acc)
            )
        self.stream_region: int | None = None
        self.stream_carry = 0.0
        if spec.stream_MBps > 0:
            self.stream_region = k.regions.add(f"{name}.stream", False, self.memcg)
            self.regions.append(self.stream_region)
            self.vm_start.append(1 << 30)
            self.npages.append(0)
        # a task with page cache to read (read_files has work to do once running)
        self.reads_files = self.file_region is not None or self.stream_region is not None
        # shadow entries of the file set: how many, and their summed eviction ages
        self.shadow_n = 0
        self.shadow_age = 0.0
        self.file_resident = 0
        self.age_seen = 0  # the lruvec's nonresident_age when the shadows were last noted
        # touch order: kernel memory, then cold, then hot, then the file set
        self.touch_order = [
            r
            for r in (self.kernel_region, self.cold_region, self.hot_region, self.file_region)
            if r is not None
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
        """On a CPU: while faulting its memory in, while rewriting a hot set, and while
        reading files."""
        return self.state == "touching" or (
            self.state == "running"
            and (
                self.hot_region is not None
                or self.file_region is not None
                or self.stream_region is not None
            )
        )

    # -- one engine step -------------------------------------------------------------------
    def step(self, k: Kernel, cpu_s: float) -> float:
        """Fault in pages for ``cpu_s`` of CPU time; returns the CPU time left unused."""
        if self.state == "running":
            return self.read_files(k, cpu_s)
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
            else:
                if self.memcg:
                    # mem_cgroup_charge() -> try_charge(): memory.max reclaim / memcg OOM
                    want, stall = try_charge(k, self.memcg, want, self)
                    budget -= stall
                    if not self.alive:
                        return 0.0
                    if want <= 0:
                        break
                file = r == self.file_region
                res = alloc_pages(
                    k, want, GFP_HIGHUSER_MOVABLE, preferred, self.bind, r, file=file, task=self
                )
                budget -= res.got * fault_s + res.stall_s
                self.alloc_budget -= res.got
                charged += res.got
                if file:
                    self.file_resident += res.got
                    k.vmstat.inc("pgpgin", 4 * res.got)
                    k.vmstat.inc("pgmajfault", res.got)
                    budget -= res.got * k.costs_us("read_us") * 1e-6
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

    def preferred_node(self) -> int:
        if self.bind is not None and self.cpu_node not in self.bind:
            return self.bind[0]
        return self.cpu_node

    def read_files(self, k: Kernel, cpu_s: float) -> float:
        """A running task's page-cache reads over ``cpu_s``: evicted pages of the file set
        read again (each at the file access rate: ``filemap_fault`` of a page that is not
        cached, a refault), and new read-once pages at ``stream_MBps``. Each is a major
        fault that reads the page (``pgpgin``, ``pgmajfault``) into a newly allocated,
        charged page. Returns CPU time left (the loop over the hot set uses it)."""
        budget = cpu_s
        if self.throttle_s > 0:
            used = min(self.throttle_s, budget)
            self.throttle_s -= used
            budget -= used
        if not self.reads_files:
            return max(budget, 0.0)  # no file set, no stream: nothing to read or charge
        charged = 0
        read_s = k.costs_us("read_us") * 1e-6
        nid = self.preferred_node()
        pgdat = k.pgdats[nid]
        lv = pgdat.lruvecs[self.memcg]
        if self.file_region is not None:
            r = self.file_region
            resident = int(k.regions.cnt[r].sum())
            if resident < self.file_resident:
                # workingset_eviction(): shadows of the pages reclaim dropped since we looked,
                # their eviction ages taken as spread evenly over the lruvec's clock since then
                gone = self.file_resident - resident
                self.shadow_n += gone
                self.shadow_age += gone * (self.age_seen + lv.nonresident_age - 1) / 2
            self.file_resident = resident
            self.age_seen = lv.nonresident_age
            rate = k.regions.rate[r]
            if self.shadow_n > 0 and budget > 0:
                p = -math.expm1(-min(rate * cpu_s, 40.0))
                n = int(k.rng.binomial(self.shadow_n, p)) if p < 1.0 else self.shadow_n
                n = min(n, int(budget / read_s) + 1)
                if n > 0:
                    mean_age = self.shadow_age / self.shadow_n
                    active = workingset_refault(
                        k, pgdat, self.memcg, n, lv.nonresident_age - mean_age
                    )
                    got, spent = self._read(k, r, n, active)
                    budget -= spent
                    charged += got
                    self.shadow_n -= got
                    self.shadow_age -= got * mean_age
                    self.file_resident += got
        if self.stream_region is not None and budget > 0:
            self.stream_carry += self.spec.stream_MBps * 256 * cpu_s  # 256 pages per MB
            n = int(self.stream_carry)
            if n > 0:
                self.stream_carry -= n
                got, spent = self._read(k, self.stream_region, n, False)
                budget -= spent
                charged += got
                # read once: never touched again
        self.return_to_user(k, charged)
        return max(budget, 0.0)

    def _read(self, k: Kernel, r: int, n: int, active: bool) -> tuple[int, float]:
        """Allocate, charge and read ``n`` page-cache pages of region ``r``."""
        spent = 0.0
        if self.memcg:
            n, stall = try_charge(k, self.memcg, n, self)
            spent += stall
            if n <= 0 or not self.alive:
                return 0, spent
        k.current_comm = self.name
        res = alloc_pages(
            k,
            n,
            GFP_HIGHUSER_MOVABLE,
            self.preferred_node(),
            self.bind,
            r,
            file=True,
            task=self,
            active=active,
        )
        k.vmstat.inc("pgpgin", 4 * res.got)
        k.vmstat.inc("pgmajfault", res.got)
        spent += res.stall_s + res.got * k.costs_us("read_us") * 1e-6
        return res.got, spent

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
        for r in self.regions:
            n = swap_in_count(k, int(k.regions.swapped[r]), float(k.regions.rate[r]), dt)
            if n:
                do_swap_page(k, self, r, n)
                if not self.alive:
                    return

    def _become_ready(self, k: Kernel) -> None:
        """All memory touched: the loop over the hot set starts (or pause() if none)."""
        self.state = "running"
        k.task_state_seq += 1
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
        k.task_state_seq += 1
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
                k.mem.gvp,
                k.mem.flags,
                regs.v2p,
                int(regs.vspan[r, 0]),
                min(int(regs.touched[r]), int(regs.vspan[r, 1])),
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
                    k.mem.gvp,
                    regs.span_owner,
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
            # the freed pages' LRU entries went stale: compact and shrink the lists they
            # dominate (no list is walked for the exit, as zap_pte_range takes pages off theirs)
            pg.lruvecs[self.memcg].trim(k.mem)
        for pg in k.pgdats:
            if not k.regions.cnt[owned, pg.node_id].any():
                continue
            for z in pg.populated_zones():
                free_pages_zone(k, z, int(counts[z.idx]))
        holes = k.__dict__.get("_swap_holes", {})  # memory.do_swap_page's hole lists
        for r in owned:
            holes.pop(r, None)
            k.swap.release(int(k.regions.swapped[r]))
            k.regions.swapped[r] = 0
            k.regions.cnt[r, :] = 0
        k.numa_faults.drop_regions(dead)
        # every frame holding a gvp in these spans was freed above: they may be reused
        for r in owned:
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
