"""Load a real-kernel recording (the shared ``realkernel`` harness CSVs) as a summary.json dict.

A recording folder (``realkernel/results/<kernel>-<mode>-<lru>-<scenario>/``) holds
``events.csv``, ``vmstat.csv``, ``zones.csv``, ``nodes.csv``, ``kthreads.csv``,
``numa_maps.csv``, ``trace_events.csv`` and ``info.json``. :func:`load_recording` turns it into
the ``summary.json`` contract of ``docs/outputs.md`` with ``source = "realkernel"``, so a
simulated run and a real one compare field by field.

Per-phase windows and sample choices mirror ``realkernel/compare.py`` exactly (the loader
reproduces every number in ``results/compare.md``):

- windows: ``p1`` PHASE1_START -> NODE0_HOPELESS/PHASE1_TIMEOUT, ``p1h`` NODE0_HOPELESS/
  PHASE1_TIMEOUT -> PHASE2_KILLED, ``p2`` PHASE2_KILLED -> PHASE2_END, ``p3`` W_READY ->
  PHASE3_END, ``p4`` R_READY -> PHASE4_END; the first occurrence of an event counts, and a
  window is emitted only if both its events exist;
- gauges (``unreclaimable``, ``MemFree``) and trace events: samples with ``start <= t <= end``;
- counters (``vmstat_delta``, kswapd CPU time): value at the last sample inside the window
  minus value at the last sample at or before the start (first sample if none); an empty
  window gives a delta of 0 (vmstat) or ``None`` (kswapd CPU).

Workloads (``numa_maps.csv``, one snapshot every 2nd sample, VMAs >= 256 pages) are read at the
last snapshot at or before the window end; only workloads in that snapshot count (a workload
that has exited is absent). Hot set rule, from the workload's ``START`` arguments (``hog -c
COLD_MB -H HOT_MB``; the hot VMA is a separate VMA at the lower address):

- hot and cold parts (W): the hot VMA is the workload's smallest VMA by its largest recorded
  size (compare.py's rule for "W's hot VMA");
- hot part only (the phase-1 hoggers): every VMA is hot;
- no hot part (R): no hot set, ``hot_pages_by_node`` is ``{}``.

Without a ``START`` event for the pid, W-like names fall back to the smallest-VMA rule,
``hog*`` to all-hot, anything else to no hot set.
"""

from __future__ import annotations

import csv
import json
import os
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

__all__ = [
    "SCENARIOS",
    "WINDOWS",
    "load_recording",
    "policy_for_kernel",
    "recordings_dir",
    "shared_dir",
]

#: info.json "scenario" -> simulator scenario name.
SCENARIOS: dict[str, str] = {"bug": "vm-2g1g-hopeless", "control": "vm-2g1g-control"}

#: (phase, start events, end events), first matching event wins; as in compare.py.
WINDOWS: list[tuple[str, tuple[str, ...], tuple[str, ...]]] = [
    ("p1", ("PHASE1_START",), ("NODE0_HOPELESS", "PHASE1_TIMEOUT")),
    ("p1h", ("NODE0_HOPELESS", "PHASE1_TIMEOUT"), ("PHASE2_KILLED",)),
    ("p2", ("PHASE2_KILLED",), ("PHASE2_END",)),
    ("p3", ("W_READY",), ("PHASE3_END",)),
    ("p4", ("R_READY",), ("PHASE4_END",)),
]

_Row = dict[str, str]


def policy_for_kernel(release: str) -> str:
    """Map a kernel release (``uname -r``) to the simulator policy that models it.

    6.1.x -> ``v6.1``, 6.12.x -> ``v6.12``, 6.18 and later (7.x included) -> ``v6.18``.
    Raises ValueError for a release without a policy.
    """
    m = re.match(r"^v?(\d+)\.(\d+)", release.strip())
    if not m:
        raise ValueError(f"cannot parse kernel release {release!r}")
    ver = (int(m.group(1)), int(m.group(2)))
    if ver == (6, 1):
        return "v6.1"
    if ver == (6, 12):
        return "v6.12"
    if ver >= (6, 18):
        return "v6.18"
    raise ValueError(f"no simulator policy for kernel {release!r} (have 6.1, 6.12, >= 6.18)")


def shared_dir() -> Path | None:
    """The shared folder: ``$RECLAIMSIM_SHARED``, else ``../shared`` next to the repo."""
    env = os.environ.get("RECLAIMSIM_SHARED")
    cands = [Path(env)] if env else []
    cands.append(Path(__file__).resolve().parents[1] / ".." / "shared")
    for c in cands:
        if c.is_dir():
            return c.resolve()
    return None


def recordings_dir() -> Path | None:
    """``<shared>/realkernel/results`` if it exists."""
    s = shared_dir()
    d = s / "realkernel" / "results" if s else None
    return d if d is not None and d.is_dir() else None


def _rows(path: Path) -> list[_Row]:
    if not path.exists():
        return []
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def _int(v: str | None) -> int:
    return int(v) if v else 0


def _in(rows: Iterable[_Row], t0: float, t1: float) -> list[_Row]:
    return [r for r in rows if t0 <= float(r["t"]) <= t1]


