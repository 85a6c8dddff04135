"""The pending hinting-fault queue (numa_balancing.HintFaultQueue) and its handler: faults are
taken in time order merged over the change_prot_numa batches (runs), every fault due by the
step's end is taken and none later, and the arena keeps every pending fault when compacted."""

from __future__ import annotations

import math

import numpy as np
from conftest import make, sim
from test_rules import fill_to, region

from reclaimsim.kernel import mem_map as mm
from reclaimsim.kernel import numa_balancing as nb
from reclaimsim.kernel.constants import WMARK_HIGH
from reclaimsim.kernel.numa_balancing import change_prot_numa, handle_hint_faults
from reclaimsim.kernel.page_alloc import GFP_HIGHUSER_MOVABLE, alloc_pages
from reclaimsim.kernel.state import Kernel
from reclaimsim.scenario import WorkloadSpec
from reclaimsim.workloads import Process


def _task_on_node1(k: Kernel, pages: int, rate: float) -> Process:
    """A task whose ``pages`` hot pages sit on the slow node 1, each touched at ``rate``/s."""
    p = Process(k, "W", 1, WorkloadSpec(hot=pages * 4096, access="busy"), {})
    r = p.hot_region
    assert r is not None
    assert alloc_pages(k, pages, GFP_HIGHUSER_MOVABLE, 1, [1], r).got == pages
    p.touch_order.clear()
    p._become_ready(k)
    k.regions.rate[r] = rate
    return p


def _pending(k: Kernel) -> list[tuple[float, int]]:
    q = k.numa_faults
    return sorted(
        (float(q.t[i]), int(q.pfn[i])) for r in q.runs for i in range(int(r[1]), int(r[2]))
    )


def test_faults_due_by_the_step_end_are_taken_in_time_order_over_runs():
    """do_numa_page() runs at the task's first touch after change_prot_numa: with three scans
    (three runs) at different times, a step ending at ``until`` takes exactly the faults whose
    first touch is due by then, and leaves the others queued with the earliest one as the
    queue's next due time."""
    k = sim(make()).k
    p = _task_on_node1(k, 600, rate=2.0)
    r = p.hot_region
    for lo in (0, 200, 400):  # three change_prot_numa batches, 0.1 s apart
        change_prot_numa(k, p, r, lo, lo + 200)
        k.now += 0.1
    q = k.numa_faults
    assert len(q.runs) == 3 and len(q) == 600
    times = np.array([t for t, _ in _pending(k)])
    until = float(np.median(times))
    assert q.next_due == times.min()
    handle_hint_faults(k, until, {r: p})
    taken = int((times <= until).sum())
    assert k.vmstat.c["numa_hint_faults"] == taken
    left = _pending(k)
    assert len(left) == 600 - taken and min(t for t, _ in left) > until
    assert q.next_due == min(t for t, _ in left)
    # nothing due before the next head: the step is a no-op
    handle_hint_faults(k, math.nextafter(q.next_due, 0.0), {r: p})
    assert k.vmstat.c["numa_hint_faults"] == taken
    handle_hint_faults(k, math.inf, {r: p})
    assert k.vmstat.c["numa_hint_faults"] == 600 and len(q) == 0 and q.next_due == math.inf


def test_compaction_keeps_every_pending_fault_in_place():
    """Compacting the arena moves the live runs to its front without reallocating it while
    they fill at most half of it; each run keeps its faults in order."""
    k = sim(make()).k
    p = _task_on_node1(k, 600, rate=2.0)
    r = p.hot_region
    q = k.numa_faults
    change_prot_numa(k, p, r, 0, 300)
    k.now += 0.1
    change_prot_numa(k, p, r, 300, 600)
    q.runs[0, 1] = q.runs[0, 2]  # the first run was consumed
    before = [(q.t[a:b].copy(), q.pfn[a:b].copy(), q.gvp[a:b].copy()) for _, a, b, _ in q.runs[1:]]
    arena = q.t
    q._compact(100)
    assert q.t is arena  # 300 live + 100 <= 1024 / 2: compacted in place
    assert len(q.runs) == 1 and q.runs[0, 1] == 0 and q.n == 300
    (t0, p0, v0) = before[0]
    a, b = int(q.runs[0, 1]), int(q.runs[0, 2])
    assert (q.t[a:b] == t0).all() and (q.pfn[a:b] == p0).all() and (q.gvp[a:b] == v0).all()
    q._compact(600)  # 300 + 600 > 512: grows
    assert q.t is not arena and q.t.size == 2048
    a, b = int(q.runs[0, 1]), int(q.runs[0, 2])
    assert (q.t[a:b] == t0).all() and (q.pfn[a:b] == p0).all()


def test_change_prot_numa_protects_only_slow_tier_pages():
    """change_pte_range() in tiering mode skips folios on a top-tier node: of a VMA with
    pages on both nodes, only those on the CPU-less lower-tier node become PROT_NONE."""
    k = sim(make()).k
    p = Process(k, "W", 1, WorkloadSpec(hot=900 * 4096, access="busy"), {})
    r = p.hot_region
    assert r is not None
    for nid in (0, 1, 0, 1, 0, 1):  # address order alternates between the nodes
        assert alloc_pages(k, 150, GFP_HIGHUSER_MOVABLE, nid, [nid], r).got == 150
    p.touch_order.clear()
    p._become_ready(k)
    k.regions.rate[r] = 1.0
    assert change_prot_numa(k, p, r, 0, 900) == 450
    v2p = k.regions.v2p[int(k.regions.vspan[r, 0]) :][:900]
    prot = (k.mem.flags[v2p] & mm.F_PROTNONE) != 0
    on_slow = k.node_of_pfn(v2p) == 1
    assert (prot == on_slow).all() and on_slow.sum() == 450
    assert sorted(k.numa_faults.pending_pfns(r).tolist()) == sorted(v2p[on_slow].tolist())


def _promote_over_many_runs(tree_min_runs: int, monkeypatch) -> Kernel:
    monkeypatch.setattr(nb, "MERGE_TREE_MIN_RUNS", tree_min_runs)
    k = sim(make()).k
    fill_to(k, region(k, "cold"), 0, WMARK_HIGH, below=-300)  # room for ~300 promotions
    p = _task_on_node1(k, 2400, rate=5.0)
    r = p.hot_region
    for lo in range(0, 2400, 100):  # 24 runs
        change_prot_numa(k, p, r, lo, lo + 100)
        k.now += 0.05
    handle_hint_faults(k, k.now + 0.5, {r: p})
    handle_hint_faults(k, math.inf, {r: p})
    return k


def test_merge_order_is_the_same_with_a_scan_or_a_tree_of_run_heads(monkeypatch):
    """The faults are taken in (first-touch time, PFN, run) order whichever way the handler
    merges the runs' heads: with the promotion gate closing part-way (free <= HIGH + 1), which
    pages got promoted, the access stamps and the task's fault clock depend on that order."""
    a = _promote_over_many_runs(1000, monkeypatch)  # scan of the heads
    b = _promote_over_many_runs(0, monkeypatch)  # winner tree
    assert 0 < a.vmstat.c["pgpromote_success"] < 2400
    assert a.vmstat.c == b.vmstat.c
    assert (a.mem.gvp == b.mem.gvp).all() and (a.mem.stamp == b.mem.stamp).all()
    assert (a.mem.flags == b.mem.flags).all()
