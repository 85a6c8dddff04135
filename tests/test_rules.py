"""Kernel rules a naive simulator gets wrong (kernel-spec.md section 10), each in a minimal
machine: 64 MiB DRAM node0 with a CPU, 32 MiB CPU-less node1 in a lower tier, no swap."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import make, sim

from reclaimsim.kernel.constants import (
    MAX_RECLAIM_RETRIES,
    WMARK_HIGH,
    WMARK_LOW,
    WMARK_MIN,
    WMARK_PROMO,
    ZONE_MOVABLE,
    ZONE_NORMAL,
)
from reclaimsim.kernel.numa_balancing import change_prot_numa, handle_hint_faults
from reclaimsim.kernel.oom import oom_badness
from reclaimsim.kernel.page_alloc import (
    GFP_HIGHUSER_MOVABLE,
    alloc_pages,
    free_pages_zone,
    should_reclaim_retry,
    zonelist,
)
from reclaimsim.kernel.state import Kernel
from reclaimsim.kernel.vmscan import try_to_free_pages, wakeup_kswapd
from reclaimsim.kernel.watermarks import allow_direct_reclaim, pgdat_balanced
from reclaimsim.scenario import WorkloadSpec
from reclaimsim.workloads import Process


def region(k: Kernel, name: str, rate: float = 0.0, hot: bool = False) -> int:
    r = k.regions.add(name, hot)
    k.regions.rate[r] = rate
    return r


def fill(k: Kernel, r: int, nid: int, n: int) -> int:
    """Fault ``n`` pages of region ``r`` bound to node ``nid``."""
    return alloc_pages(k, n, GFP_HIGHUSER_MOVABLE, nid, [nid], r).got


def normal(k: Kernel, nid: int):
    z = k.pgdats[nid].zones[ZONE_NORMAL]
    assert z is not None
    return z


def events(k: Kernel, name: str, nid: int | None = None) -> list:
    return [e for e in k.trace.events if e[1] == name and (nid is None or f"nid={nid}" in e[3])]


def run_kswapd(k: Kernel, nid: int, seconds: float, step: float = 0.01) -> None:
    ks = k.pgdats[nid].kswapd
    end = k.now + seconds
    while k.now < end:
        k.now += step
        ks.advance(k.now)


def fill_to(k: Kernel, r: int, nid: int, mark: int, below: int = 1) -> None:
    """Fill node ``nid`` until its Normal zone is ``below`` pages under ``mark``."""
    z = normal(k, nid)
    n = z.free - (z.wmark(mark) - below)
    # the allocator itself stops at MIN; go below LOW through the slow path
    got = fill(k, r, nid, n)
    assert got == n


def test_fast_path_spills_to_the_next_node_without_waking_kswapd():
    """get_page_from_freelist() skips a zone below LOW (zone_reclaim_mode=0) and takes the next
    node's pages; kswapds are woken only when every zonelist zone fails LOW (slow path)."""
    k = sim(make()).k
    r = region(k, "a")
    z0, z1 = normal(k, 0), normal(k, 1)
    room0 = z0.free - z0.wmark(WMARK_LOW)
    res = alloc_pages(k, room0 + 1000, GFP_HIGHUSER_MOVABLE, 0, None, r)
    assert res.got == room0 + 1000
    assert k.regions.cnt[r, 0] == room0 and k.regions.cnt[r, 1] == 1000
    assert z0.free == z0.wmark(WMARK_LOW)  # node0 sits at LOW ...
    assert not events(k, "mm_vmscan_wakeup_kswapd")  # ... and no kswapd was woken
    assert k.vmstat.c["numa_miss"] == 1000
    # once node1 fails LOW too, the slow path wakes the kswapd of every zonelist node
    room1 = z1.free - z1.wmark(WMARK_LOW)
    alloc_pages(k, room1 + 10, GFP_HIGHUSER_MOVABLE, 0, None, r)
    assert events(k, "mm_vmscan_wakeup_kswapd", 0) and events(k, "mm_vmscan_wakeup_kswapd", 1)