def _counter_pair(rows: list[_Row], t0: float, t1: float) -> tuple[_Row, _Row] | None:
    """(sample at the start, sample at the end) the way compare.py picks them."""
    if not rows:
        return None
    before = [r for r in rows if float(r["t"]) <= t0]
    win = _in(rows, t0, t1)
    a = before[-1] if before else rows[0]
    return a, (win[-1] if win else a)


def _lru(info: dict[str, Any]) -> str:
    v = str(info.get("lru_gen_enabled", "")).strip()
    if v:
        try:
            return "mglru" if int(v, 0) else "classic"
        except ValueError:
            pass
    return "mglru" if "rk.lrugen=y" in str(info.get("cmdline", "")) else "classic"


def _start_args(events: list[_Row]) -> dict[str, dict[str, float]]:
    """pid -> {"hot": MB, "cold": MB} from the START events' hog arguments."""
    out: dict[str, dict[str, float]] = {}
    for e in events:
        if e["event"] != "START":
            continue
        pid = re.search(r"\bpid=(\d+)", e["detail"])
        args = re.search(r"\bargs=(\S+)", e["detail"])
        if not pid or not args:
            continue
        a = args.group(1).split(",")
        opts = {a[i]: a[i + 1] for i in range(len(a) - 1) if a[i].startswith("-")}
        try:
            out[pid.group(1)] = {
                "hot": float(opts.get("-H", 0)),
                "cold": float(opts.get("-c", 0)),
            }
        except ValueError:
            continue
    return out


def _hot_vmas(nm: list[_Row], events: list[_Row]) -> dict[str, set[str]]:
    """pid -> the set of its hot VMAs (see the module docstring for the rule)."""
    sizes: dict[str, dict[str, int]] = {}
    names: dict[str, str] = {}
    for m in nm:
        v = sizes.setdefault(m["pid"], {})
        v[m["vma"]] = max(v.get(m["vma"], 0), _int(m["anon"]))
        names[m["pid"]] = m["name"]
    args = _start_args(events)
    out: dict[str, set[str]] = {}
    for pid, vmas in sizes.items():
        a = args.get(pid)
        if a is not None:
            has_hot, has_cold = a["hot"] > 0, a["cold"] > 0
        elif names[pid].startswith("hog"):
            has_hot, has_cold = True, False
        else:
            has_hot, has_cold = names[pid] == "W", True
        if not has_hot:
            out[pid] = set()
        elif not has_cold:
            out[pid] = set(vmas)
        else:
            out[pid] = {min(vmas, key=lambda k: vmas[k])} if len(vmas) > 1 else set()
    return out


def _snapshot_times(nm: list[_Row], vm: list[_Row]) -> list[str]:
    """Times of every numa_maps sampling cycle, including cycles with no rows.

    The sampler writes numa_maps every N-th sample; an empty cycle (no live workload) leaves
    no row, so the cycles are recovered from the vmstat sample clock.
    """
    seen = sorted({m["t"] for m in nm}, key=float)
    idx = {r["t"]: i for i, r in enumerate(vm)}
    pos = [idx[t] for t in seen if t in idx]
    if not pos or len(pos) != len(seen):
        return seen
    step = min((b - a for a, b in zip(pos, pos[1:], strict=False) if b > a), default=1)
    return [r["t"] for i, r in enumerate(vm) if i % step == pos[0] % step]


def _workloads(
    nm: list[_Row], cycles: list[str], hot: dict[str, set[str]], t1: float
) -> dict[str, Any]:
    """Pages per node of each workload at the last numa_maps snapshot at or before t1."""
    past = [t for t in cycles if float(t) <= t1]
    if not past:
        return {}
    snap = [m for m in nm if m["t"] == past[-1]]
    ncols = sorted(
        (c for c in (nm[0].keys() if nm else []) if re.fullmatch(r"N\d+", c)),
        key=lambda c: int(c[1:]),
    )
    out: dict[str, Any] = {}
    for m in snap:
        w = out.setdefault(
            m["name"],
            {"resident_pages_by_node": {c[1:]: 0 for c in ncols}, "hot_pages_by_node": {}},
        )
        hv = hot.get(m["pid"], set())
        for c in ncols:
            w["resident_pages_by_node"][c[1:]] += _int(m.get(c))
            if m["vma"] in hv:
                w["hot_pages_by_node"][c[1:]] = w["hot_pages_by_node"].get(c[1:], 0) + _int(
                    m.get(c)
                )
    return out


def _trace_extra(tr: list[_Row], nodes: list[str], t0: float, t1: float) -> dict[str, Any]:
    """Failed kswapd runs and who reset kswapd_failures (>= 7.0 tracepoints), per node."""
    extra: dict[str, Any] = {}
    win = _in(tr, t0, t1)
    for n in nodes:
        fails = [
            _int(e.get("failures"))
            for e in win
            if e["event"] == "mm_vmscan_kswapd_reclaim_fail" and e["nid"] == n
        ]
        clears: dict[str, int] = {}
        for e in win:
            if e["event"] == "mm_vmscan_kswapd_clear_hopeless" and e["nid"] == n:
                r = e.get("reason") or ""
                clears[r] = clears.get(r, 0) + 1
        extra[f"n{n}_kswapd_fails"] = len(fails)
        extra[f"n{n}_kswapd_failures_max"] = max(fails, default=0)
        extra[f"n{n}_fail_reset_by"] = dict(sorted(clears.items()))
    return extra


