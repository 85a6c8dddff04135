"""compare_runs, load_run and the validate CLI on synthetic summaries (and the recordings)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from reclaimsim.realkernel import recordings_dir
from reclaimsim.validate import (
    RATIO_COUNTERS,
    FidelityReport,
    RunLoadError,
    compare_runs,
    load_run,
    validate_main,
)


def _node(unrecl: tuple[int, int], runs: int) -> dict[str, Any]:
    return {
        "unreclaimable_min": unrecl[0],
        "unreclaimable_max": unrecl[1],
        "free_mb_min": 15.0,
        "free_mb_max": 1800.0,
        "kswapd_runs": runs,
        "kswapd_cpu_s": 1.0,
    }


def _phase(
    name: str, unrecl0: tuple[int, int], runs0: int, delta: dict[str, int], hot0: int | None
) -> dict[str, Any]:
    wl = {}
    if hot0 is not None:
        wl["W"] = {
            "resident_pages_by_node": {"0": 400000, "1": 100000},
            "hot_pages_by_node": {"0": hot0, "1": 32768 - hot0},
        }
    base = dict.fromkeys((*RATIO_COUNTERS, "oom_kill"), 0)
    return {
        "name": name,
        "start_s": 0.0,
        "end_s": 1.0,
        "nodes": {"0": _node(unrecl0, runs0), "1": _node((0, 0), 0)},
        "vmstat_delta": base | delta,
        "workloads": wl,
    }


def make_summary() -> dict[str, Any]:
    """A hopeless-kswapd run shaped like the 6.12 recording."""
    p1 = {
        "pgscan_kswapd": 1_900_000,
        "pgsteal_kswapd": 5000,
        "pgdemote_kswapd": 5000,
        "pgpromote_candidate": 150_000,
        "pgpromote_success": 190,
        "numa_hint_faults": 290_000,
    }
    p3 = {"pgpromote_candidate": 126_000, "pgpromote_success": 4000, "numa_hint_faults": 126_000}
    p4 = {
        "pgscan_kswapd": 17_000,
        "pgsteal_kswapd": 17_000,
        "pgdemote_kswapd": 17_000,
        "pgpromote_candidate": 48_000,
        "pgpromote_success": 15_500,
        "numa_hint_faults": 48_000,
    }
    return {
        "scenario": "vm-2g1g-hopeless",
        "policy": "v6.12",
        "seed": 1,
        "sim_seconds": 273.0,
        "wall_seconds": 0.8,
        "kernel": "v6.12",
        "source": "reclaimsim",
        "events": [{"t": 7.2, "name": "PHASE1_START"}],
        "phases": [
            _phase("p1", (0, 1), 100, p1, None),
            _phase("p2", (1, 1), 0, {"pgpromote_candidate": 21}, None),
            _phase("p3", (1, 1), 0, p3, 4000),
            _phase("p4", (0, 0), 9, p4, 19551),
        ],
    }


def _phase_of(s: dict[str, Any], name: str) -> dict[str, Any]:
    return next(p for p in s["phases"] if p["name"] == name)


def _failed(rep: FidelityReport) -> set[tuple[str, str]]:
    return {(r.phase, r.check) for r in rep.failures}


def test_identical_runs_are_ok():
    """A run compared with itself passes every check, all kinds present."""
    s = make_summary()
    rep = compare_runs(s, copy.deepcopy(s))
    assert rep.ok and not rep.failures
    assert {r.kind for r in rep.rows} == {"exact", "zero", "ratio", "placement"}
    assert {r.phase for r in rep.rows} == {"p1", "p2", "p3", "p4"}


def test_flipped_transition_fails_naming_phase_and_check():
    """The hopeless state not reached in p3 is an exact-check failure in p3 only."""
    real, sim = make_summary(), make_summary()
    _phase_of(sim, "p3")["nodes"]["0"]["unreclaimable_max"] = 0
    _phase_of(sim, "p3")["nodes"]["0"]["unreclaimable_min"] = 0
    rep = compare_runs(sim, real)
    assert not rep.ok
    assert _failed(rep) == {("p3", "node0 unreclaimable_min"), ("p3", "node0 unreclaimable_max")}
    md = rep.to_markdown()
    assert "| p3 | node0 unreclaimable_max | 0 | 1 | NO |" in md


def test_kswapd_runs_and_oom_zero_vs_nonzero():
    """kswapd running in a phase where the real one never ran fails; counts don't matter."""
    real, sim = make_summary(), make_summary()
    _phase_of(sim, "p3")["nodes"]["0"]["kswapd_runs"] = 3
    _phase_of(sim, "p1")["nodes"]["0"]["kswapd_runs"] = 7  # 7 vs 100: both non-zero, ok
    _phase_of(sim, "p4")["vmstat_delta"]["oom_kill"] = 1
    assert _failed(compare_runs(sim, real)) == {("p3", "node0 kswapd_runs"), ("p4", "oom_kill")}