def test_kswapd_failures_count_whole_failed_runs_and_hopeless_at_16():
    """balance_pgdat() adds 1 to kswapd_failures per whole run (priorities 12..1) that
    reclaimed nothing; at MAX_RECLAIM_RETRIES the node is hopeless: kswapd sleeps and
    wakeup_kswapd() no longer wakes it. Every failed run that cannot sleep counts
    kswapd_high_wmark_hit_quickly."""
    k = sim(make()).k
    hot = region(k, "hot", math.inf, True)
    fill_to(k, hot, 1, WMARK_MIN, below=-1)  # node1 at MIN: demotion fails
    fill_to(k, hot, 0, WMARK_LOW, below=-1)  # node0 below PROMO with hot anon only
    pg0 = k.pgdats[0]
    wakeup_kswapd(k, normal(k, 0), GFP_HIGHUSER_MOVABLE, 0, ZONE_MOVABLE)
    assert pg0.kswapd.state == "run"
    seen = []
    for _ in range(4000):
        run_kswapd(k, 0, 0.01)
        seen.append(pg0.kswapd_failures)
        if pg0.kswapd.state == "sleep":
            break
    assert pg0.kswapd.state == "sleep"
    assert pg0.kswapd_failures == MAX_RECLAIM_RETRIES
    assert pg0.kswapd.runs == MAX_RECLAIM_RETRIES  # one failure per balance_pgdat run
    assert k.vmstat.c["kswapd_high_wmark_hit_quickly"] == MAX_RECLAIM_RETRIES - 1
    assert k.vmstat.c["pgsteal_kswapd"] == 0
    n_wakes = len(events(k, "mm_vmscan_wakeup_kswapd", 0))
    wakeup_kswapd(k, normal(k, 0), GFP_HIGHUSER_MOVABLE, 0, ZONE_MOVABLE)
    assert pg0.kswapd.state == "sleep"
    assert len(events(k, "mm_vmscan_wakeup_kswapd", 0)) == n_wakes


def test_a_balanced_run_never_counts_as_failure():
    """balance_pgdat() that finds the node balanced exits at 'out' without kswapd_failures++."""
    from reclaimsim.kernel.vmscan import BalancePgdat

    k = sim(make()).k
    pg0 = k.pgdats[0]
    pg0.kswapd_failures = 5
    run = BalancePgdat(k, pg0, 0, ZONE_MOVABLE)
    run.step()
    assert run.done and pg0.kswapd_failures == 5


def test_hopeless_blocks_only_wakeups_direct_reclaim_revives():
    """A hopeless node: wakeup_kswapd() returns early, allow_direct_reclaim() is true (no
    throttling), and direct reclaim still runs; its progress in shrink_node() resets
    kswapd_failures, after which kswapd can be woken again."""
    k = sim(make()).k
    cold = region(k, "cold")
    pg0 = k.pgdats[0]
    pg0.kswapd_failures = MAX_RECLAIM_RETRIES
    fill_to(k, cold, 0, WMARK_MIN, below=-1)  # the slow path's wakeup does nothing now
    wakeup_kswapd(k, normal(k, 0), GFP_HIGHUSER_MOVABLE, 0, ZONE_MOVABLE)
    assert pg0.kswapd.state == "sleep"
    assert allow_direct_reclaim(pg0)
    k.now = 1.0  # the fault-time accessed bits are cleared by a first look, then reclaimed
    zl = zonelist(k, 0, GFP_HIGHUSER_MOVABLE, [0])
    reclaimed, _ = try_to_free_pages(k, zl, 0, GFP_HIGHUSER_MOVABLE)
    assert reclaimed >= 32
    assert k.vmstat.c["pgdemote_direct"] == reclaimed
    assert k.vmstat.c["allocstall_movable"] == 1  # user anon stalls count as _movable
    assert pg0.kswapd_failures == 0
    wakeup_kswapd(k, normal(k, 0), GFP_HIGHUSER_MOVABLE, 0, ZONE_MOVABLE)
    assert pg0.kswapd.state == "run"


def test_demotion_counts_as_reclaim_and_failed_demotion_activates():
    """Demoted pages count as reclaimed (pgsteal includes pgdemote), so a node with a target
    that has room never fails; once the target is at MIN, demotion fails (pgmigrate_fail; there
    is no pgdemote_fail) and anon without swap is activated."""
    k = sim(make()).k
    cold = region(k, "cold")
    fill_to(k, cold, 0, WMARK_LOW, below=50)
    pg0 = k.pgdats[0]
    wakeup_kswapd(k, normal(k, 0), GFP_HIGHUSER_MOVABLE, 0, ZONE_MOVABLE)
    run_kswapd(k, 0, 5.0)
    assert pg0.kswapd.state == "sleep"
    assert k.vmstat.c["pgdemote_kswapd"] > 0
    assert k.vmstat.c["pgsteal_kswapd"] == k.vmstat.c["pgdemote_kswapd"]
    assert pg0.kswapd_failures == 0
    assert normal(k, 0).free >= normal(k, 0).wmark(WMARK_PROMO)
    # now fill the target to MIN and push node0 down again
    fill_to(k, region(k, "x"), 1, WMARK_MIN, below=-1)
    act0 = k.vmstat.c["pgactivate"]
    fill_to(k, cold, 0, WMARK_LOW, below=50)
    wakeup_kswapd(k, normal(k, 0), GFP_HIGHUSER_MOVABLE, 0, ZONE_MOVABLE)
    run_kswapd(k, 0, 2.0)
    assert k.vmstat.c["pgmigrate_fail"] > 0
    assert k.vmstat.c["pgactivate"] > act0
    assert "pgdemote_fail" not in k.vmstat.c


