"""kswapd on a node with nothing reclaimable: pre-2017 kernels and MGLRU before Wei Xu's fix
spin; since c73322d098e4 kswapd gives up after MAX_RECLAIM_RETRIES runs and sleeps."""

from __future__ import annotations

import pytest
from conftest import SCENARIOS

from reclaimsim.engine import Simulation
from reclaimsim.metrics import compute, evaluate, verdict_env
from reclaimsim.output import summary
from reclaimsim.scenario import load_scenario


@pytest.mark.parametrize(
    "scenario, policy, spins",
    [
        ("weiner-2017-kswapd-spin-vm", "v4.10", True),
        ("weiner-2017-kswapd-spin-vm", "v6.12", False),
        ("wei-xu-2024-mglru-spin-vm", "v6.6", True),
        ("wei-xu-2024-mglru-spin-vm", "wei-xu-mglru", False),
        ("wei-xu-2024-mglru-spin-vm", "v6.12", False),
    ],
)
def test_spin_or_sleep(scenario, policy, spins):
    sc = load_scenario(SCENARIOS / f"{scenario}.toml")
    sim = Simulation(sc, policy).run()
    s = summary(sim)
    m = compute(s, sim.samples, sim.k.tiers.preferred, False)
    verdicts = evaluate(sc.verdicts, verdict_env(s, m, sim.k.trace.events))
    hold = next(p for p in s["phases"] if p["name"] == "hold")
    if spins:
        # kswapd never sleeps: it uses the whole hold, one idle run after another
        assert m["kswapd_cpu_unreclaimable_s_node0"] > 0.9 * 60
        assert hold["nodes"]["0"]["kswapd_runs"] > 100_000
        assert hold["nodes"]["0"]["unreclaimable_max"] == 0
        assert not any(verdicts.values())
        assert any("repeat=" in line for line in sim.k.trace.lines)
    else:
        assert m["kswapd_runs_node0"] == 16 and all(verdicts.values())


@pytest.mark.slow
@pytest.mark.parametrize("policy, spins", [("v4.10", True), ("v6.12", False)])
def test_reporter_scale_hugetlb_spin(policy, spins):
    """Jia He's machine: 4000 x 16 MiB huge pages asked on ~31 GB; the pool stops near his
    1864 and the CPU-less node is left with nothing reclaimable: kswapd1 spins before
    c73322d098e4 and gives up after MAX_RECLAIM_RETRIES failed runs since."""
    sc = load_scenario(SCENARIOS / "weiner-2017-kswapd-spin.toml")
    sim = Simulation(sc, policy).run()
    s = summary(sim)
    m = compute(s, sim.samples, sim.k.tiers.preferred, False)
    verdicts = evaluate(sc.verdicts, verdict_env(s, m, sim.k.trace.events))
    pool = "the pool stops near the reporter's 1864 huge pages"
    assert verdicts.pop(pool)
    assert all(verdicts.values()) != spins
    assert (m["kswapd_cpu_unreclaimable_s_node1"] > 0.9 * 60) == spins


@pytest.mark.slow
@pytest.mark.parametrize("policy, spins", [("v6.6", True), ("wei-xu-mglru", False)])
def test_reporter_scale_mglru_spin(policy, spins):
    """64 GiB of busy anon with MGLRU and no swap: kswapd spins before Wei Xu's fix and sleeps
    hopeless after it."""
    sc = load_scenario(SCENARIOS / "wei-xu-2024-mglru-spin.toml")
    sim = Simulation(sc, policy).run()
    s = summary(sim)
    m = compute(s, sim.samples, sim.k.tiers.preferred, False)
    verdicts = evaluate(sc.verdicts, verdict_env(s, m, sim.k.trace.events))
    assert all(verdicts.values()) != spins
