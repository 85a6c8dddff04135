"""Memory cgroups (mm/memcontrol.c, cgroup v2): memory.max / memory.high / memory.low.

A memcg's pages are found through their owner region (region -> memcg, ``folio_memcg``), not
a per-page field. Its page counter (``memcg->memory``) is the sum of its regions' resident
pages: every charge in the kernel is a page becoming resident for the memcg and every uncharge
one leaving (freed, reclaimed), which is exactly what the regions' per-node counts track, so
``page_counter_read`` is that sum (O(regions), computed when read).

Modelled: the flat hierarchy (every cgroup a child of the root), ``try_charge``'s reclaim and
memcg OOM at memory.max, ``mem_cgroup_handle_over_high`` on return to user (``reclaim_high`` ->
``try_to_free_mem_cgroup_pages``, then the allocator throttle ``calculate_high_delay``), and
memory.low (``mem_cgroup_below_low``, the proportional scan reduction in ``get_scan_count``).
Not modelled: memory.min, swap.max, nested cgroups, per-CPU charge stock (docs/fidelity.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..units import parse_size
from .constants import MAX_RECLAIM_RETRIES, PAGE_SIZE, SWAP_CLUSTER_MAX

if TYPE_CHECKING:
    from ..scenario import Scenario
    from .state import Kernel

PAGE_COUNTER_MAX = 2**62  # "max"
HZ = 1000  # jiffies per second of the modelled kernel (CONFIG_HZ=1000)
MEMCG_CHARGE_BATCH = 64
MEMCG_DELAY_PRECISION_SHIFT = 20
MEMCG_DELAY_SCALING_SHIFT = 14
MEMCG_MAX_HIGH_DELAY_JIFFIES = 2 * HZ


def _pages(v: str | int | None) -> int:
    if v is None or v == "max":
        return PAGE_COUNTER_MAX
    return parse_size(v) // PAGE_SIZE


@dataclass(eq=False)
class MemCgroup:
    """``struct mem_cgroup``: limits in pages, ``memory.events`` and ``memory.stat`` counters."""

    id: int
    name: str
    max: int = PAGE_COUNTER_MAX
    high: int = PAGE_COUNTER_MAX
    low: int = 0
    events: dict[str, int] = field(
        default_factory=lambda: {"low": 0, "high": 0, "max": 0, "oom": 0, "oom_kill": 0}
    )
    stat: dict[str, int] = field(default_factory=dict)

    def add_stat(self, name: str, n: int) -> None:
        self.stat[name] = self.stat.get(name, 0) + n


class MemCgroups:
    """All memcgs of the machine; id 0 is the root."""

    def __init__(self, k: Kernel, scenario: Scenario) -> None:
        self.k = k
        self.list: list[MemCgroup] = [MemCgroup(0, "/")]
        for name, spec in scenario.cgroups.items():
            self.list.append(
                MemCgroup(
                    len(self.list),
                    name,
                    max=_pages(spec.memory_max),
                    high=_pages(spec.memory_high),
                    low=0 if spec.memory_low is None else _pages(spec.memory_low),
                )
            )
        self.by_name = {m.name: m for m in self.list}

    def __len__(self) -> int:
        return len(self.list)

    def __getitem__(self, i: int) -> MemCgroup:
        return self.list[i]

    def id_of(self, name: str | None) -> int:
        return 0 if name is None else self.by_name[name].id

    def usage(self, memcg: int) -> int:
        """``page_counter_read(&memcg->memory)``: resident pages of the memcg (the root: all)."""
        regs = self.k.regions
        if memcg == 0:
            return int(regs.cnt.sum())
        return int(regs.cnt[regs.memcg == memcg].sum())

    def iter(self, target: int | None) -> list[int]:
        """``mem_cgroup_iter(target, ...)``: the target, then its descendants (pre-order)."""
        if target is None or target == 0:
            return list(range(len(self.list)))
        return [target]

    # -- protection (mm/memcontrol.c) -------------------------------------------------------
    def elow(self, target: int | None, memcg: int) -> int:
        """``mem_cgroup_calculate_protection``: a child of the root (the flat hierarchy) gets
        ``elow = memory.low``; the target and the root are unprotected."""
        if memcg == 0 or memcg == (target or 0):
            return 0
        return self.list[memcg].low

    def below_low(self, target: int | None, memcg: int) -> bool:
        """``mem_cgroup_below_low()``: usage within the effective low protection."""
        elow = self.elow(target, memcg)
        if elow == 0:
            return False
        return elow >= self.usage(memcg)

    def protection(self, target: int | None, memcg: int, in_low_reclaim: bool) -> int:
        """``mem_cgroup_protection()``: emin (0 here) in low reclaim, else max(emin, elow)."""
        if in_low_reclaim:
            return 0
        return self.elow(target, memcg)


# ---------------------------------------------------------------------------------------------
# charging


def try_charge(k: Kernel, memcg: int, nr_pages: int, task: object) -> tuple[int, float]:
    """``try_charge()`` for up to ``nr_pages``: how many may be charged now, and the seconds
    the task spent getting there.

    Over memory.max: a ``max`` event, ``try_to_free_mem_cgroup_pages`` (may swap), retried
    while it makes progress and otherwise up to MAX_RECLAIM_RETRIES times, then the memcg OOM
    killer (``mem_cgroup_out_of_memory``). Returns 0 pages if the task itself was killed or
    nothing could be freed.
    """
    from .vmscan import try_to_free_mem_cgroup_pages

    if memcg == 0:
        return nr_pages, 0.0
    m = k.memcgs[memcg]
    spent = 0.0
    retries = MAX_RECLAIM_RETRIES
    while True:
        usage = k.memcgs.usage(memcg)
        room = m.max - usage
        if room > 0:
            # charge what fits; the rest of the batch comes back through here
            return min(room, nr_pages), spent
        m.events["max"] += 1
        reclaimed, cost = try_to_free_mem_cgroup_pages(k, memcg, nr_pages, may_swap=True)
        spent += cost
        # progress retries without using up the retry budget; pages demoted to another
        # node stay charged, so only progress that lowered the usage counts here
        if reclaimed and k.memcgs.usage(memcg) < usage:
            continue
        retries -= 1
        if retries > 0:
            continue
        # mem_cgroup_oom(): the memcg OOM killer
        m.events["oom"] += 1
        killed_self = mem_cgroup_out_of_memory(k, memcg, task)
        if killed_self is None or killed_self:
            return 0, spent
        retries = MAX_RECLAIM_RETRIES


def mem_cgroup_out_of_memory(k: Kernel, memcg: int, task: object) -> bool | None:
    """``mem_cgroup_out_of_memory()``: kill the memcg's task with the highest
    ``oom_badness`` (totalpages = memory.max). True if ``task`` was the victim, None if
    there is nothing to kill."""
    from .oom import oom_badness

    totalpages = min(k.memcgs[memcg].max, sum(pg.managed_pages() for pg in k.pgdats))
    best, best_pts = None, None
    for p in k.oom_candidates():
        if getattr(p, "memcg", 0) != memcg:
            continue
        pts = oom_badness(p.rss(k), p.swapents(k), p.pgtables(), p.oom_score_adj, totalpages)
        if pts is not None and (best_pts is None or pts > best_pts):
            best, best_pts = p, pts
    if best is None:
        return None
    k.memcgs[memcg].events["oom_kill"] += 1
    k.vmstat.inc("oom_kill", 1)
    k.trace.emit("mark_victim", -1, f"pid={best.pid} comm={best.name} memcg={memcg}")
    k.oom_kill(best)
    return best is task


def calculate_high_delay(usage: int, high: int, nr_pages: int) -> int:
    """``calculate_overage`` + ``calculate_high_delay``: jiffies of throttling owed for
    ``nr_pages`` charged over memory.high (quadratic in the overage)."""
    if usage <= high:
        return 0
    h = max(high, 1)
    overage = ((usage - h) << MEMCG_DELAY_PRECISION_SHIFT) // h
    penalty = overage * overage * HZ
    penalty >>= MEMCG_DELAY_PRECISION_SHIFT
    penalty >>= MEMCG_DELAY_SCALING_SHIFT
    return penalty * nr_pages // MEMCG_CHARGE_BATCH


def mem_cgroup_handle_over_high(k: Kernel, memcg: int, nr_pages: int) -> float:
    """``mem_cgroup_handle_over_high()`` on return to user after charging ``nr_pages`` while
    over memory.high: ``reclaim_high`` (first the pages charged, then SWAP_CLUSTER_MAX per
    retry), retried while it makes progress (or MAX_RECLAIM_RETRIES times) as long as the
    throttle owed exceeds HZ/100; then sleep the penalty (capped at 2 s). Returns the seconds
    the task spends (reclaim CPU + penalty sleep)."""
    from .vmscan import try_to_free_mem_cgroup_pages

    if memcg == 0 or nr_pages <= 0:
        return 0.0
    m = k.memcgs[memcg]
    spent = 0.0
    in_retry = False
    nr_retries = MAX_RECLAIM_RETRIES
    while True:
        # reclaim_high(): for the memcg (and its ancestors: none below the root)
        nr_reclaimed = 0
        if k.memcgs.usage(memcg) > m.high:
            m.events["high"] += 1
            want = SWAP_CLUSTER_MAX if in_retry else nr_pages
            got, cost = try_to_free_mem_cgroup_pages(k, memcg, want, may_swap=True)
            nr_reclaimed += got
            spent += cost
        penalty = calculate_high_delay(k.memcgs.usage(memcg), m.high, nr_pages)
        penalty = min(penalty, MEMCG_MAX_HIGH_DELAY_JIFFIES)
        if penalty <= HZ // 100:
            return spent
        if nr_reclaimed or nr_retries > 0:
            if not nr_reclaimed:
                nr_retries -= 1
            in_retry = True
            continue
        m.add_stat("high_delay_jiffies", penalty)
        return spent + penalty / HZ