@pytest.mark.parametrize("mode, mark", [(2, WMARK_PROMO), (0, WMARK_HIGH)])
def test_kswapd_balances_to_promo_in_tiering_mode(mode, mark):
    """pgdat_balanced() uses the PROMO mark when NUMA_BALANCING_MEMORY_TIERING is set, HIGH
    otherwise (a global test, so the CXL node aims at PROMO too)."""
    k = sim(
        make(
            {"sysctl.numa_balancing": mode},
            machine={
                "nodes": [
                    {"id": 0, "cpus": 1, "size": "1GiB"},
                    {"id": 1, "cpus": 0, "size": "512MiB", "memory": "kmem"},
                ]
            },
        )
    ).k
    cold = region(k, "cold")
    fill_to(k, cold, 0, WMARK_LOW, below=10)
    wakeup_kswapd(k, normal(k, 0), GFP_HIGHUSER_MOVABLE, 0, ZONE_MOVABLE)
    run_kswapd(k, 0, 20.0)
    z = normal(k, 0)
    assert k.pgdats[0].kswapd.state == "sleep"
    assert z.free >= z.wmark(mark)
    if mode == 0:
        assert z.free < z.wmark(WMARK_PROMO)
    assert pgdat_balanced(k.pgdats[0], 0, ZONE_MOVABLE, mode)


def _hot_task_on_node1(k: Kernel, pages: int) -> Process:
    p = Process(k, "W", 1, WorkloadSpec(hot=pages * 4096, access="busy"), {})
    r = p.hot_region
    assert r is not None
    assert fill(k, r, 1, pages) == pages
    p.touch_order.clear()
    p._become_ready(k)
    k.regions.rate[r] = math.inf
    return p


def test_promotion_never_reclaims_it_wakes_kswapd_and_gives_up():
    """migrate_misplaced_folio_prepare(): if no node0 zone has free > HIGH + nr, wake kswapd0
    (gfp 0, ZONE_MOVABLE) and fail with -EAGAIN; the promotion itself never reclaims."""
    k = sim(make()).k
    fill_to(k, region(k, "cold"), 0, WMARK_HIGH, below=0)
    p = _hot_task_on_node1(k, 200)
    change_prot_numa(k, p, p.hot_region, 0, 200)
    assert k.vmstat.c["numa_pte_updates"] == 200
    handle_hint_faults(k, k.now + 1.0, {p.hot_region: p})
    assert k.vmstat.c["numa_hint_faults"] == 200
    assert k.vmstat.c.get("pgpromote_success", 0) == 0
    assert k.vmstat.c.get("pgscan_direct", 0) == 0 and k.vmstat.c.get("allocstall_movable", 0) == 0
    assert events(k, "mm_vmscan_wakeup_kswapd", 0)
    assert k.pgdats[0].kswapd.state == "run"


def test_promotion_proceeds_above_high_plus_nr():
    """With node0 free > HIGH + 1, hot faults promote (pgpromote_success on the destination)."""
    k = sim(make()).k
    fill_to(k, region(k, "cold"), 0, WMARK_HIGH, below=-100)
    p = _hot_task_on_node1(k, 200)
    change_prot_numa(k, p, p.hot_region, 0, 200)
    handle_hint_faults(k, k.now + 1.0, {p.hot_region: p})
    promoted = k.vmstat.c["pgpromote_success"]
    assert 90 <= promoted <= 100  # until free is no longer > HIGH + 1
    assert k.pgdats[0].stat["pgpromote_success"] == promoted
    assert k.regions.cnt[p.hot_region, 0] == promoted


