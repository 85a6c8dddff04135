"""Scenario validation: one clear message naming the field and the fix, never a traceback."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import SCENARIOS, TIERED

from reclaimsim.scenario import ScenarioError, load_scenario, scenario_from_dict


def bad(mut) -> str:
    d = copy.deepcopy(TIERED)
    mut(d)
    with pytest.raises(ScenarioError) as ei:
        scenario_from_dict(d)
    return str(ei.value)


def test_typo_names_the_field():
    msg = bad(lambda d: d["sysctl"].update(demotion_enable=True))
    assert "sysctl.demotion_enable" in msg and "unknown field" in msg


def test_negative_size():
    msg = bad(lambda d: d["machine"]["nodes"][1].update(size=-5))
    assert "machine.nodes.1.size" in msg and "negative" in msg


def test_impossible_machine():
    msg = bad(lambda d: [n.update(cpus=0) for n in d["machine"]["nodes"]])
    assert "no node has CPUs" in msg
    msg = bad(lambda d: d["machine"]["nodes"][1].update(id=5))
    assert "node ids must be 0, 1" in msg


def test_unknown_workload_and_bad_expression():
    msg = bad(lambda d: d["script"].append({"start": "nope"}))
    assert "names no workload" in msg
    msg = bad(lambda d: d["workloads"].update(W={"cold": "node0.fre + 1MiB"}))
    assert "node0.fre" in msg and "known names" in msg


def test_set_overrides_any_field():
    sc = load_scenario(
        SCENARIOS / "vm-2g1g-control.toml",
        ["machine.nodes[1].zones[0].managed_pages=131072", "sysctl.swappiness=100"],
    )
    assert sc.machine.nodes[1].zones[0].managed_pages == 131072
    assert sc.sysctl.swappiness == 100


def test_every_scenario_file_validates():
    files = sorted(SCENARIOS.glob("*.toml"))
    assert files
    for f in files:
        load_scenario(f)


def _cli(*args: str) -> subprocess.CompletedProcess:
    """``reclaimsim ARGS...`` in a fresh interpreter, output captured."""
    return subprocess.run(
        [sys.executable, "-m", "reclaimsim.cli", *args], capture_output=True, text=True
    )


def test_cli_bad_input_exits_2_without_traceback_or_output(tmp_path: Path):
    f = tmp_path / "s.toml"
    f.write_text((SCENARIOS / "vm-2g1g-control.toml").read_text().replace("swap = 0", "swapp = 0"))
    out = tmp_path / "out"
    r = _cli("run", str(f), "--out", str(out))
    assert r.returncode == 2
    assert "machine.swapp" in r.stderr and "Traceback" not in r.stderr
    assert not out.exists()
    r = _cli("run", str(f), "--policy", "v9")
    assert r.returncode == 2 and "Traceback" not in r.stderr


def test_cli_machine_it_cannot_hold_exits_2_without_traceback_or_output(tmp_path: Path):
    # A machine or workload the simulator cannot represent is found only while it is built
    # (here: a workload whose page table would exceed the int32 arena when it starts, after
    # the scenario validated): one message naming the field, exit 2, no run folder left.
    f = tmp_path / "big.toml"
    f.write_text(
        'name = "too-big"\nduration_s = 5\n[machine]\nswap = 0\n'
        '[[machine.nodes]]\nid = 0\ncpus = 1\nsize = "64MiB"\n'
        '[workloads.w]\ncold = "9TiB"\n[[script]]\nstart = "w"\n[[script]]\nsleep_s = 1\n'
    )
    out = tmp_path / "out"
    r = _cli("run", str(f), "--out", str(out))
    assert r.returncode == 2
    assert "workloads:" in r.stderr and "Traceback" not in r.stderr
    assert not out.exists()
