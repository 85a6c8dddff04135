"""The seed report at VM size against what the real kernels showed (issue 2's criteria), and
the state transitions of every recorded run (../shared/realkernel/results)."""

from __future__ import annotations

import pytest
from conftest import SCENARIOS

from reclaimsim.engine import Simulation
from reclaimsim.output import summary
from reclaimsim.realkernel import load_recording, recordings_dir
from reclaimsim.scenario import load_scenario
from reclaimsim.validate import compare_runs

_cache: dict[tuple[str, str], dict] = {}


def run(scenario: str, policy: str) -> dict:
    key = (scenario, policy)
    if key not in _cache:
        sc = load_scenario(SCENARIOS / f"{scenario}.toml")
        _cache[key] = summary(Simulation(sc, policy).run())
    return _cache[key]


def phase(s: dict, name: str) -> dict:
    return next(p for p in s["phases"] if p["name"] == name)


def hot_share(p: dict, workload: str = "W") -> float:
    h = p["workloads"][workload]["hot_pages_by_node"]
    total = sum(h.values())
    return h["0"] / total


def test_v612_node0_stays_hopeless_after_the_kill():
    """Pre-fix: node0 becomes unreclaimable in p1; with the hogs dead nothing reclaims, so it
    stays unreclaimable through p2 and p3 with zero kswapd0 runs, and W's hot set is barely
    promoted (the recording: 4012/32768); p4's node0-bound allocation direct-reclaims node0,
    which resets kswapd_failures, and promotion resumes."""
    s = run("vm-2g1g-hopeless", "v6.12")
    p1, p2, p3, p4 = (phase(s, n) for n in ("p1", "p2", "p3", "p4"))
    assert p1["nodes"]["0"]["unreclaimable_max"] == 1
    for p in (p2, p3):
        assert p["nodes"]["0"]["unreclaimable_min"] == 1
        assert p["nodes"]["0"]["kswapd_runs"] == 0
    assert hot_share(p3) <= 0.20
    assert p4["nodes"]["0"]["unreclaimable_max"] == 0
    assert p4["nodes"]["0"]["kswapd_runs"] > 0
    assert hot_share(p4) > hot_share(p3)
    assert p1["vmstat_delta"]["oom_kill"] == 0


def test_v618_free_path_revives_node0():
    """v6.18: the hogs' exit frees node0 pages through the per-CPU free path; the zone climbs
    above HIGH with ZONE_BELOW_HIGH set and a higher memory node exists, so kswapd_failures is
    reset (reason PCP) and tiering works in p3 (the 7.3.4 recording: 22784/32768)."""
    s = run("vm-2g1g-hopeless", "v6.18")
    p2, p3 = phase(s, "p2"), phase(s, "p3")
    assert phase(s, "p1")["nodes"]["0"]["unreclaimable_max"] == 1
    assert p2["nodes"]["0"]["unreclaimable_max"] == 0
    assert p3["nodes"]["0"]["kswapd_runs"] > 0
    assert hot_share(p3) >= 0.5
    spans = s["metrics"]["hopeless_spans"]
    assert spans and spans[0]["nid"] == 0 and spans[0]["reason"] == "PCP"


def test_byungchul_v1_revives_kswapd_in_p3():
    """Byungchul v1: pages allocated on the hopeless node (W's cold part) make
    nr_may_reclaimable >= 1, so wakeup_kswapd() wakes kswapd0 again."""
    s = run("vm-2g1g-hopeless", "byungchul-v1")
    p2 = phase(s, "p2")
    assert p2["nodes"]["0"]["kswapd_runs"] == 0  # nothing allocates after the kill
    woken = [e for e in s["events"] if e["name"] == "W_READY"]
    assert woken
    runs_p3 = phase(s, "p3")["nodes"]["0"]["kswapd_runs"]
    gap_runs = s["metrics"]["kswapd_runs"]["0"]
    assert runs_p3 > 0 or gap_runs > 0
    assert runs_p3 > 0


def test_control_tiering_works():
    """Control (fresh boot, same W and R): kswapd0 demotes W's cold pages to make room and at
    least half of W's hot set is promoted in p3 (the recording: 19432/32768)."""
    s = run("vm-2g1g-control", "v6.12")
    p3 = phase(s, "p3")
    assert p3["nodes"]["0"]["unreclaimable_max"] == 0
    assert p3["nodes"]["0"]["kswapd_runs"] > 0
    assert p3["vmstat_delta"]["pgdemote_kswapd"] > 0
    assert hot_share(p3) >= 0.5


RECORDED = {
    "6.12.117-hmat-classic-bug": ("vm-2g1g-hopeless", "v6.12"),
    "6.12.117-hmat-classic-control": ("vm-2g1g-control", "v6.12"),
    "7.3.4-hmat-classic-bug": ("vm-2g1g-hopeless", "v6.18"),
    "7.3.4-hmat-classic-control": ("vm-2g1g-control", "v6.18"),
}


# Known gaps (docs/fidelity.md, "Validation"), as (phase, check): none. The last one, p4 node0
# kswapd_runs (W's whole hot set promoted in p3, so nothing woke kswapd0 in p4), closed with
# the promotion path's per-cpu list (nr_pcp_alloc refills hide pages from the gate).
KNOWN_GAPS: set[tuple[str, str]] = set()


@pytest.mark.parametrize("recording", sorted(RECORDED))
def test_transitions_match_the_recordings(recording):
    """Per phase: node_unreclaimable min/max per node, kswapd runs zero vs non-zero and OOM
    kills zero vs non-zero are what the real kernel did."""
    rd = recordings_dir()
    if rd is None or not (rd / recording).is_dir():
        pytest.skip("../shared/realkernel/results is not present")
    real = load_recording(rd / recording)
    sim = run(*RECORDED[recording])
    rep = compare_runs(sim, real)
    bad = [r for r in rep.rows if r.kind in ("exact", "zero") and not r.ok]
    unknown = [r for r in bad if (r.phase, r.check) not in KNOWN_GAPS]
    assert not unknown, "\n" + rep.to_markdown()
    if bad:
        pytest.xfail("known gap: " + ", ".join(f"{r.phase} {r.check}" for r in bad))
