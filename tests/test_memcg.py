"""memcg rules (mm/memcontrol.c, mm/vmscan.c) on a one-node machine with swap: limit reclaim
goes through shrink_node (and resets kswapd_failures), memory.low protection, memory.max."""

from __future__ import annotations

import pytest

from reclaimsim.engine import Simulation
from reclaimsim.kernel.constants import MAX_RECLAIM_RETRIES
from reclaimsim.kernel.memcg import calculate_high_delay
from reclaimsim.kernel.page_alloc import GFP_HIGHUSER_MOVABLE, alloc_pages, zonelist
from reclaimsim.kernel.state import Kernel
from reclaimsim.kernel.vmscan import (
    BalancePgdat,
    try_to_free_mem_cgroup_pages,
    try_to_free_pages,
)
from reclaimsim.scenario import ScenarioError, scenario_from_dict

MIB = 256  # pages


def machine(cgroups: dict | None = None, workloads: dict | None = None, script=None) -> dict:
    return {
        "name": "memcg-tiny",
        "duration_s": 20,
        "machine": {"nodes": [{"id": 0, "cpus": 1, "size": "64MiB"}], "swap": "64MiB"},
        "sysctl": {"numa_balancing": 0},
        "cgroups": cgroups or {},
        "workloads": workloads or {},
        "script": script or [{"sleep_s": 1}],
    }


def kernel(policy: str = "v6.18", **kw) -> Kernel:
    return Simulation(scenario_from_dict(machine(**kw)), policy).k


def charged_region(k: Kernel, name: str, memcg: str | None, pages: int) -> int:
    r = k.regions.add(name, False, k.memcgs.id_of(memcg))
    got = alloc_pages(k, pages, GFP_HIGHUSER_MOVABLE, 0, [0], r).got
    assert got == pages
    return r


def test_limit_reclaim_scans_only_its_memcg_and_resets_kswapd_failures():
    """try_to_free_mem_cgroup_pages() -> do_try_to_free_pages() -> shrink_node() with
    sc->target_mem_cgroup: only that memcg's lruvec is scanned; it is not global reclaim
    (no allocstall, no pgscan_direct/pgsteal_direct, counted in the memcg's memory.stat);
    and its progress in shrink_node() resets a failing node's kswapd_failures (v6.18)."""
    k = kernel(cgroups={"c": {"memory_high": "4MiB"}})
    other = charged_region(k, "other", None, 4 * MIB)
    mine = charged_region(k, "mine", "c", 8 * MIB)
    k.now = 1.0  # the fault-time accessed bits are cleared by a first look
    k.pgdats[0].kswapd_failures = 10
    reclaimed, _ = try_to_free_mem_cgroup_pages(k, k.memcgs.id_of("c"), 64)
    assert reclaimed >= 64
    assert int(k.regions.cnt[other].sum()) == 4 * MIB  # the root's pages untouched
    assert int(k.regions.cnt[mine].sum()) == 8 * MIB - reclaimed
    assert k.vmstat.c.get("pgscan_direct", 0) == 0
    assert k.vmstat.c.get("pgsteal_direct", 0) == 0
    assert k.vmstat.c.get("allocstall_movable", 0) == 0
    assert k.vmstat.c["pswpout"] == reclaimed
    assert k.memcgs[k.memcgs.id_of("c")].stat["pgsteal_direct"] == reclaimed
    assert k.pgdats[0].kswapd_failures == 0
    assert k.check_lru_counts()


def test_kswapd_skips_a_memcg_within_memory_low():
    """shrink_node_memcgs(): a memcg whose usage is within memory.low is skipped by kswapd
    (memcg_low_skipped); balance_pgdat has no memcg_low_reclaim retry."""
    k = kernel(cgroups={"prot": {"memory_low": "32MiB"}, "open": {}})
    prot = charged_region(k, "prot", "prot", 8 * MIB)
    opn = charged_region(k, "open", "open", 8 * MIB)
    k.now = 1.0
    run = BalancePgdat(k, k.pgdats[0], 0, 3)
    run.sc.priority = 0  # scan whole lists
    run.nr_boost_reclaim = 0
    from reclaimsim.kernel.vmscan import kswapd_shrink_node

    for _ in range(2):  # the first look clears the fault-time accessed bits
        kswapd_shrink_node(k, k.pgdats[0], run.sc)
    assert run.sc.memcg_low_skipped
    assert int(k.regions.cnt[prot].sum()) == 8 * MIB
    assert int(k.regions.cnt[opn].sum()) < 8 * MIB


