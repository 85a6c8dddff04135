"""The recording loader against the shared harness's results/compare.md."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from reclaimsim.realkernel import load_recording, policy_for_kernel, recordings_dir, shared_dir

RESULTS = recordings_dir()
SKIP = "shared realkernel recordings not found (set RECLAIMSIM_SHARED or check out ../shared)"
RUNS = sorted(d.name for d in RESULTS.iterdir() if (d / "events.csv").is_file()) if RESULTS else []
needs_results = pytest.mark.skipif(RESULTS is None, reason=SKIP)
run_params = [pytest.param(r, id=r) for r in RUNS] or [
    pytest.param(None, marks=pytest.mark.skip(reason=SKIP))
]

_CACHE: dict[str, dict[str, Any]] = {}


def _summary(run: str) -> dict[str, Any]:
    if run not in _CACHE:
        assert RESULTS is not None
        _CACHE[run] = load_recording(RESULTS / run)
    return _CACHE[run]


def parse_compare_md(path: Path) -> dict[str, list[dict[str, str]]]:
    """compare.md -> run name -> table rows as {column: cell}."""
    out: dict[str, list[dict[str, str]]] = {}
    run, hdr = None, None
    for line in path.read_text().splitlines():
        if line.startswith("## "):
            run, hdr = line[3:].strip(), None
            out[run] = []
        elif run and line.startswith("|") and not line.startswith("|---"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if hdr is None:
                hdr = cells
            else:
                out[run].append(dict(zip(hdr, cells, strict=True)))
    return out


@pytest.fixture(scope="module")
def compare_md() -> dict[str, list[dict[str, str]]]:
    """The parsed expected table."""
    if RESULTS is None or not (RESULTS / "compare.md").is_file():
        pytest.skip(SKIP)
    return parse_compare_md(RESULTS / "compare.md")


def _range(lo: float, hi: float) -> str:
    return f"{math.floor(lo)}..{math.floor(hi)}"


@pytest.mark.parametrize("run", run_params)
def test_loader_reproduces_compare_md(run: str, compare_md: dict[str, list[dict[str, str]]]):
    """Every number of the run's compare.md table comes out of load_recording."""
    assert run in compare_md, f"{run} has no section in compare.md"
    s = _summary(run)
    phases = {p["name"]: p for p in s["phases"]}
    assert [r["window"] for r in compare_md[run]] == [p["name"] for p in s["phases"]]
    for row in compare_md[run]:
        p = phases[row["window"]]
        where = f"{run} {row['window']}"
        assert row["t(s)"] == f"{p['start_s']:.0f}-{p['end_s']:.0f}", where
        n0 = p["nodes"]["0"]
        assert row["node0_unrecl"] == f"{n0['unreclaimable_min']}..{n0['unreclaimable_max']}"
        assert row["node0_free_MB"] == _range(n0["free_mb_min"], n0["free_mb_max"]), where
        assert int(row["kswapd0_runs"]) == n0["kswapd_runs"], where
        # kswapd's utime is 0 in every recording, so CPU seconds * 100 = stime ticks
        assert int(row["d_kswapd0_stime"]) == round(n0["kswapd_cpu_s"] * 100), where
        for col, val in row.items():
            if col.startswith("d_") and col != "d_kswapd0_stime":
                assert int(val) == p["vmstat_delta"][col[2:]], f"{where} {col}"
        w = p["workloads"].get("W")
        if row["W_hot_on_node0"]:
            on0, total = (int(x) for x in row["W_hot_on_node0"].split("/"))
            assert w is not None, where
            assert w["hot_pages_by_node"]["0"] == on0, where
            assert sum(w["hot_pages_by_node"].values()) == total, where
        else:
            assert w is None, where
        extra = p["extra"]
        if row["n0_kswapd_fails"] == "":
            assert extra == {}, where
        else:
            n, mx = extra["n0_kswapd_fails"], extra["n0_kswapd_failures_max"]
            assert row["n0_kswapd_fails"] == (f"{n} (max {mx})" if n else "0"), where
            clr = " ".join(f"{k}:{v}" for k, v in extra["n0_fail_reset_by"].items()) or "-"
            assert row["n0_fail_reset_by"] == clr, where


