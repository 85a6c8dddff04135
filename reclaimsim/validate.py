"""Fidelity of a simulated run against a real-kernel recording, phase by phase.

Checks, for every phase present in both runs (``compare_runs``):

- ``exact``: per node ``unreclaimable_min`` and ``unreclaimable_max`` must be equal (the
  hopeless / not-hopeless transitions);
- ``zero``: per node ``kswapd_runs`` and the ``oom_kill`` delta must agree on zero vs non-zero;
- ``ratio``: the deltas of :data:`RATIO_COUNTERS` must satisfy ``1/tol <= sim/real <= tol``.
  Near-zero rule: a count below the floor ``max(100, 1% of the largest per-phase delta of that
  counter in the real run)`` is "near zero"; near zero vs near zero is ok (this includes both
  zero), near zero vs not near zero fails, otherwise the ratio decides;
- ``placement``: the share of W's hot pages on node 0 (``hot_pages_by_node``), in percent,
  must be within ``placement_tol_pts`` points.

A check whose value the real run does not have (no samples in the window, a counter the kernel
does not export) is reported as ``skipped`` and passes; a value the real run has but the
simulated one lacks fails (``missing``).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from reclaimsim.realkernel import load_recording

__all__ = [
    "RATIO_COUNTERS",
    "FidelityReport",
    "FidelityRow",
    "RunLoadError",
    "compare_runs",
    "load_run",
    "validate_main",
]

#: vmstat counters compared as ratios sim/real.
RATIO_COUNTERS: tuple[str, ...] = (
    "pgscan_kswapd",
    "pgsteal_kswapd",
    "pgdemote_kswapd",
    "pgdemote_direct",
    "pgpromote_candidate",
    "pgpromote_success",
    "numa_hint_faults",
)
#: workloads whose hot-set placement is compared.
PLACEMENT_WORKLOADS: tuple[str, ...] = ("W",)
#: absolute part of the near-zero floor.
NEAR_ZERO_MIN = 100
#: relative part of the near-zero floor (of the counter's largest real per-phase delta).
NEAR_ZERO_FRAC = 0.01


class RunLoadError(ValueError):
    """A path that is not a simulated run, a summary.json or a recording."""


@dataclass(frozen=True)
class FidelityRow:
    """One check: ``kind`` is exact, zero, ratio, placement, missing or skipped."""

    phase: str
    check: str
    sim: Any
    real: Any
    ok: bool
    kind: str
    note: str = ""


@dataclass
class FidelityReport:
    """The rows of all checks; ``ok`` if every row is."""

    rows: list[FidelityRow] = field(default_factory=list)
    sim_label: str = "sim"
    real_label: str = "real"
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True if every check passed."""
        return all(r.ok for r in self.rows)

    @property
    def failures(self) -> list[FidelityRow]:
        """The rows that failed."""
        return [r for r in self.rows if not r.ok]

    def to_markdown(self) -> str:
        """The report as a markdown table (plus notes)."""
        lines = [
            f"Fidelity: {self.sim_label} vs {self.real_label}: "
            + ("OK" if self.ok else f"FAIL ({len(self.failures)} of {len(self.rows)} checks)"),
            "",
            "| phase | check | sim | real | ok | kind | note |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in self.rows:
            cells = [r.phase, r.check, _fmt(r.sim), _fmt(r.real), "yes" if r.ok else "NO"]
            lines.append("| " + " | ".join(cells + [r.kind, r.note]) + " |")
        lines += [f"- {n}" for n in self.notes]
        return "\n".join(lines) + "\n"

    def to_rich_table(self) -> Table:
        """The report as a rich Table (failed rows in red)."""
        t = Table(title=f"Fidelity: {self.sim_label} vs {self.real_label}")
        for c in ("phase", "check", "sim", "real", "ok", "kind", "note"):
            t.add_column(c, justify="right" if c in ("sim", "real") else "left")
        for r in self.rows:
            t.add_row(
                r.phase,
                r.check,
                _fmt(r.sim),
                _fmt(r.real),
                "ok" if r.ok else "FAIL",
                r.kind,
                r.note,
                style=None if r.ok else "red",
            )
        return t


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.1f}" if abs(v) >= 10 else f"{v:.3g}"
    return str(v)


def _label(run: dict[str, Any]) -> str:
    src = run.get("source", "?")
    name = run.get("kernel") if src == "realkernel" else run.get("policy")
    return f"{src} {name} {run.get('scenario', '')}".strip()


