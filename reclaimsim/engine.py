"""The clock: runs a scenario's script and workloads against one kernel policy.

Each step of ``tick_s`` (default 10 ms): the script advances (starts, kills, sysctl writes,
phase marks), running tasks fault in memory and are charged CPU time (which paces the NUMA
scanner), due NUMA hinting faults are handled in time order, then every kswapd runs up to the
end of the step, one ``balance_pgdat`` priority pass at a time. Samples of /proc/vmstat and
/proc/zoneinfo are taken every ``output.sample_interval_s``. Where this batching changes an
interleaving is listed in docs/fidelity.md.
"""

from __future__ import annotations

import fnmatch
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from .kernel.constants import MAX_RECLAIM_RETRIES, ZONE_NAMES
from .kernel.hugetlb import set_max_huge_pages
from .kernel.mem_map import base_pages
from .kernel.numa_balancing import handle_hint_faults, task_tick_numa
from .kernel.page_alloc import kernel_alloc_churn
from .kernel.state import Kernel
from .policies import Policy, get_policy
from .scenario import Scenario, StepSpec
from .units import eval_expr
from .workloads import Process

Wait = Callable[[], bool]


@dataclass
class Phase:
    name: str
    start: float
    end: float | None = None
    snap_start: dict[str, Any] = field(default_factory=dict)
    snap_end: dict[str, Any] = field(default_factory=dict)


class ScriptEnv(Mapping[str, Any]):
    """The names a script expression reads: ``t``, ``i``, ``hugepages_total`` and per node
    ``node<N>.free``, ``.free_mb``, ``.managed``, ``.unreclaimable``, ``.hugepages_total``.
    Each value is computed when the expression reads it (a ``wait_until`` or ``repeat``
    ``until`` is evaluated every step, and reads one or two of them)."""

    _NODE_KEYS = ("free", "free_mb", "managed", "unreclaimable", "hugepages_total")

    def __init__(self, k: Kernel, i: int) -> None:
        self.k = k
        self.i = i

    def _lookup(self, key: object) -> tuple[str, Any] | None:
        """(name, pgdat) for a valid name, else None."""
        if key in ("t", "i", "hugepages_total"):
            return key, None  # type: ignore[return-value]
        if not isinstance(key, str) or not key.startswith("node"):
            return None
        node, _, name = key.partition(".")
        if name not in self._NODE_KEYS:
            return None
        for pg in self.k.pgdats:
            if node == f"node{pg.node_id}":
                return name, pg
        return None

    def __getitem__(self, key: str) -> Any:
        found = self._lookup(key)
        if found is None:
            raise KeyError(key)
        name, pg = found
        k = self.k
        if pg is None:
            return k.now if name == "t" else self.i if name == "i" else k.hugetlb.nr_huge_pages
        if name == "free":
            return pg.free_pages() * 4096
        if name == "free_mb":
            return pg.free_pages() * 4096 / 2**20
        if name == "managed":
            return pg.managed_pages() * 4096
        if name == "unreclaimable":
            return int(pg.kswapd_failures >= MAX_RECLAIM_RETRIES)
        return k.hugetlb.nr_huge_pages_node[pg.node_id]

    def __contains__(self, key: object) -> bool:
        return self._lookup(key) is not None

    def __iter__(self) -> Iterator[str]:
        yield from ("t", "i", "hugepages_total")
        for pg in self.k.pgdats:
            for name in self._NODE_KEYS:
                yield f"node{pg.node_id}.{name}"

    def __len__(self) -> int:
        return 3 + len(self._NODE_KEYS) * len(self.k.pgdats)


