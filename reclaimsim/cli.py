"""``reclaimsim`` command line: run, validate, policies."""

from __future__ import annotations

import argparse
import json
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from rich.console import Console

from .kernel.state import MachineError
from .policies import POLICIES, PolicyError, get_policy
from .scenario import Scenario, ScenarioError, load_scenario

err = Console(stderr=True)
out = Console(width=None if sys.stdout.isatty() else 220)


def _run_one(args: tuple[str, list[str], str, int | None, str]) -> tuple[str, str]:
    """Worker: run one policy of a scenario and write its directory."""
    path, overrides, policy, seed, out_dir = args
    os.environ.setdefault("MPLBACKEND", "Agg")
    from .engine import Simulation
    from .output import write_run

    sc = load_scenario(path, overrides)
    sim = Simulation(sc, policy, seed).run()
    d = write_run(sim, Path(out_dir) / _policy_dirname(policy))
    return policy, str(d)


def _policy_dirname(policy: str) -> str:
    return Path(policy).stem if policy.endswith(".py") else policy


def cmd_run(ns: argparse.Namespace) -> int:
    try:
        sc: Scenario = load_scenario(ns.scenario, ns.set)
        policies = ns.policy or sc.policies
        for p in policies:
            get_policy(p)
    except (ScenarioError, PolicyError) as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False)
        return 2
    out_dir = Path(ns.out or Path("runs") / sc.name)
    made_out_dir = not out_dir.exists()
    jobs = [(ns.scenario, ns.set or [], p, ns.seed, str(out_dir)) for p in policies]
    results: dict[str, str] = {}
    try:
        with err.status(f"running {sc.name} under {', '.join(policies)}"):
            if ns.jobs > 1 and len(jobs) > 1:
                with ProcessPoolExecutor(max_workers=ns.jobs) as ex:
                    for policy, d in ex.map(_run_one, jobs):
                        results[policy] = d
            else:
                for j in jobs:
                    policy, d = _run_one(j)
                    results[policy] = d
    except MachineError as exc:
        # a machine the simulator cannot hold (found while building it or when a workload
        # starts): one message, and no half-written run folder left behind
        _remove_partial(out_dir, made_out_dir, policies)
        err.print(f"[red]error:[/red] {ns.scenario}: {exc}", highlight=False)
        return 2
    from .report.compare import rich_table, write_report

    run_dirs = [Path(results[p]) for p in policies]
    recorded = _recorded_for(sc.name, ns.compare_recorded)
    md, html = write_report(out_dir, run_dirs, recorded=recorded)
    summaries = [json.loads((d / "summary.json").read_text()) for d in run_dirs]
    out.print(rich_table(summaries + recorded))
    out.print(f"report: {md}  {html}")
    return 0


def _remove_partial(out_dir: Path, made_out_dir: bool, policies: list[str]) -> None:
    """Remove what a failed ``run`` wrote: its policies' folders, and ``out_dir`` if the run
    created it (each policy folder is renamed into place whole, so none is half-written)."""
    import shutil

    if made_out_dir:
        shutil.rmtree(out_dir, ignore_errors=True)
        return
    for p in policies:
        shutil.rmtree(out_dir / _policy_dirname(p), ignore_errors=True)


def _recorded_for(scenario_name: str, enabled: bool) -> list[dict]:
    """Recorded real-kernel runs of this scenario, to show beside the simulated ones."""
    if not enabled:
        return []
    try:
        from .realkernel import load_recording, recordings_dir
    except ImportError:
        return []
    rd = recordings_dir()
    if rd is None:
        return []
    outl = []
    for d in sorted(rd.iterdir()):
        if (d / "events.csv").exists() and (d / "info.json").exists():
            try:
                rec = load_recording(d)
            except Exception:  # noqa: BLE001 - a broken recording must not stop the report
                continue
            if rec.get("scenario") == scenario_name:
                outl.append(rec)
    return outl


def cmd_policies(ns: argparse.Namespace) -> int:
    for name, cls in POLICIES.items():
        out.print(f"{name:14s} {cls.description}")
    return 0


def cmd_validate(ns: argparse.Namespace, rest: list[str]) -> int:
    if rest and rest[0] == "--all":
        from .fidelity import validate_all_main

        return validate_all_main(rest[1:])
    from .validate import validate_main

    return validate_main(rest)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    ap = argparse.ArgumentParser(
        prog="reclaimsim",
        description="Simulate Linux reclaim and NUMA tiering under switchable kernel policies.",
    )
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="run a scenario under one or more policies")
    r.add_argument("scenario")
    r.add_argument("--policy", action="append", help="policy name or path/to/policy.py (repeat)")
    r.add_argument("--out", help="output directory (default runs/<scenario>)")
    r.add_argument("--seed", type=int, default=None)
    r.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="override a scenario field, e.g. --set machine.swap=8GiB",
    )
    r.add_argument(
        "--jobs",
        type=int,
        default=min(2, os.cpu_count() or 1),
        help="policies run in parallel processes (same results as serial)",
    )
    r.add_argument(
        "--no-recorded",
        dest="compare_recorded",
        action="store_false",
        help="do not add recorded real-kernel runs of the scenario to the report",
    )
    sub.add_parser("policies", help="list the built-in policies")
    sub.add_parser("validate", help="compare a simulated run with a recorded one", add_help=False)
    sub.add_parser(
        "scoreboard", help="all scenarios x policies: verdicts and metrics", add_help=False
    )
    sub.add_parser(
        "vm", help="run a scenario on a real kernel in QEMU (docs/vm.md)", add_help=False
    )
    if argv and argv[0] == "vm":
        from .vm.cli import vm_main

        return vm_main(argv[1:])
    if argv and argv[0] == "validate":
        return cmd_validate(argparse.Namespace(), argv[1:])
    if argv and argv[0] == "scoreboard":
        from .scoreboard import scoreboard_main

        return scoreboard_main(argv[1:])
    ns = ap.parse_args(argv)
    if ns.cmd == "run":
        return cmd_run(ns)
    if ns.cmd == "policies":
        return cmd_policies(ns)
    return 2


if __name__ == "__main__":
    sys.exit(main())