def test_promotions_allocate_through_the_pcp_list():
    """rmqueue_pcplist(): a promoted folio's page comes off the faulting CPU's per-cpu list;
    an empty list is refilled from the buddy (rmqueue_bulk, no watermark check) with
    nr_pcp_alloc() pages: batch << alloc_factor, alloc_factor growing by one per refill, at
    most high - count - batch. Those pages leave NR_FREE_PAGES at once, and the promotion gate
    (migrate_balanced_pgdat) reads NR_FREE_PAGES only: promotions stop once the buddy is at
    HIGH + 1 even while the list still holds pages."""
    k = sim(make()).k
    z = normal(k, 0)
    batch, high_min, _ = (int(x) for x in k.za.pcp_cfg[z.idx])
    assert high_min >= 4 * batch
    fill_to(k, region(k, "cold"), 0, WMARK_HIGH, below=-100)
    free0 = z.free
    p = _hot_task_on_node1(k, 2000)
    change_prot_numa(k, p, p.hot_region, 0, 2000)
    handle_hint_faults(k, k.now + 1.0, {p.hot_region: p})
    promoted = k.vmstat.c["pgpromote_success"]
    held = int(k.za.pcp[z.idx, 0])
    assert promoted > 0
    assert z.free + held + promoted == free0  # every promoted page came through the list
    assert z.free <= z.wmark(WMARK_HIGH) + 1 < z.free + held  # gate closed, list not empty
    assert k.za.pcp[z.idx, 2] >= 2  # refills without frees in between grew the batch


def test_promotions_slow_the_scanner_failed_promotions_do_not():
    """task_numa_fault(): in tiering mode a slow-tier fault returns early unless it promoted
    (do_numa_page passes the top-tier target node). A promoted fault is private (last_cpupid
    -1) and remote (decided on the slow node), so task_numa_placement, once per new
    mm->numa_scan_seq, takes update_task_scan_period's "local + shared == 0" branch: the
    period doubles (capped at task_scan_max) and mm->numa_next_scan = now + period."""
    # node0 at HIGH: every promotion fails (-EAGAIN), the period must not move
    k = sim(make()).k
    fill_to(k, region(k, "cold"), 0, WMARK_HIGH, below=0)
    p = _hot_task_on_node1(k, 200)
    p.numa.numa_scan_seq = 1  # one full pass done
    change_prot_numa(k, p, p.hot_region, 0, 200)
    handle_hint_faults(k, k.now + 1.0, {p.hot_region: p})
    assert k.vmstat.c.get("pgpromote_success", 0) == 0
    assert p.numa.numa_scan_period == 1000 and p.numa.task_scan_seq == 0
    # node0 with room: promotions succeed, the first one runs the placement
    k = sim(make()).k
    fill_to(k, region(k, "cold"), 0, WMARK_HIGH, below=-100)
    p = _hot_task_on_node1(k, 200)
    p.numa.numa_scan_seq = 1
    change_prot_numa(k, p, p.hot_region, 0, 200)
    handle_hint_faults(k, k.now + 1.0, {p.hot_region: p})
    promoted = k.vmstat.c["pgpromote_success"]
    assert promoted > 0
    assert p.numa.numa_scan_period == 2000
    assert p.numa.task_scan_seq == 1 and p.numa.faults_membuf == promoted
    assert k.now + 2.0 <= p.numa.numa_next_scan <= p.fault_clock + 2.0  # first promotion + 2 s
    # the same scan sequence: no second placement, the period stays
    handle_hint_faults(k, k.now + 1.0, {p.hot_region: p})
    assert p.numa.numa_scan_period == 2000
    # doubling stops at task_scan_max: period_max / windows (1 window here) = 60 s
    from reclaimsim.kernel.numa_balancing import task_numa_fault_promoted

    for seq in range(2, 12):
        p.numa.numa_scan_seq = seq
        task_numa_fault_promoted(k, p, k.now + seq * 10.0, 1)
    assert p.numa.numa_scan_period == 60000


