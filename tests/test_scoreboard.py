"""The scoreboard: matrix of scenarios x policies, verdicts, skip on rerun, crash survival."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import polars as pl
import tomli_w
from conftest import TIERED

from reclaimsim.scoreboard import scoreboard_main

TINY = copy.deepcopy(TIERED)
TINY.update(
    name="tiny-board",
    duration_s=30,
    workloads={"hog": {"hot": "40MiB", "access": 2.0}},
    script=[
        {"phase": "p1"},
        {"start": "hog"},
        {"wait_ready": "hog"},
        {"sleep_s": 3},
        {"kill": "hog"},
        {"sleep_s": 1},
        {"end_phase": True},
    ],
    verdicts=[
        {"name": "no OOM", "expr": "oom_kills == 0"},
        {"name": "hog was promoted or fit", "expr": "phase('p1', 0, 'free_mb_min') >= 0"},
        {"name": "impossible", "expr": "kswapd_runs(0, 0, inf) < 0"},
    ],
)


def _write(tmp: Path) -> Path:
    f = tmp / "tiny.toml"
    f.write_bytes(tomli_w.dumps(TINY).encode())
    return f


def test_scoreboard_outputs_and_rerun(tmp_path: Path):
    f = _write(tmp_path)
    out = tmp_path / "board"
    rc = scoreboard_main(
        ["--scenarios", str(f), "--policies", "v6.12", "v6.18", "--out", str(out), "--jobs", "2"]
    )
    assert rc == 0
    cells = json.loads((out / "scoreboard.json").read_text())
    assert {(c["scenario"], c["policy"]) for c in cells} == {
        ("tiny-board", "v6.12"),
        ("tiny-board", "v6.18"),
    }
    for c in cells:
        assert c["status"] == "ok"
        assert c["verdicts"] == {
            "no OOM": True,
            "hog was promoted or fit": True,
            "impossible": False,
        }
        assert "kswapd_cpu_s_node0" in c["metrics"]
    df = pl.read_parquet(out / "metrics.parquet")
    assert set(df["policy"]) == {"v6.12", "v6.18"} and df.height > 10
    html = (out / "scoreboard.html").read_text()
    assert html.count("data:image/png;base64") == 2
    assert "✗" in (out / "scoreboard.md").read_text()
    cell_json = next(out.glob("cells/*/v6.12/cell.json"))
    mtime = cell_json.stat().st_mtime_ns
    assert scoreboard_main(["--scenarios", str(f), "--policies", "v6.12", "--out", str(out)]) == 0
    assert cell_json.stat().st_mtime_ns == mtime  # done cells are not run again


def test_a_crashing_worker_costs_only_its_cell(tmp_path: Path):
    f = _write(tmp_path)
    bad = tmp_path / "crash.py"
    bad.write_text(
        "import os\nfrom reclaimsim.policies.v6_12 import V612\n\n"
        "class Crash(V612):\n    name = 'crash'\n\n"
        "    def attach(self, k):\n        os._exit(3)\n"
    )
    out = tmp_path / "board"
    rc = scoreboard_main(
        ["--scenarios", str(f), "--policies", "v6.12", str(bad), "--out", str(out), "--jobs", "2"]
    )
    assert rc == 0
    cells = {c["policy"]: c for c in json.loads((out / "scoreboard.json").read_text())}
    assert cells["v6.12"]["status"] == "ok"
    assert cells[str(bad)]["status"] == "crashed"


def test_dask_executor_on_a_local_cluster(tmp_path: Path):
    """--executor dask sends cells to a Dask scheduler (here a local cluster)."""
    from distributed import LocalCluster

    f = _write(tmp_path)
    out = tmp_path / "board"
    with LocalCluster(
        n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        rc = scoreboard_main(
            [
                "--scenarios",
                str(f),
                "--policies",
                "v6.12",
                "--out",
                str(out),
                "--executor",
                "dask",
                "--address",
                cluster.scheduler_address,
            ]
        )
    assert rc == 0
    cells = json.loads((out / "scoreboard.json").read_text())
    assert cells[0]["status"] == "ok" and cells[0]["verdicts"]["no OOM"] is True
