"""Jiayuan Chen's reports (kernel-spec.md part 2, H6/H7): file refaults, the balanced-only
kswapd_failures reset, and the scenario verdicts per policy."""

from __future__ import annotations

import tomllib

import pytest
from conftest import SCENARIOS
from test_memcg import MIB, charged_region, kernel, machine

from reclaimsim.engine import Simulation
from reclaimsim.kernel.constants import WMARK_HIGH, ZONE_NORMAL
from reclaimsim.kernel.page_alloc import GFP_HIGHUSER_MOVABLE, zonelist
from reclaimsim.kernel.state import Kernel
from reclaimsim.kernel.vmscan import try_to_free_mem_cgroup_pages, try_to_free_pages
from reclaimsim.metrics import compute, evaluate, verdict_env
from reclaimsim.output import summary
from reclaimsim.scenario import scenario_from_dict
from reclaimsim.workloads import Process


def fill_root(k: Kernel, pages: int) -> None:
    charged_region(k, "root-anon", None, pages)


@pytest.mark.parametrize(
    ("policy", "balanced", "reset"),
    [
        ("v6.18", False, True),
        ("jiayuan-balanced", False, False),
        ("jiayuan-balanced", True, True),
        ("mm-2026", False, False),
    ],
)
def test_memcg_reclaim_resets_kswapd_failures_unless_the_node_is_unbalanced(
    policy, balanced, reset
):
    """shrink_node() progress by memcg limit reclaim resets kswapd_failures in v6.18; with
    Jiayuan Chen's patch (kswapd_try_clear_hopeless) only if pgdat_balanced() as well, and
    then with reason DIRECT."""
    k = kernel(policy, cgroups={"c": {"memory_high": "4MiB"}})
    z = k.pgdats[0].zones[ZONE_NORMAL]
    charged_region(k, "mine", "c", 8 * MIB)
    if not balanced:
        fill_root(k, z.free - z.wmark(WMARK_HIGH) + 64)  # below HIGH, above MIN
    k.now = 1.0
    k.pgdats[0].kswapd_failures = 10
    reclaimed, _ = try_to_free_mem_cgroup_pages(k, k.memcgs.id_of("c"), 32)
    assert reclaimed >= 32
    assert (k.pgdats[0].kswapd_failures == 0) == reset
    clears = [e for e in k.trace.events if e[1] == "mm_vmscan_kswapd_clear_hopeless"]
    assert bool(clears) == reset
    if reset:
        assert "reason=DIRECT" in clears[-1][3]


def test_clean_file_pages_are_dropped_and_refaults_are_counted():
    """shrink_folio_list(): a clean file page is freed without swap (pgsteal_file, no
    pswpout). Reading it again is a refault (workingset_refault_file, a major fault reading
    4 KiB: pgpgin); with the refault distance within the workingset (active file) it comes
    back on the active list (workingset_activate_file)."""
    d = machine(workloads={"r": {"file": "8MiB", "file_access": 0.0}})
    d["machine"]["swap"] = 0
    s = Simulation(scenario_from_dict(d), "v6.18")
    k = s.k
    p = Process(k, "r", 100, s.scenario.workloads["r"], s.env())
    s.procs.append(p)
    while p.state == "touching":
        p.step(k, 0.01)
        k.now += 0.01
    assert k.vmstat.c["pgmajfault"] == 8 * MIB and k.vmstat.c["pgpgin"] == 4 * 8 * MIB
    k.now += 1.0
    zl = zonelist(k, 0, GFP_HIGHUSER_MOVABLE, [0])
    reclaimed, _ = try_to_free_pages(k, zl, 0, GFP_HIGHUSER_MOVABLE)
    assert reclaimed >= 32
    assert k.vmstat.c["pgsteal_file"] == reclaimed and k.vmstat.c.get("pswpout", 0) == 0
    # every evicted page is read again at once (a busy reader)
    k.regions.rate[p.file_region] = 1e9
    active_before = k.pgdats[0].lru_size(3)
    p.read_files(k, 0.01)
    assert k.vmstat.c["workingset_refault_file"] == reclaimed
    assert k.vmstat.c["pgmajfault"] == 8 * MIB + reclaimed
    # distance 'reclaimed' evictions vs an empty active file list: not activated
    assert k.vmstat.c.get("workingset_activate_file", 0) == 0
    assert k.pgdats[0].lru_size(3) == active_before
    assert int(k.regions.cnt[p.file_region].sum()) == 8 * MIB
    assert k.check_lru_counts()


def _run_short(policy: str) -> dict[str, bool]:
    path = SCENARIOS / "jiayuan-2026-memcg-high-reset-vm.toml"
    data = tomllib.loads(path.read_text())
    sleep = next(i for i, st in enumerate(data["script"]) if st.get("sleep_s") == 60)
    s = scenario_from_dict(data, [f"script[{sleep}].sleep_s=10", "duration_s=30"])
    sim = Simulation(s, policy).run()
    summ = summary(sim)
    mets = compute(summ, sim.samples, sim.k.tiers.preferred, sim.k.swap.total_pages > 0)
    return evaluate(s.verdicts, verdict_env(summ, mets, sim.k.trace.events))


def test_jiayuan_2026_verdicts_v618_fails_balanced_passes():
    """The scenario (short steady phase): v6.18's memcg reclaim keeps kswapd0 alive (it never
    goes hopeless, keeps evicting the containers' file pages); jiayuan-balanced lets node0
    go hopeless."""
    v618 = _run_short("v6.18")
    bal = _run_short("jiayuan-balanced")
    # the CPU verdict is written for the full 60 s phase; the other two hold at any length
    for name, ok in v618.items():
        if "CPU" not in name:
            assert not ok, name
    assert all(bal.values()), bal