def test_candidates_counted_before_rate_limit_not_on_free_space_path():
    """pgpromote_candidate counts hot faults before the rate-limit decision (so candidates >
    successes when limited); the free-space-enough path skips hotness and the count (v6.18
    counts it as pgpromote_candidate_nrl)."""
    sc = make({"sysctl.numa_balancing_promote_rate_limit_MBps": 1})  # 256 pages/s
    k = sim(sc).k
    fill_to(k, region(k, "cold"), 0, WMARK_HIGH, below=-5000)
    p = _hot_task_on_node1(k, 1000)
    change_prot_numa(k, p, p.hot_region, 0, 1000)
    handle_hint_faults(k, k.now + 1.0, {p.hot_region: p})
    assert k.vmstat.c["pgpromote_candidate"] == 1000
    # limited once candidates in the window reach the limit: 255 pass, the 256th is limited
    assert k.vmstat.c["pgpromote_success"] == 255
    # node0 with > PROMO + max(1 GiB, node/16) free has "free space enough": no hotness test,
    # no candidate count
    big = make(
        machine={
            "nodes": [
                {
                    "id": 0,
                    "cpus": 1,
                    "size": "2GiB",
                    "hmat": {"latency_ns": 100, "bandwidth_MBps": 20480},
                },
                {
                    "id": 1,
                    "cpus": 0,
                    "size": "64MiB",
                    "hmat": {"latency_ns": 300, "bandwidth_MBps": 5120},
                },
            ]
        }
    )
    for policy, nrl in (("v6.12", 0), ("v6.18", 300)):
        k2 = sim(big, policy).k
        p2 = _hot_task_on_node1(k2, 300)
        change_prot_numa(k2, p2, p2.hot_region, 0, 300)
        handle_hint_faults(k2, k2.now + 1.0, {p2.hot_region: p2})
        assert k2.vmstat.c["pgpromote_success"] == 300
        assert k2.vmstat.c.get("pgpromote_candidate", 0) == 0
        assert k2.vmstat.c.get("pgpromote_candidate_nrl", 0) == nrl


def test_should_reclaim_retry_counts_anon_while_a_demotion_target_exists():
    """zone_reclaimable_pages() counts anon when swap is free or the node can demote, even if
    the target is full, so should_reclaim_retry() keeps retrying on node0; not on node1."""
    k = sim(make()).k
    r = region(k, "a")
    fill_to(k, r, 1, WMARK_MIN, below=0)
    fill_to(k, r, 0, WMARK_MIN, below=0)
    zl0 = zonelist(k, 0, GFP_HIGHUSER_MOVABLE, [0])
    zl1 = zonelist(k, 1, GFP_HIGHUSER_MOVABLE, [1])
    assert should_reclaim_retry(k, zl0, GFP_HIGHUSER_MOVABLE, False, 0)
    assert not should_reclaim_retry(k, zl1, GFP_HIGHUSER_MOVABLE, False, 0)
    assert not should_reclaim_retry(k, zl0, GFP_HIGHUSER_MOVABLE, False, MAX_RECLAIM_RETRIES)
    k.sysctl.demotion_enabled = False
    assert not should_reclaim_retry(k, zl0, GFP_HIGHUSER_MOVABLE, False, 0)


def test_oom_badness_is_global_rss_plus_adj():
    """oom_badness() = rss + swapents + pgtables + adj * totalpages / 1000; -1000 is never
    chosen."""
    assert oom_badness(1000, 0, 2, 0, 100000) == 1002
    assert oom_badness(1000, 0, 2, 500, 100000) == 1002 + 50000
    assert oom_badness(10**6, 0, 2, -1000, 100000) is None


def test_oom_kills_the_biggest_task_when_both_nodes_are_full():
    """OOM fires only when the whole zonelist fails MIN after reclaim retries, and picks the
    task with the highest badness (the hog with oom_score_adj 500)."""
    sc = make(
        workloads={"big": {"hot": "50MiB", "oom_score_adj": 500}, "small": {"hot": "50MiB"}},
        script=[
            {"start": "big"},
            {"wait_ready": "big", "timeout_s": 5},
            {"start": "small"},
            {"wait_ready": "small", "timeout_s": 5},
            {"sleep_s": 1},
        ],
        duration_s=20,
    )
    s = sim(sc).run()
    names = [e["name"] for e in s.events]
    assert "OOM_KILL big" in names
    assert s.k.vmstat.c["oom_kill"] >= 1
    assert not s.by_name["big"].alive


def test_watermarks_include_the_boost():
    """wmark_pages() adds watermark_boost to every mark, MIN too."""
    k = sim(make()).k
    z = normal(k, 0)
    before = [z.wmark(i) for i in range(4)]
    z.za.boost[z.idx] = 512
    assert [z.wmark(i) for i in range(4)] == [b + 512 for b in before]