def _floors(real: dict[str, Any]) -> dict[str, float]:
    """Near-zero floor per ratio counter from the real run's per-phase deltas."""
    out = {}
    for c in RATIO_COUNTERS:
        peak = max((abs(p.get("vmstat_delta", {}).get(c) or 0) for p in real["phases"]), default=0)
        out[c] = max(NEAR_ZERO_MIN, NEAR_ZERO_FRAC * peak)
    return out


def _hot_share(phase: dict[str, Any], workload: str) -> float | None:
    """Percent of the workload's hot pages on node 0, None without a (non-empty) hot set."""
    w = phase.get("workloads", {}).get(workload)
    if not w:
        return None
    hot = {str(k): v for k, v in (w.get("hot_pages_by_node") or {}).items()}
    total = sum(hot.values())
    return 100.0 * hot.get("0", 0) / total if total else None


def _compare_phase(
    sp: dict[str, Any],
    rp: dict[str, Any],
    floors: dict[str, float],
    ratio_tol: float,
    placement_tol_pts: float,
) -> list[FidelityRow]:
    name = rp["name"]
    rows: list[FidelityRow] = []

    def add(check: str, sim: Any, real: Any, ok: bool, kind: str, note: str = "") -> None:
        rows.append(FidelityRow(name, check, sim, real, ok, kind, note))

    def absent(check: str, sim: Any, real: Any) -> bool:
        if real is None:
            add(check, sim, real, True, "skipped", "not in the real run")
            return True
        if sim is None:
            add(check, sim, real, False, "missing", "not in the simulated run")
            return True
        return False

    s_nodes = {str(k): v for k, v in sp.get("nodes", {}).items()}
    for n, rn in sorted(rp.get("nodes", {}).items(), key=lambda kv: int(kv[0])):
        sn = s_nodes.get(str(n), {})
        for key in ("unreclaimable_min", "unreclaimable_max"):
            check = f"node{n} {key}"
            if not absent(check, sn.get(key), rn.get(key)):
                add(check, sn[key], rn[key], sn[key] == rn[key], "exact")
        check = f"node{n} kswapd_runs"
        if not absent(check, sn.get("kswapd_runs"), rn.get("kswapd_runs")):
            s, r = sn["kswapd_runs"], rn["kswapd_runs"]
            add(check, s, r, (s == 0) == (r == 0), "zero", "zero vs non-zero")

    sd, rd = sp.get("vmstat_delta", {}), rp.get("vmstat_delta", {})
    if not absent("oom_kill", sd.get("oom_kill"), rd.get("oom_kill")):
        s, r = sd["oom_kill"], rd["oom_kill"]
        add("oom_kill", s, r, (s == 0) == (r == 0), "zero", "zero vs non-zero")

    for c in RATIO_COUNTERS:
        if absent(c, sd.get(c), rd.get(c)):
            continue
        s, r, fl = sd[c], rd[c], floors[c]
        s_nz, r_nz = abs(s) < fl, abs(r) < fl
        if s_nz and r_nz:
            add(c, s, r, True, "ratio", f"both near zero (< {fl:.0f})")
        elif s_nz or r_nz:
            add(c, s, r, False, "ratio", f"{'sim' if s_nz else 'real'} near zero (< {fl:.0f})")
        else:
            q = s / r
            ok = 1 / ratio_tol <= q <= ratio_tol
            add(c, s, r, ok, "ratio", f"sim/real {q:.2f} (tol {ratio_tol:g}x)")

    for w in PLACEMENT_WORKLOADS:
        check = f"{w} hot on node0 %"
        r_share, s_share = _hot_share(rp, w), _hot_share(sp, w)
        if r_share is None and s_share is None:
            continue
        if not absent(check, s_share, r_share):
            assert s_share is not None and r_share is not None
            d = s_share - r_share
            add(
                check,
                s_share,
                r_share,
                abs(d) <= placement_tol_pts,
                "placement",
                f"{d:+.1f} pts (tol {placement_tol_pts:g})",
            )
    return rows