class Simulation:
    """One run: a scenario under one policy with one seed."""

    def __init__(self, scenario: Scenario, policy: Policy | str, seed: int | None = None) -> None:
        self.scenario = scenario
        self.policy = get_policy(policy) if isinstance(policy, str) else policy
        self.seed = scenario.seed if seed is None else seed
        with base_pages():  # see mem_map.base_pages: the page state is GiB-sized
            self.k = Kernel(scenario, self.policy, self.seed)
        self.k.oom_candidates = lambda: [p for p in self.procs if p.alive]
        self.k.oom_kill = self._oom_kill
        self.procs: list[Process] = []
        self.by_name: dict[str, Process] = {}
        self.next_pid = 100
        self.events: list[dict[str, Any]] = []
        self.phases: list[Phase] = []
        self.samples: dict[str, list[dict[str, Any]]] = {
            "vmstat": [],
            "zoneinfo": [],
            "nodes": [],
            "placement": [],
        }
        self.script = self._run_steps(scenario.script, {})
        self.wait: Wait | None = None
        self.script_done = False
        self.next_sample = 0.0
        self.next_periodic = self.policy.period_s or 0.0
        self.wall_seconds = 0.0
        self.task_of_region: dict[int, Process] = {}
        self.ncpus = sum(pg.nr_cpus for pg in self.k.pgdats)
        self.kernel_allocs_per_s = scenario.machine.kernel_allocs_per_s
        self._kalloc_due = 0.0
        self._runnable_key: tuple[int, int] = (-1, -1)
        self._runnable: list[Process] = []

    # -- expression environment --------------------------------------------------------------
    def env(self, i: int = 0) -> ScriptEnv:
        return ScriptEnv(self.k, i)

    # -- the script as a coroutine -----------------------------------------------------------
    def _run_steps(self, steps: list[StepSpec], ctx: dict[str, Any]) -> Iterator[Wait]:
        for s in steps:
            until = ctx.get("until")
            if until is not None and until():
                return
            yield from self._run_step(s, ctx)

    def _run_step(self, s: StepSpec, ctx: dict[str, Any]) -> Iterator[Wait]:
        k = self.k
        i = ctx.get("i", 0)
        until: Wait | None = ctx.get("until")

        def with_until(w: Wait) -> Wait:
            return (lambda: w() or until()) if until is not None else w

        if s.phase is not None:
            self._close_phase()
            ph = Phase(s.phase, k.now)
            ph.snap_start = self._snapshot()
            self.phases.append(ph)
        elif s.end_phase:
            self._close_phase()
        elif s.event is not None:
            self._event(s.event.format(i=i))
        elif s.start is not None:
            name = (s.name or s.start).format(i=i)
            spec = self.scenario.workloads[s.start]
            p = Process(k, name, self.next_pid, spec, self.env(i))
            self.next_pid += 1
            self.procs.append(p)
            self.by_name[name] = p
            for r in p.regions:
                self.task_of_region[r] = p
            self._event(f"START {name}")
        elif s.wait_ready is not None:
            name = s.wait_ready.format(i=i)
            p = self.by_name.get(name)
            if p is not None:
                deadline = k.now + (s.timeout_s or float("inf"))
                yield with_until(lambda: p.state != "touching" or k.now >= deadline)
                if p.ready_t is not None:
                    self._event(f"READY {name}")
        elif s.sleep_s is not None:
            end = k.now + s.sleep_s
            yield with_until(lambda: k.now >= end - 1e-9)
        elif s.kill is not None:
            pats = [s.kill] if isinstance(s.kill, str) else s.kill
            for p in self.procs:
                if p.alive and any(fnmatch.fnmatchcase(p.name, pat.format(i=i)) for pat in pats):
                    p.kill(k)
        elif s.sysctl is not None:
            self._sysctl(s.sysctl)
        elif s.steal is not None:
            from .kernel.page_alloc import steal_pageblocks

            steal_pageblocks(k, s.steal.node, s.steal.pageblocks)
            self._event(f"STEAL node{s.steal.node} x{s.steal.pageblocks}")
        elif s.wait_until is not None:
            expr = s.wait_until
            deadline = k.now + (s.timeout_s or float("inf"))
            yield with_until(lambda: bool(eval_expr(expr, self.env(i))) or k.now >= deadline)
        elif s.repeat is not None:
            t0 = k.now
            max_s = s.max_s or float("inf")
            expr = s.until

            def stop() -> bool:
                if k.now - t0 >= max_s:
                    return True
                return bool(eval_expr(expr, self.env(j["i"]))) if expr else False

            j = {"i": 0}
            while not stop():
                inner = {"i": j["i"], "until": stop}
                yield from self._run_steps(s.repeat, inner)
                j["i"] += 1

    def _sysctl(self, values: dict[str, Any]) -> None:
        for key, v in values.items():
            if not hasattr(self.k.sysctl, key):
                raise ValueError(f"script: sysctl {key!r} is unknown")
            old = getattr(self.k.sysctl, key)
            if key == "nr_hugepages":
                # the write resizes the pool; reading it back shows what was reached
                v = set_max_huge_pages(self.k, self.k.hugetlb, int(v))
            setattr(self.k.sysctl, key, v)
            if key == "demotion_enabled":
                self.policy.demotion_enabled_changed(self.k, bool(old), bool(v))
            self._event(f"SYSCTL {key}={v}")

    def _kernel_allocs(self, dt: float) -> None:
        """Short-lived kernel allocations on each CPU node (``kernel_alloc_churn``). Only the
        first in a step can change anything (a wake-up is idempotent until kswapd runs, and
        kswapds run after the workloads in the step), so one check per step stands for all."""
        self._kalloc_due += self.kernel_allocs_per_s * dt
        if self._kalloc_due < 1.0:
            return
        self._kalloc_due -= int(self._kalloc_due)
        for pg in self.k.pgdats:
            if pg.nr_cpus > 0:
                kernel_alloc_churn(self.k, pg.node_id)

    def _event(self, name: str) -> None:
        self.events.append({"t": round(self.k.now, 6), "name": name})
        self.k.trace.emit("reclaimsim_event", -1, name)

    def _close_phase(self) -> None:
        if self.phases and self.phases[-1].end is None:
            ph = self.phases[-1]
            ph.end = self.k.now
            ph.snap_end = self._snapshot()

    def _oom_kill(self, task: Process) -> None:
        self._event(f"OOM_KILL {task.name}")
        task.kill(self.k)

    # -- state snapshots -------------------------------------------------------------------
    def _snapshot(self) -> dict[str, Any]:
        k = self.k
        return {
            "t": k.now,
            "vmstat": k.vmstat.snapshot(k),
            "kswapd_cpu_s": [pg.kswapd.cpu_s for pg in k.pgdats],
            "unreclaimable": [int(pg.kswapd_failures >= MAX_RECLAIM_RETRIES) for pg in k.pgdats],
            "free": [pg.free_pages() for pg in k.pgdats],
            "placement": {p.name: p.placement(k) for p in self.procs if p.alive},
        }

    def _sample(self) -> None:
        k = self.k
        t = round(k.now, 6)
        ph = self.phases[-1].name if self.phases and self.phases[-1].end is None else ""
        row = {"t": t, "phase": ph}
        row.update(k.vmstat.snapshot(k))
        self.samples["vmstat"].append(row)
        for pg in k.pgdats:
            unrecl = int(pg.kswapd_failures >= MAX_RECLAIM_RETRIES)
            for z in pg.populated_zones():
                lc = k.za.lru_count[z.idx]
                self.samples["zoneinfo"].append(
                    {
                        "t": t,
                        "phase": ph,
                        "node": pg.node_id,
                        "zone": ZONE_NAMES[z.zone_type],
                        "free": z.free,
                        "boost": z.boost,
                        "min": z.wmark(0),
                        "low": z.wmark(1),
                        "high": z.wmark(2),
                        "promo": z.wmark(3),
                        "managed": z.managed,
                        "node_unreclaimable": unrecl,
                        "kswapd_failures": pg.kswapd_failures,
                        "nr_zone_inactive_anon": int(lc[0]),
                        "nr_zone_active_anon": int(lc[1]),
                        "nr_zone_inactive_file": int(lc[2]),
                        "nr_zone_active_file": int(lc[3]),
                    }
                )
            ks = pg.kswapd
            self.samples["nodes"].append(
                {
                    "t": t,
                    "phase": ph,
                    "node": pg.node_id,
                    "free": pg.free_pages(),
                    "kswapd_state": ks.state,
                    "kswapd_cpu_s": ks.cpu_s,
                    "kswapd_runs": ks.runs,
                    "kswapd_failures": pg.kswapd_failures,
                    "HugePages_Total": k.hugetlb.nr_huge_pages_node[pg.node_id],
                    # what can_reclaim_anon_pages() looks at (metrics: reclaimable or not)
                    "swap_free_pages": k.swap.free_pages(),
                    "demotion_enabled": int(k.sysctl.demotion_enabled),
                    **{
                        key: pg.stat.get(key, 0)
                        for key in (
                            "pgpromote_success",
                            "pgpromote_candidate",
                            "pgdemote_kswapd",
                            "pgdemote_direct",
                            "pgsteal_kswapd",
                            "pgscan_kswapd",
                        )
                    },
                }
            )
        for p in self.procs:
            if not p.alive:
                continue
            for r in p.regions:
                for n in range(len(k.pgdats)):
                    self.samples["placement"].append(
                        {
                            "t": t,
                            "phase": ph,
                            "workload": p.name,
                            "region": k.regions.names[r],
                            "hot": bool(k.regions.hot[r]),
                            "node": n,
                            "pages": int(k.regions.cnt[r, n]),
                        }
                    )

    # -- the main loop ---------------------------------------------------------------------
    def advance_script(self) -> None:
        while not self.script_done:
            if self.wait is not None:
                if not self.wait():
                    return
                self.wait = None
            try:
                self.wait = next(self.script)
            except StopIteration:
                self.script_done = True
                self._close_phase()

    def runnable(self) -> list[Process]:
        """The tasks on a CPU this step, in start order. A task's runnability changes only
        when it starts, becomes ready or exits (each bumps ``k.task_state_seq``), so the list
        is rebuilt then and not every step."""
        key = (len(self.procs), self.k.task_state_seq)
        if key != self._runnable_key:
            self._runnable_key = key
            self._runnable = [p for p in self.procs if p.alive and p.runnable()]
        return self._runnable

    def run(self) -> Simulation:
        """Run the scenario to its end (or ``duration_s``)."""
        with base_pages():  # arrays grown during the run too (page tables, rings, queues)
            return self._run()

    def _run(self) -> Simulation:
        k = self.k
        sc = self.scenario
        dt = sc.tick_s
        duration_s = sc.duration_s
        interval_s = sc.output.sample_interval_s
        period_s = self.policy.period_s
        kswapds = [pg.kswapd for pg in k.pgdats]
        t0 = time.perf_counter()
        self._sample()
        self.next_sample = interval_s
        while k.now < duration_s:
            self.advance_script()
            if self.script_done:
                break
            if period_s and k.now >= self.next_periodic:
                self.policy.periodic(k)
                self.next_periodic += period_s
            t_end = k.now + dt
            runnable = self.runnable()
            if runnable:
                share = min(1.0, self.ncpus / len(runnable))
                cpu = dt * share
                for p in runnable:
                    if p.cpu_share != share:
                        p.set_cpu_share(k, share)
                    p.step(k, cpu)
                    # (a task may exit in its step, or be OOM-killed by another's)
                    if p.state == "running" and k.swap.used:
                        p.swap_in_faults(k, dt)
                    if p.state != "dead" and k.sysctl.numa_balancing:
                        task_tick_numa(k, p, cpu)
            if self.kernel_allocs_per_s:
                self._kernel_allocs(dt)
            # most steps have no hint fault due: the queue's lower bound of its earliest
            # fault says so without the call (handle_hint_faults' own first check)
            if k.sysctl.numa_balancing and k.numa_faults.next_due <= t_end:
                handle_hint_faults(k, t_end, self.task_of_region)
            for ks in kswapds:
                ks.advance(t_end)
            k.now = t_end
            if k.now + 1e-9 >= self.next_sample:
                self._sample()
                self.next_sample += interval_s
        self._close_phase()
        if not self.samples["vmstat"] or self.samples["vmstat"][-1]["t"] != round(k.now, 6):
            self._sample()
        self.wall_seconds = time.perf_counter() - t0
        return self