def test_ratio_of_two_fails_and_within_tolerance_passes():
    """sim/real = 2 is outside 1.5x; 1.4 is inside; a looser tolerance accepts 2."""
    real, sim = make_summary(), make_summary()
    _phase_of(sim, "p4")["vmstat_delta"]["pgpromote_success"] = 31_000
    _phase_of(sim, "p3")["vmstat_delta"]["numa_hint_faults"] = int(126_000 * 1.4)
    rep = compare_runs(sim, real)
    assert _failed(rep) == {("p4", "pgpromote_success")}
    assert compare_runs(sim, real, ratio_tol=2.5).ok
    sim2 = make_summary()
    _phase_of(sim2, "p4")["vmstat_delta"]["pgpromote_success"] = 15_500 // 2
    assert _failed(compare_runs(sim2, real)) == {("p4", "pgpromote_success")}


def test_near_zero_floor():
    """Below max(100, 1% of the real run's largest phase delta) counts as zero."""
    real = make_summary()
    sim = make_summary()
    # pgpromote_candidate floor = max(100, 1% of 150000) = 1500: 21 vs 1400 is near zero twice
    _phase_of(sim, "p2")["vmstat_delta"]["pgpromote_candidate"] = 1400
    # pgdemote_direct floor = 100 (real is 0 everywhere): 99 is near zero, 150 is not
    _phase_of(sim, "p1")["vmstat_delta"]["pgdemote_direct"] = 99
    _phase_of(sim, "p3")["vmstat_delta"]["pgdemote_direct"] = 150
    rep = compare_runs(sim, real)
    assert _failed(rep) == {("p3", "pgdemote_direct")}
    assert "real near zero" in rep.failures[0].note


def test_placement_points():
    """W's hot share on node0: 20 points off fails, 10 points off passes."""
    real = make_summary()
    for shift, ok in ((0.20, False), (0.10, True), (-0.20, False)):
        sim = make_summary()
        hot = _phase_of(sim, "p4")["workloads"]["W"]["hot_pages_by_node"]
        moved = int(32768 * shift)
        hot["0"] += moved
        hot["1"] -= moved
        rep = compare_runs(sim, real)
        assert rep.ok is ok, shift
        if not ok:
            assert _failed(rep) == {("p4", "W hot on node0 %")}


def test_missing_in_sim_fails_missing_in_real_is_skipped():
    """A value the real run has but the sim lacks fails; the reverse is skipped."""
    real, sim = make_summary(), make_summary()
    del _phase_of(sim, "p4")["vmstat_delta"]["pgpromote_candidate"]
    del _phase_of(real, "p1")["vmstat_delta"]["pgdemote_direct"]
    _phase_of(sim, "p3")["workloads"] = {}
    rep = compare_runs(sim, real)
    assert _failed(rep) == {("p4", "pgpromote_candidate"), ("p3", "W hot on node0 %")}
    skipped = [r for r in rep.rows if r.kind == "skipped"]
    assert [(r.phase, r.check) for r in skipped] == [("p1", "pgdemote_direct")]


def test_only_common_phases_compared():
    """Phases present in one run only are listed in the notes, not checked."""
    real, sim = make_summary(), make_summary()
    sim["phases"] = [p for p in sim["phases"] if p["name"] != "p1"]
    rep = compare_runs(sim, real)
    assert rep.ok and "p1" not in {r.phase for r in rep.rows}
    assert any("p1" in n for n in rep.notes)


def test_rich_table_has_every_row():
    """to_rich_table renders one row per check."""
    rep = compare_runs(make_summary(), make_summary())
    assert rep.to_rich_table().row_count == len(rep.rows)


def _write(d: Path, s: dict[str, Any]) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    (d / "summary.json").write_text(json.dumps(s))
    return d