def test_every_compare_md_section_has_a_recording(compare_md: dict[str, list[dict[str, str]]]):
    """compare.md and the run folders list the same runs."""
    assert sorted(compare_md) == RUNS


@pytest.mark.parametrize("run", run_params)
def test_summary_contract(run: str):
    """Top-level fields and per-phase shape follow docs/outputs.md; the dict is JSON."""
    s = _summary(run)
    json.dumps(s)
    info = json.loads((RESULTS / run / "info.json").read_text())  # type: ignore[operator]
    assert s["source"] == "realkernel" and s["seed"] is None and s["wall_seconds"] is None
    assert s["kernel"] == info["kernel"]
    assert s["policy"] == policy_for_kernel(info["kernel"])
    assert (
        s["scenario"] == {"bug": "vm-2g1g-hopeless", "control": "vm-2g1g-control"}[info["scenario"]]
    )
    assert s["lru"] == "classic" and s["node1_mode"] == info["node1_mode"]
    assert s["sim_seconds"] >= s["events"][-1]["t"]
    assert all(set(e) == {"t", "name"} for e in s["events"])
    for p in s["phases"]:
        assert set(p) >= {"name", "start_s", "end_s", "nodes", "vmstat_delta", "workloads"}
        assert set(p["nodes"]) == {"0", "1"}
        for n in p["nodes"].values():
            assert n["unreclaimable_min"] <= n["unreclaimable_max"]
            assert n["free_mb_min"] <= n["free_mb_max"]
            assert n["kswapd_cpu_s"] >= 0
        assert "pgsteal_kswapd" in p["vmstat_delta"] and "oom_kill" in p["vmstat_delta"]


@pytest.mark.parametrize("run", run_params)
def test_hot_set_rule(run: str):
    """Hoggers are all-hot, R has no hot set, W's hot set is its 128 MiB VMA."""
    for p in _summary(run)["phases"]:
        for name, w in p["workloads"].items():
            if name.startswith("hog"):
                assert w["hot_pages_by_node"] == w["resident_pages_by_node"]
            elif name == "R":
                assert w["hot_pages_by_node"] == {}
            elif name == "W" and p["name"] in ("p3", "p4"):
                assert sum(w["hot_pages_by_node"].values()) == 128 * 256
                assert sum(w["resident_pages_by_node"].values()) > 128 * 256


@needs_results
def test_dead_workloads_are_not_reported():
    """After the kill (p1h end, p2) no hogger is listed, although numa_maps has old rows."""
    bugs = [r for r in RUNS if r.endswith("-bug")]
    if not bugs:
        pytest.skip("no bug recording")
    for run in bugs:
        phases = {p["name"]: p for p in _summary(run)["phases"]}
        assert phases["p1"]["workloads"], run
        assert phases["p2"]["workloads"] == {}, run


@pytest.mark.parametrize(
    ("release", "policy"),
    [
        ("6.1.0-56-amd64", "v6.1"),
        ("6.12.117+deb12-amd64", "v6.12"),
        ("6.18.15+deb13-amd64", "v6.18"),
        ("7.3.4+deb13-amd64", "v6.18"),
    ],
)
def test_policy_for_kernel(release: str, policy: str):
    """Kernel releases map onto the simulator's policies."""
    assert policy_for_kernel(release) == policy


@pytest.mark.parametrize("release", ["6.6.0-1-amd64", "5.15.0", "garbage"])
def test_policy_for_kernel_rejects_unknown(release: str):
    """Releases without a policy are an error, not a silent guess."""
    with pytest.raises(ValueError):
        policy_for_kernel(release)


def test_shared_dir_from_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """RECLAIMSIM_SHARED wins over the repo-relative location."""
    monkeypatch.setenv("RECLAIMSIM_SHARED", str(tmp_path))
    assert shared_dir() == tmp_path.resolve()


def test_load_recording_rejects_non_recording(tmp_path: Path):
    """A folder without events.csv/info.json is refused with the path in the message."""
    with pytest.raises(FileNotFoundError, match="events.csv"):
        load_recording(tmp_path)
