"""``reclaimsim scoreboard``: every scenario under every policy, verdicts and metrics.

Cells run in parallel (a local process pool by default, a Dask cluster with ``--executor
dask --address ...``); a cell whose directory already holds a finished ``cell.json`` for the
same scenario file is not run again, and a worker that crashes costs only its own cell.
Outputs: ``scoreboard.md``, a self-contained ``scoreboard.html`` with every cell's timeline,
``scoreboard.json`` (a list of ``{scenario, policy, verdicts, metrics}``) and
``metrics.parquet`` (one row per cell and metric).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import html
import json
import os
import sys
import time
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import polars as pl
from rich.console import Console
from rich.progress import Progress

from .objections import objection_rows

REPO = Path(__file__).resolve().parents[1]

Task = tuple[str, str, int | None, str]  # scenario path, policy, seed, cell dir


def _digest(path: str, policy: str) -> str:
    h = hashlib.sha256(Path(path).read_bytes())
    p = Path(policy)
    if p.suffix == ".py" and p.is_file():
        h.update(p.read_bytes())
    h.update(policy.encode())
    return h.hexdigest()[:16]


def run_cell(task: Task) -> dict[str, Any]:
    """Run one scenario x policy, write its run directory and ``cell.json``; return the cell."""
    os.environ.setdefault("MPLBACKEND", "Agg")
    path, policy, seed, cell_dir = task
    from .engine import Simulation
    from .metrics import compute, evaluate, verdict_env
    from .objections import trace_metrics
    from .output import summary, write_run
    from .scenario import load_scenario

    t0 = time.perf_counter()
    sc = load_scenario(path)
    sim = Simulation(sc, policy, seed).run()
    run_dir = write_run(sim, Path(cell_dir) / "run")
    summ = summary(sim)
    mets = compute(summ, sim.samples, sim.k.tiers.preferred, sim.k.swap.total_pages > 0)
    mets.update(trace_metrics(sim.k.trace.events))
    env = verdict_env(summ, mets, sim.k.trace.events)
    cell = {
        "scenario": sc.name,
        "policy": sim.policy.name,
        "status": "ok",
        "verdicts": evaluate(sc.verdicts, env),
        "metrics": mets,
        "wall_s": round(time.perf_counter() - t0, 3),
        "digest": _digest(path, policy),
        "run_dir": str(run_dir),
    }
    Path(cell_dir, "cell.json").write_text(json.dumps(cell, indent=1))
    return cell


def _cell_dir(out: Path, scenario: str, policy: str) -> Path:
    name = Path(policy).stem if policy.endswith(".py") else policy
    return out / "cells" / Path(scenario).stem / name


def _done(task: Task) -> dict[str, Any] | None:
    f = Path(task[3]) / "cell.json"
    if not f.exists():
        return None
    try:
        cell = json.loads(f.read_text())
    except json.JSONDecodeError:
        return None
    if cell.get("status") == "ok" and cell.get("digest") == _digest(task[0], task[1]):
        return cell
    return None


def _failed(task: Task, why: str) -> dict[str, Any]:
    return {
        "scenario": Path(task[0]).stem,
        "policy": task[1],
        "status": why,
        "verdicts": {},
        "metrics": {},
    }


def run_local(tasks: list[Task], jobs: int, progress: Progress) -> list[dict[str, Any]]:
    """Run tasks in a process pool; after a worker crash, the rest run one per fresh process so
    the crashing cell is identified and the others still finish."""
    bar = progress.add_task("cells", total=len(tasks))
    results: dict[int, dict[str, Any]] = {}
    ctx = get_context("spawn")
    pending = list(range(len(tasks)))
    crashed = False
    try:
        with ProcessPoolExecutor(max_workers=jobs, mp_context=ctx) as ex:
            futs: dict[Future[dict[str, Any]], int] = {
                ex.submit(run_cell, tasks[i]): i for i in pending
            }
            for fut in as_completed(futs):
                i = futs[fut]
                try:
                    results[i] = fut.result()
                except BrokenProcessPool:
                    crashed = True
                    continue
                except Exception as exc:  # noqa: BLE001 - a failing cell must not stop the board
                    results[i] = _failed(tasks[i], f"error: {exc}")
                progress.advance(bar)
    except BrokenProcessPool:
        crashed = True
    if crashed:
        for i in [j for j in range(len(tasks)) if j not in results]:
            with ProcessPoolExecutor(max_workers=1, mp_context=ctx) as ex:
                try:
                    results[i] = ex.submit(run_cell, tasks[i]).result()
                except BrokenProcessPool:
                    results[i] = _failed(tasks[i], "crashed")
                except Exception as exc:  # noqa: BLE001
                    results[i] = _failed(tasks[i], f"error: {exc}")
            progress.advance(bar)
    return [results[i] for i in range(len(tasks))]


def run_dask(tasks: list[Task], address: str, progress: Progress) -> list[dict[str, Any]]:
    """Run tasks on a Dask cluster (``distributed``); a lost worker fails only its cells."""
    from distributed import Client
    from distributed import as_completed as das_completed

    bar = progress.add_task("cells", total=len(tasks))
    results: dict[int, dict[str, Any]] = {}
    with Client(address) as client:
        futs = {client.submit(run_cell, t, pure=False, retries=1): i for i, t in enumerate(tasks)}
        for fut in das_completed(list(futs)):
            i = futs[fut]
            try:
                results[i] = fut.result()
            except Exception as exc:  # noqa: BLE001
                results[i] = _failed(tasks[i], f"error: {exc}")
            progress.advance(bar)
    return [results[i] for i in range(len(tasks))]


def _png(cell: dict[str, Any]) -> str:
    p = Path(cell.get("run_dir", "")) / "timeline.png"
    if not p.is_file():
        return ""
    return base64.b64encode(p.read_bytes()).decode()


def write_outputs(out: Path, cells: list[dict[str, Any]], policies: list[str]) -> None:
    """scoreboard.json, metrics.parquet, scoreboard.md, scoreboard.html."""
    pols = [Path(p).stem if p.endswith(".py") else p for p in policies]
    names = {c["policy"] for c in cells}
    pols = [p for p in dict.fromkeys([c["policy"] for c in cells]) if p in names] or pols
    (out / "scoreboard.json").write_text(
        json.dumps(
            [
                {k: c[k] for k in ("scenario", "policy", "status", "verdicts", "metrics")}
                for c in cells
            ],
            indent=1,
        )
    )
    rows = [
        {"scenario": c["scenario"], "policy": c["policy"], "metric": k, "value": float(v)}
        for c in cells
        for k, v in c["metrics"].items()
    ]
    pl.DataFrame(
        rows,
        schema={"scenario": pl.Utf8, "policy": pl.Utf8, "metric": pl.Utf8, "value": pl.Float64},
    ).write_parquet(out / "metrics.parquet")
    by = {(c["scenario"], c["policy"]): c for c in cells}
    scenarios = list(dict.fromkeys(c["scenario"] for c in cells))
    md = ["# reclaimsim scoreboard", "", "Verdicts (✓ pass, ✗ fail) per scenario and policy.", ""]
    md.append("| scenario | verdict | " + " | ".join(pols) + " |")
    md.append("|---|---|" + "---|" * len(pols))
    for s in scenarios:
        vnames = list(
            dict.fromkeys(v for p in pols for v in by.get((s, p), {}).get("verdicts", {}))
        )
        for p in pols:
            st = by.get((s, p), {}).get("status", "missing")
            if st != "ok":
                vnames = vnames or [f"({st})"]
        for v in vnames:
            cellstr = []
            for p in pols:
                c = by.get((s, p))
                if c is None or c["status"] != "ok":
                    cellstr.append(c["status"] if c else "-")
                else:
                    cellstr.append("✓" if c["verdicts"].get(v) else "✗")
            md.append(f"| {s} | {v} | " + " | ".join(cellstr) + " |")
    md += ["", "## Metrics", ""]
    keys = [
        "hopeless_while_reclaimable_s_node0",
        "kswapd_cpu_unreclaimable_s_node0",
        "kswapd_cpu_s_node0",
        "kswapd_runs_node0",
        "direct_reclaim_stalls",
        "oom_kills",
        "pgpromote_success",
        "pgdemote",
        "hot_path_ops_per_alloc",
    ]
    md.append("| scenario | policy | " + " | ".join(keys) + " |")
    md.append("|---|---|" + "---|" * len(keys))
    for s in scenarios:
        for p in pols:
            c = by.get((s, p))
            if c is None:
                continue
            vals = [f"{c['metrics'].get(k, '')}" for k in keys]
            md.append(f"| {s} | {p} | " + " | ".join(vals) + " |")
    obj = objection_rows(cells)
    if obj:
        md += ["", "## Reviewers' objections, as numbers", ""]
        md.append("| reviewer | claim | scenario | policy (baseline) | metric | value (baseline) |")
        md.append("|---|---|---|---|---|---|")
        for r in obj:
            md.append(
                f"| {r['reviewer']} | {r['claim']} | {r['scenario']} | {r['policy']} "
                f"({r['baseline']}) | {r['metric']}: {r['reads']} | {r['value']} "
                f"({r['baseline_value']}) |"
            )
    (out / "scoreboard.md").write_text("\n".join(md) + "\n")
    h = [
        "<!doctype html><html><head><meta charset='utf-8'><title>reclaimsim scoreboard</title>",
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:3px 8px}.ok{color:#070}.bad{color:#b00}"
        "img{max-width:100%}</style></head><body><h1>reclaimsim scoreboard</h1>",
    ]
    h.append(
        "<table><tr><th>scenario</th><th>verdict</th>"
        + "".join(f"<th>{html.escape(p)}</th>" for p in pols)
        + "</tr>"
    )
    for s in scenarios:
        vnames = list(
            dict.fromkeys(v for p in pols for v in by.get((s, p), {}).get("verdicts", {}))
        )
        for v in vnames:
            tds = []
            for p in pols:
                c = by.get((s, p))
                ok = c is not None and c["status"] == "ok" and c["verdicts"].get(v)
                tds.append(f"<td class='{'ok' if ok else 'bad'}'>{'✓' if ok else '✗'}</td>")
            h.append(f"<tr><td>{html.escape(s)}</td><td>{html.escape(v)}</td>{''.join(tds)}</tr>")
    h.append("</table>")
    if obj:
        h.append(
            "<h2>Reviewers' objections, as numbers</h2><table><tr><th>reviewer</th>"
            "<th>claim</th><th>scenario</th><th>policy (baseline)</th><th>metric</th>"
            "<th>value (baseline)</th></tr>"
        )
        for r in obj:
            h.append(
                "<tr>"
                + "".join(
                    f"<td>{html.escape(str(x))}</td>"
                    for x in (
                        r["reviewer"],
                        r["claim"],
                        r["scenario"],
                        f"{r['policy']} ({r['baseline']})",
                        f"{r['metric']}: {r['reads']}",
                        f"{r['value']} ({r['baseline_value']})",
                    )
                )
                + "</tr>"
            )
        h.append("</table>")
    for c in cells:
        h.append(f"<h2>{html.escape(c['scenario'])} — {html.escape(c['policy'])}</h2>")
        h.append(f"<p>status: {html.escape(c['status'])}</p>")
        png = _png(c)
        if png:
            h.append(f"<img src='data:image/png;base64,{png}' alt='timeline'>")
    h.append("</body></html>")
    (out / "scoreboard.html").write_text("\n".join(h))


def scoreboard_main(argv: list[str]) -> int:
    """CLI: ``reclaimsim scoreboard [--scenarios F...] [--policies P...] [--out DIR]``."""
    from .policies import POLICIES, PolicyError, get_policy
    from .scenario import ScenarioError, load_scenario

    ap = argparse.ArgumentParser(prog="reclaimsim scoreboard")
    ap.add_argument(
        "--scenarios",
        nargs="+",
        default=None,
        help="scenario files (default: every scenario with verdicts in scenarios/)",
    )
    ap.add_argument("--policies", nargs="+", default=None, help="default: all built-in")
    ap.add_argument("--out", type=Path, default=Path("runs/scoreboard"))
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1))
    ap.add_argument("--executor", choices=["local", "dask"], default="local")
    ap.add_argument("--address", default=None, help="Dask scheduler address (with --executor dask)")
    args = ap.parse_args(argv)
    err = Console(stderr=True)
    files = args.scenarios
    if files is None:
        files = [
            str(f)
            for f in sorted((REPO / "scenarios").glob("*.toml"))
            if "verdicts" in f.read_text() and "[[verdicts]]" in f.read_text()
        ]
    policies = args.policies or list(POLICIES)
    try:
        for f in files:
            load_scenario(f)
        for p in policies:
            get_policy(p)
    except (ScenarioError, PolicyError) as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False)
        return 2
    if args.executor == "dask" and not args.address:
        err.print("[red]error:[/red] --executor dask needs --address tcp://HOST:PORT")
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    tasks: list[Task] = [
        (f, p, args.seed, str(_cell_dir(args.out, f, p))) for f in files for p in policies
    ]
    cells: list[dict[str, Any] | None] = [_done(t) for t in tasks]
    todo = [i for i, c in enumerate(cells) if c is None]
    err.print(f"{len(tasks)} cells, {len(tasks) - len(todo)} already done")
    for i in todo:
        Path(tasks[i][3]).mkdir(parents=True, exist_ok=True)
    with Progress(console=err) as progress:
        sub = [tasks[i] for i in todo]
        if args.executor == "dask":
            res = run_dask(sub, args.address, progress)
        else:
            res = run_local(sub, args.jobs, progress)
    for i, c in zip(todo, res, strict=True):
        cells[i] = c
    final = [c for c in cells if c is not None]
    write_outputs(args.out, final, policies)
    Console(width=None if sys.stdout.isatty() else 200).print(
        (args.out / "scoreboard.md").read_text(), markup=False
    )
    return 0