def load_recording(
    run_dir: Path,
    windows: list[tuple[str, tuple[str, ...], tuple[str, ...]]] | None = None,
    policy: Callable[[str], str | None] | None = None,
) -> dict[str, Any]:
    """Turn a recorded run folder into a dict in the summary.json contract (docs/outputs.md).

    ``windows`` replaces the recordings' fixed phase windows (name, start events, end events);
    ``policy`` maps the kernel release to a policy name (default :func:`policy_for_kernel`).

    Per phase, ``extra`` holds ``n<N>_kswapd_fails`` (failed kswapd runs),
    ``n<N>_kswapd_failures_max`` and ``n<N>_fail_reset_by`` (reason -> count) when the
    recording has the ``mm_vmscan_kswapd_clear_hopeless`` tracepoint (kernels >= 7.0), else
    ``{}``. Raises FileNotFoundError if events.csv or info.json is missing.
    """
    run_dir = Path(run_dir)
    for f in ("events.csv", "info.json"):
        if not (run_dir / f).is_file():
            raise FileNotFoundError(f"{run_dir}: no {f}, not a realkernel recording")
    info: dict[str, Any] = json.loads((run_dir / "info.json").read_text())
    ev = _rows(run_dir / "events.csv")
    vm = _rows(run_dir / "vmstat.csv")
    zs = _rows(run_dir / "zones.csv")
    nd = _rows(run_dir / "nodes.csv")
    kt = _rows(run_dir / "kthreads.csv")
    nm = _rows(run_dir / "numa_maps.csv")
    tr = _rows(run_dir / "trace_events.csv")
    has_clear = "kswapd_clear_hopeless" in str(info.get("trace_events", ""))

    nodes = sorted({r["node"] for r in nd} | {r["node"] for r in zs}, key=int)
    counters = [
        k
        for k in (vm[0].keys() if vm else [])
        if k not in ("t", "phase") and all(re.fullmatch(r"-?\d*", r[k] or "") for r in vm)
    ]
    hot = _hot_vmas(nm, ev)
    cycles = _snapshot_times(nm, vm)

    t_of: dict[str, float] = {}
    for e in ev:
        t_of.setdefault(e["event"], float(e["t"]))

    phases: list[dict[str, Any]] = []
    for name, starts, ends in windows or WINDOWS:
        t0 = next((t_of[s] for s in starts if s in t_of), None)
        t1 = next((t_of[s] for s in ends if s in t_of), None)
        if t0 is None or t1 is None:
            continue
        per_node: dict[str, Any] = {}
        for n in nodes:
            ur = [_int(z["unreclaimable"]) for z in _in(zs, t0, t1) if z["node"] == n]
            fr = [_int(r["MemFree_kB"]) / 1024 for r in _in(nd, t0, t1) if r["node"] == n]
            runs = sum(
                1
                for e in _in(tr, t0, t1)
                if e["event"] == "mm_vmscan_kswapd_wake" and e["nid"] == n
            )
            k = [r for r in kt if r["comm"] == f"kswapd{n}"]
            kp = _counter_pair(k, t0, t1)
            cpu = None
            if kp is not None and _in(k, t0, t1):
                a, b = kp
                ticks = _int(b["utime"]) + _int(b["stime"]) - _int(a["utime"]) - _int(a["stime"])
                cpu = round(ticks / 100, 2)
            per_node[n] = {
                "unreclaimable_min": min(ur, default=None),
                "unreclaimable_max": max(ur, default=None),
                "free_mb_min": min(fr, default=None),
                "free_mb_max": max(fr, default=None),
                "kswapd_runs": runs,
                "kswapd_cpu_s": cpu,
            }
        vp = _counter_pair(vm, t0, t1)
        delta = {c: _int(vp[1][c]) - _int(vp[0][c]) for c in counters} if vp else {}
        phases.append(
            {
                "name": name,
                "start_s": t0,
                "end_s": t1,
                "nodes": per_node,
                "vmstat_delta": delta,
                "workloads": _workloads(nm, cycles, hot, t1),
                "extra": _trace_extra(tr, nodes, t0, t1) if has_clear else {},
            }
        )

    kernel = str(info.get("kernel", ""))
    scen = str(info.get("scenario", ""))
    return {
        "scenario": SCENARIOS.get(scen, scen),
        "policy": (policy or policy_for_kernel)(kernel),
        "seed": None,
        "sim_seconds": max((float(r["t"]) for r in vm), default=0.0),
        "wall_seconds": None,
        "kernel": kernel,
        "source": "realkernel",
        "lru": _lru(info),
        "node1_mode": info.get("node1_mode"),
        "events": [{"t": float(e["t"]), "name": e["event"]} for e in ev],
        "phases": phases,
    }