def test_v618_pcp_reset_never_fires_for_the_last_node():
    """Chanwon Park's reset requires next_memory_node(nid) < MAX_NUMNODES: a higher-numbered
    memory node. Freeing lifts both nodes above HIGH; only node0 is revived."""
    k = sim(make(), "v6.18").k
    for nid in (0, 1):
        pg = k.pgdats[nid]
        pg.kswapd_failures = MAX_RECLAIM_RETRIES
        z = normal(k, nid)
        k.za.free[z.idx] = z.wmark(WMARK_LOW)
        k.za.below_high[z.idx] = True
        free_pages_zone(k, z, z.wmark(WMARK_HIGH))
        assert not k.za.below_high[z.idx]
    assert k.pgdats[0].kswapd_failures == 0
    assert k.pgdats[1].kswapd_failures == MAX_RECLAIM_RETRIES


def test_v612_free_path_does_not_reset():
    """Before v6.18 the free path only clears ZONE_BELOW_HIGH; kswapd_failures stays."""
    k = sim(make(), "v6.12").k
    pg = k.pgdats[0]
    pg.kswapd_failures = MAX_RECLAIM_RETRIES
    z = normal(k, 0)
    k.za.free[z.idx] = z.wmark(WMARK_LOW)
    k.za.below_high[z.idx] = True
    free_pages_zone(k, z, z.wmark(WMARK_HIGH))
    assert not k.za.below_high[z.idx]
    assert pg.kswapd_failures == MAX_RECLAIM_RETRIES


@pytest.mark.parametrize("policy", ["v4.10"])
def test_pre_2017_kswapd_never_gives_up(policy):
    """Before c73322d098e4 (v4.10) there is no kswapd_failures: kswapd sleeps only when the
    node is balanced, so on a node with nothing reclaimable it keeps running (100% CPU)."""
    k = sim(make(), policy).k
    hot = region(k, "hot", math.inf, True)
    fill_to(k, hot, 1, WMARK_MIN, below=-1)
    fill_to(k, hot, 0, WMARK_LOW, below=-1)
    wakeup_kswapd(k, normal(k, 0), GFP_HIGHUSER_MOVABLE, 0, ZONE_MOVABLE)
    run_kswapd(k, 0, 2.0)
    pg0 = k.pgdats[0]
    assert pg0.kswapd.state == "run" and pg0.kswapd.runs > 3 * MAX_RECLAIM_RETRIES
    assert pg0.kswapd_failures == 0
    assert pg0.kswapd.cpu_s > 1.6  # it used nearly all of the 2 s


@pytest.mark.parametrize(
    "policy, hopeless", [("v6.6", False), ("wei-xu-mglru", True), ("v6.12", True)]
)
def test_mglru_failure_reset_depends_on_version(policy, hopeless):
    """lru_gen_shrink_node() reset kswapd_failures unconditionally from ~v6.3 until Wei Xu's
    fix (b130ba4a6259; v6.12, 6.6.58): under MGLRU such a node never goes hopeless and kswapd
    keeps running; after the fix it resets only when sc->nr_reclaimed grew."""
    k = sim(make({"machine.lru": "mglru"}), policy).k
    hot = region(k, "hot", math.inf, True)
    fill_to(k, hot, 1, WMARK_MIN, below=-1)
    fill_to(k, hot, 0, WMARK_LOW, below=-1)
    wakeup_kswapd(k, normal(k, 0), GFP_HIGHUSER_MOVABLE, 0, ZONE_MOVABLE)
    run_kswapd(k, 0, 3.0)
    pg0 = k.pgdats[0]
    assert (pg0.kswapd_failures >= MAX_RECLAIM_RETRIES) == hopeless
    if not hopeless:
        assert pg0.kswapd.state == "run" and pg0.kswapd.runs > 3 * MAX_RECLAIM_RETRIES


def test_lru_counts_stay_consistent():
    """The per-zone LRU counts kept incrementally equal a recount of the page array."""
    k = sim(make()).k
    cold = region(k, "cold")
    fill_to(k, cold, 0, WMARK_LOW, below=50)
    wakeup_kswapd(k, normal(k, 0), GFP_HIGHUSER_MOVABLE, 0, ZONE_MOVABLE)
    run_kswapd(k, 0, 3.0)
    assert k.check_lru_counts()
    held = int(k.za.pcp[:, 0].sum())  # free frames on per-cpu lists, not in NR_FREE_PAGES
    assert int(k.za.free.sum()) + held + int((k.mem.gvp >= 0).sum()) == k.nr_pages
    assert np.all(k.za.free >= 0)