def test_direct_reclaim_retries_protected_memcgs_before_giving_up():
    """do_try_to_free_pages(): nothing reclaimed and a memcg was skipped for memory.low ->
    retry with memcg_low_reclaim (a 'low' event in memory.events)."""
    k = kernel(cgroups={"prot": {"memory_low": "32MiB"}})
    prot = charged_region(k, "prot", "prot", 8 * MIB)
    k.now = 1.0
    zl = zonelist(k, 0, GFP_HIGHUSER_MOVABLE, [0])
    reclaimed, _ = try_to_free_pages(k, zl, 0, GFP_HIGHUSER_MOVABLE)
    assert reclaimed >= 32
    assert int(k.regions.cnt[prot].sum()) == 8 * MIB - reclaimed
    assert k.memcgs[k.memcgs.id_of("prot")].events["low"] >= 1


def test_memory_low_scales_the_scan_of_a_memcg_above_it():
    """get_scan_count(): a memcg above memory.low scans size - size * low / (usage + 1)."""
    from reclaimsim.kernel.vmscan import ScanControl, get_scan_count

    k = kernel(cgroups={"p": {"memory_low": "6MiB"}})
    charged_region(k, "p", "p", 8 * MIB)
    sc = ScanControl(priority=0)
    nr = get_scan_count(k, k.pgdats[0], sc, k.memcgs.id_of("p"))
    size = 8 * MIB  # all on the inactive anon list
    usage = 8 * MIB
    assert nr[0] == size - size * (6 * MIB) // (usage + 1)


def test_memory_high_reclaims_on_return_to_user_and_throttles():
    """A task charging over memory.high: mem_cgroup_handle_over_high() reclaims the memcg
    back toward high (its swap-backed anon here), counts 'high' events; the throttle owed
    grows with the square of the overage (calculate_high_delay)."""
    sc = machine(
        cgroups={"c": {"memory_high": "8MiB"}},
        workloads={"w": {"cold": "24MiB", "memcg": "c"}},
        script=[{"start": "w"}, {"wait_ready": "w", "timeout_s": 10}],
    )
    s = Simulation(scenario_from_dict(sc), "v6.18").run()
    k = s.k
    m = k.memcgs[k.memcgs.id_of("c")]
    assert m.events["high"] > 0
    assert k.memcgs.usage(m.id) <= m.high + 2 * MIB
    assert k.vmstat.c["pswpout"] > 0
    assert calculate_high_delay(100, 100, 64) == 0
    assert calculate_high_delay(200, 100, 64) > 4 * calculate_high_delay(150, 100, 64) - 2


def test_memory_max_without_reclaimable_memory_is_a_memcg_oom():
    """try_charge(): over memory.max with nothing to reclaim (no swap) -> after
    MAX_RECLAIM_RETRIES the memcg OOM killer kills the memcg's task, not a bigger one
    outside it."""
    d = machine(
        cgroups={"c": {"memory_max": "8MiB"}},
        workloads={"big": {"cold": "16MiB"}, "w": {"cold": "12MiB", "memcg": "c"}},
        script=[
            {"start": "big"},
            {"wait_ready": "big", "timeout_s": 5},
            {"start": "w"},
            {"sleep_s": 2},
        ],
    )
    d["machine"]["swap"] = 0
    s = Simulation(scenario_from_dict(d), "v6.18").run()
    k = s.k
    m = k.memcgs[k.memcgs.id_of("c")]
    assert m.events["oom_kill"] == 1 and m.events["max"] >= MAX_RECLAIM_RETRIES
    assert not s.by_name["w"].alive and s.by_name["big"].alive


def test_bad_cgroup_references_are_clear_errors():
    with pytest.raises(ScenarioError, match=r"workloads.w.memcg: no \[cgroups.nope\]"):
        scenario_from_dict(machine(workloads={"w": {"cold": "1MiB", "memcg": "nope"}}))
    with pytest.raises(ScenarioError, match="cgroups.c.memory_high"):
        scenario_from_dict(machine(cgroups={"c": {"memory_high": "lots"}}))