def test_boost_watermark_adds_a_pageblock_up_to_150pct_of_high_and_wakes_kswapd():
    """boost_watermark(): each pageblock steal raises the zone's boost by pageblock_nr_pages,
    capped at max(pageblock, HIGH * watermark_boost_factor / 10000); every mark includes the
    boost; rmqueue sees ZONE_BOOSTED_WATERMARK and wakes kswapd although the node is
    balanced (wakeup_kswapd: balanced and not boosted -> no wake)."""
    from reclaimsim.kernel.page_alloc import PAGEBLOCK_NR_PAGES, steal_pageblocks

    d = machine()
    d["machine"]["nodes"][0]["size"] = "256MiB"
    k = Simulation(scenario_from_dict(d), "v6.18").k
    z = k.pgdats[0].zones[ZONE_NORMAL]
    high = int(k.za.wmark[z.idx, WMARK_HIGH])
    assert k.pgdats[0].kswapd.state == "sleep"
    steal_pageblocks(k, 0, 1)
    assert z.boost == PAGEBLOCK_NR_PAGES
    assert z.wmark(WMARK_HIGH) == high + PAGEBLOCK_NR_PAGES
    assert k.pgdats[0].kswapd.state == "run"
    assert not k.za.boosted_wmark[z.idx]
    steal_pageblocks(k, 0, 50)
    assert z.boost == max(PAGEBLOCK_NR_PAGES, high * 15000 // 10000)


@pytest.mark.parametrize(("policy", "counted"), [("v6.18", True), ("jiayuan-boost", False)])
def test_boosted_reclaim_rules_and_failure_accounting(policy, counted):
    """A boosted balance_pgdat on a balanced node: may_swap = 0 (anon is not scanned), the
    priority stays >= DEF_PRIORITY - 2, a pass without progress ends the run, and the boost is
    cleared at the end. With memory.low protecting the only file pages it reclaims nothing:
    v6.18 counts kswapd_failures++; Jiayuan Chen's patch does not count boosted runs."""
    from reclaimsim.kernel.constants import DEF_PRIORITY
    from reclaimsim.kernel.page_alloc import boost_watermark
    from reclaimsim.kernel.vmscan import BalancePgdat

    d = machine(cgroups={"pod": {"memory_low": "32MiB"}})
    d["machine"]["nodes"][0]["size"] = "256MiB"
    k = Simulation(scenario_from_dict(d), policy).k
    charged_region(k, "pod", "pod", 8 * MIB)  # anon, protected
    r = k.regions.add("podfile", False, k.memcgs.id_of("pod"))
    from reclaimsim.kernel.page_alloc import alloc_pages as ap

    assert ap(k, 4 * MIB, GFP_HIGHUSER_MOVABLE, 0, [0], r, file=True).got == 4 * MIB
    charged_region(k, "root-anon", None, 8 * MIB)  # unprotected anon: needs may_swap
    k.now = 1.0
    z = k.pgdats[0].zones[ZONE_NORMAL]
    boost_watermark(k, z)
    run = BalancePgdat(k, k.pgdats[0], 0, ZONE_NORMAL)
    assert run.boosted
    prios = []
    while not run.done:
        prios.append(run.sc.priority)
        run.step()
        assert not run.sc.may_swap
    assert min(prios) >= DEF_PRIORITY - 2
    assert run.sc.nr_reclaimed == 0 and k.vmstat.c.get("pgscan_anon", 0) == 0
    assert z.boost == 0
    assert k.pgdats[0].kswapd_failures == (1 if counted else 0)


def test_jiayuan_2025_verdicts_v618_fails_boost_passes():
    """The boost scenario with fragmentation every 0.25 s: v6.18 makes node0 hopeless with
    ~700 MiB free; jiayuan-boost does not."""
    path = SCENARIOS / "jiayuan-2025-boost-memlow-vm.toml"
    data = tomllib.loads(path.read_text())
    rep = next(i for i, st in enumerate(data["script"]) if "repeat" in st)
    last = len(data["script"]) - 2  # the pressure phase's closing sleep
    ov = [f"script[{rep}].repeat[1].sleep_s=0.25", f"script[{rep}].max_s=6"]
    ov += [f"script[{last}].sleep_s=0.5"]
    res = {}
    for policy in ("v6.18", "jiayuan-boost"):
        s = scenario_from_dict(data, ov)
        sim = Simulation(s, policy).run()
        summ = summary(sim)
        mets = compute(summ, sim.samples, sim.k.tiers.preferred, sim.k.swap.total_pages > 0)
        res[policy] = evaluate(s.verdicts, verdict_env(summ, mets, sim.k.trace.events))
    assert not any(res["v6.18"].values()), res
    assert all(res["jiayuan-boost"].values()), res


@pytest.mark.slow
def test_jiayuan_2026_reporter_scale():
    """2 x 128 GiB, 20 s steady phase (~2 min, ~1.1 GB): v6.18 keeps kswapd0 running (never
    hopeless), jiayuan-balanced lets node0 go hopeless."""
    path = SCENARIOS / "jiayuan-2026-memcg-high-reset.toml"
    data = tomllib.loads(path.read_text())
    sleep = next(i for i, st in enumerate(data["script"]) if st.get("sleep_s") == 60)
    out = {}
    for policy in ("v6.18", "jiayuan-balanced"):
        s = scenario_from_dict(data, [f"script[{sleep}].sleep_s=20", "duration_s=80"])
        sim = Simulation(s, policy).run()
        out[policy] = summary(sim)["phases"][-1]["nodes"]["0"]
    assert out["v6.18"]["unreclaimable_max"] == 0 and out["v6.18"]["kswapd_runs"] > 100
    assert out["jiayuan-balanced"]["unreclaimable_max"] == 1