def compare_runs(
    sim: dict[str, Any],
    real: dict[str, Any],
    ratio_tol: float = 1.5,
    placement_tol_pts: float = 15.0,
) -> FidelityReport:
    """Compare two summary.json dicts phase by phase (phases present in both, real's order)."""
    report = FidelityReport(sim_label=_label(sim), real_label=_label(real))
    if sim.get("scenario") != real.get("scenario"):
        report.notes.append(
            f"scenarios differ: {sim.get('scenario')!r} vs {real.get('scenario')!r}"
        )
    s_phases = {p["name"]: p for p in sim.get("phases", [])}
    floors = _floors(real)
    common = [p for p in real.get("phases", []) if p["name"] in s_phases]
    only = sorted(set(s_phases) ^ {p["name"] for p in real.get("phases", [])})
    if only:
        report.notes.append("phases not in both runs (not compared): " + ", ".join(only))
    for rp in common:
        report.rows += _compare_phase(
            s_phases[rp["name"]], rp, floors, ratio_tol, placement_tol_pts
        )
    return report


def load_run(path: Path | str) -> dict[str, Any]:
    """Load a run: a summary.json, a run dir holding one, or a realkernel recording folder.

    A directory with no summary.json but exactly one ``<policy>/summary.json`` below it (the
    layout ``reclaimsim run --out DIR`` writes) is accepted too. Raises RunLoadError.
    """
    p = Path(path)
    if not p.exists():
        raise RunLoadError(f"{p}: no such file or directory")
    if p.is_dir():
        # a `reclaimsim vm run` folder has both the CSVs and the summary.json it derived from
        # them with the scenario's own phase windows: use the summary (the CSVs alone only
        # know the shared harness's fixed storyboard windows p1..p4)
        if (
            (p / "events.csv").is_file()
            and (p / "info.json").is_file()
            and not (p / "summary.json").is_file()
        ):
            try:
                return load_recording(p)
            except (OSError, ValueError, KeyError) as e:
                raise RunLoadError(f"{p}: cannot read recording: {e}") from e
        if (p / "summary.json").is_file():
            p = p / "summary.json"
        else:
            subs = sorted(q.parent.name for q in p.glob("*/summary.json"))
            if len(subs) != 1:
                hint = f" (several policies: {', '.join(subs)}; pass one)" if subs else ""
                raise RunLoadError(f"{p}: no summary.json and not a recording{hint}")
            p = p / subs[0] / "summary.json"
    try:
        data = json.loads(p.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise RunLoadError(f"{p}: cannot read summary: {e}") from e
    if not isinstance(data, dict) or not isinstance(data.get("phases"), list):
        raise RunLoadError(f"{p}: not a summary.json (no 'phases' list)")
    return data


def _error(msg: str) -> None:
    print(f"reclaimsim validate: error: {msg}", file=sys.stderr)


def validate_main(argv: list[str]) -> int:
    """CLI ``reclaimsim validate SIM_DIR REAL_DIR``: 0 all ok, 1 a check failed, 2 bad input."""
    ap = argparse.ArgumentParser(
        prog="reclaimsim validate",
        description="Compare a simulated run with a real-kernel recording, phase by phase.",
    )
    ap.add_argument("sim", metavar="SIM_DIR", help="simulated run dir or summary.json")
    ap.add_argument("real", metavar="REAL_DIR", help="realkernel recording (or a summary)")
    ap.add_argument("--ratio-tol", type=float, default=1.5, help="counter ratio tolerance (x)")
    ap.add_argument(
        "--placement-tol", type=float, default=15.0, help="hot-set placement tolerance (points)"
    )
    try:
        args = ap.parse_args(argv)
    except SystemExit as e:  # argparse already printed usage / help
        return e.code if isinstance(e.code, int) else 2
    if args.ratio_tol < 1 or args.placement_tol < 0:
        _error("--ratio-tol must be >= 1 and --placement-tol >= 0")
        return 2
    try:
        sim, real = load_run(args.sim), load_run(args.real)
        report = compare_runs(sim, real, args.ratio_tol, args.placement_tol)
    except RunLoadError as e:
        _error(str(e))
        return 2
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        _error(f"malformed summary: {e!r}")
        return 2
    if not report.rows:
        _error(f"no phases in common between {args.sim} and {args.real}")
        return 2
    out = Console(file=sys.stdout, width=None if sys.stdout.isatty() else 160)
    out.print(report.to_rich_table())
    for n in report.notes:
        out.print(f"note: {n}", markup=False)
    bad = report.failures
    if bad:
        names = ", ".join(f"{r.phase} {r.check}" for r in bad)
        msg = f"fidelity FAIL: {len(bad)} of {len(report.rows)} checks: {names}"
        out.print(msg, markup=False, soft_wrap=True)
        return 1
    out.print(f"fidelity OK: {len(report.rows)} checks", markup=False)
    return 0