def test_load_run_forms(tmp_path: Path):
    """A run dir, its summary.json, and an --out dir with a single policy all load."""
    s = make_summary()
    d = _write(tmp_path / "out" / "v6.12", s)
    assert load_run(d) == s
    assert load_run(d / "summary.json") == s
    assert load_run(tmp_path / "out") == s
    _write(tmp_path / "out" / "v6.18", s)
    with pytest.raises(RunLoadError, match="several policies"):
        load_run(tmp_path / "out")
    with pytest.raises(RunLoadError, match="no such file"):
        load_run(tmp_path / "nope")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(RunLoadError, match="bad.json"):
        load_run(tmp_path / "bad.json")
    # a `reclaimsim vm run` folder holds the harness CSVs *and* the summary.json derived with
    # the scenario's own phases: the summary wins (the CSVs alone only know p1..p4)
    vm = tmp_path / "vmrun"
    _write(vm, s)
    for f in ("events.csv", "info.json"):
        (vm / f).write_text("")
    assert load_run(vm) == s


def test_validate_main_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    """0 when every check passes, 1 when one fails, 2 for bad input with a one-line message."""
    real = _write(tmp_path / "real", make_summary())
    same = _write(tmp_path / "same", make_summary())
    flipped = make_summary()
    _phase_of(flipped, "p2")["nodes"]["0"]["unreclaimable_min"] = 0
    other = _write(tmp_path / "other", flipped)

    assert validate_main([str(same), str(real)]) == 0
    assert "fidelity OK" in capsys.readouterr().out

    assert validate_main([str(other), str(real), "--ratio-tol", "2"]) == 1
    assert "p2 node0 unreclaimable_min" in capsys.readouterr().out

    missing = tmp_path / "does-not-exist"
    assert validate_main([str(missing), str(real)]) == 2
    err = capsys.readouterr().err
    assert str(missing) in err and err.count("\n") == 1 and "Traceback" not in err

    empty = tmp_path / "empty"
    empty.mkdir()
    assert validate_main([str(real), str(empty)]) == 2
    err = capsys.readouterr().err
    assert str(empty) in err and "summary.json" in err

    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "summary.json").write_text(json.dumps({"phases": [{"x": 1}]}))
    assert validate_main([str(tmp_path / "broken"), str(real)]) == 2
    assert "Traceback" not in capsys.readouterr().err

    assert validate_main([str(real)]) == 2  # argparse usage error
    assert "usage" in capsys.readouterr().err


@pytest.mark.skipif(recordings_dir() is None, reason="shared realkernel recordings not found")
def test_validate_recordings(capsys: pytest.CaptureFixture[str]):
    """A recording passes against itself; 7.3.4 (fixed) fails against 6.12 (bug) in p3."""
    res = recordings_dir()
    assert res is not None
    bug612, bug734 = res / "6.12.117-hmat-classic-bug", res / "7.3.4-hmat-classic-bug"
    if not (bug612.is_dir() and bug734.is_dir()):
        pytest.skip("6.12/7.3.4 bug recordings not present")
    assert validate_main([str(bug612), str(bug612)]) == 0
    rep = compare_runs(load_run(bug734), load_run(bug612))
    assert ("p3", "node0 unreclaimable_max") in _failed(rep)
    assert ("p3", "node0 kswapd_runs") in _failed(rep)


def test_real_spread_groups_runs_by_their_transitions():
    """validate --all's spread column: real runs of a phase are replicas only if that phase
    and every earlier common phase had the same state transitions; the spread is the largest
    max/min counter ratio (near-zero counters left out) and W's placement range."""
    from reclaimsim.fidelity import Cell, replicas, spread
    from reclaimsim.validate import _floors

    a = make_summary()
    b = copy.deepcopy(a)  # same transitions, counters 1.3x, placement 10 points apart
    for ph in b["phases"]:
        for c in RATIO_COUNTERS:
            ph["vmstat_delta"][c] = int(ph["vmstat_delta"][c] * 1.3)
    _phase_of(b, "p4")["workloads"]["W"]["hot_pages_by_node"] = {"0": 22828, "1": 9940}
    c = copy.deepcopy(a)  # hopeless in p3 only: p3 and p4 are not replicas of a's
    _phase_of(c, "p3")["nodes"]["0"]["unreclaimable_max"] = 0
    _phase_of(c, "p3")["nodes"]["0"]["unreclaimable_min"] = 0
    cells = [Cell(n, "v6.12", FidelityReport(), r) for n, r in (("a", a), ("b", b), ("c", c))]
    g = replicas(cells)
    assert len(g[("a", "p2")]) == 3 and len(g[("a", "p3")]) == 2 and len(g[("a", "p4")]) == 2
    assert len(g[("c", "p4")]) == 1
    worst, pts = spread(g[("a", "p4")], _floors(a))
    assert worst == pytest.approx(1.3, rel=0.01)
    assert pts == pytest.approx(100 * (22828 - 19551) / 32768)
    assert spread(g[("a", "p2")], _floors(a))[1] is None  # no W in p2
