"""Shared helpers of the bench scripts: the full-scale scenario at a scale, page operations,
per-phase transitions, peak RSS."""

from __future__ import annotations

import copy
import math
import re
import resource
import statistics
import sys
import time
import tomllib
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from reclaimsim.engine import Simulation  # noqa: E402
from reclaimsim.output import summary  # noqa: E402
from reclaimsim.scenario import Scenario, load_scenario, scenario_from_dict  # noqa: E402, F401

FULLSCALE = REPO / "scenarios" / "byungchul-2024-hopeless-node.toml"
VMSIZE = REPO / "scenarios" / "vm-2g1g-hopeless.toml"

_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*(TiB|GiB|MiB|KiB)")
_UNIT = {"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40}


def _scale_size(value: Any, scale: int) -> Any:
    """Divide every size literal in a size or size expression by ``scale`` (rounded down to
    4 KiB pages, at least one page); node references (``node0.free``) scale by themselves."""
    if isinstance(value, int):
        return max(4096, value // scale // 4096 * 4096)
    if not isinstance(value, str):
        return value

    def sub(m: re.Match) -> str:
        b = int(float(m.group(1)) * _UNIT[m.group(2)]) // scale
        return f"{max(1, b // 4096) * 4}KiB"

    return _SIZE.sub(sub, value)


def fullscale_path() -> Path:
    return FULLSCALE


def scaled_scenario(scale: int = 1, path: Path | None = None, frames: bool = False) -> Scenario:
    """The full-scale seed scenario with every memory size divided by ``scale``.

    ``frames=False`` (the default, what the benches and tests use): only sizes change; costs
    stay per 4 KiB page, so a smaller machine faults in and scans proportionally faster.
    ``frames=True``: each frame stands for ``scale`` base pages (design-notes.md, "scale
    knob"): per-page costs are multiplied by ``scale`` and min_free_kbytes (the full
    machine's value), the NUMA scan size and the promotion rate limit divided by it, so the
    timeline (fault-in durations, kswapd CPU, touch rates) is the full-scale one.
    """
    data = tomllib.loads((path or fullscale_path()).read_text())
    if scale == 1:
        return scenario_from_dict(data)
    full = scenario_from_dict(data)
    d = copy.deepcopy(data)
    d["name"] = f"{d['name']}@1/{scale}"
    for node in d["machine"]["nodes"]:
        if "size" in node:
            node["size"] = _scale_size(node["size"], scale)
        for z in node.get("zones", []):
            if "size" in z:
                z["size"] = _scale_size(z["size"], scale)
            if "managed_pages" in z:
                z["managed_pages"] = max(1, z["managed_pages"] // scale)
    if "swap" in d["machine"]:
        d["machine"]["swap"] = _scale_size(d["machine"]["swap"], scale)
    for w in d.get("workloads", {}).values():
        for key in ("hot", "cold"):
            if key in w:
                w[key] = _scale_size(w[key], scale)
    if not frames:
        return scenario_from_dict(d)
    costs = d["machine"].setdefault("costs", {})
    for key in ("fault_us", "scan_us", "migrate_us", "hint_fault_us", "free_us", "pte_scan_us",
                "touch_us"):  # fmt: skip
        costs[key] = float(getattr(full.machine.costs, key)) * scale
    sysctl = d.setdefault("sysctl", {})
    mfk = full.sysctl.min_free_kbytes
    if mfk is None:
        lowmem = sum(
            z.pages() for n in full.machine.nodes for z in n.zone_list() if z.type != "Movable"
        )
        mfk = max(128, min(262144, math.isqrt(lowmem * 4 * 16)))  # calculate_min_free_kbytes
    sysctl["min_free_kbytes"] = max(128, mfk // scale)
    sysctl["numa_balancing_scan_size_mb"] = max(
        1, round(full.sysctl.numa_balancing_scan_size_mb / scale)
    )
    sysctl["numa_balancing_promote_rate_limit_MBps"] = max(
        1, full.sysctl.numa_balancing_promote_rate_limit_MBps // scale
    )
    return scenario_from_dict(d)


def page_ops(vm: dict[str, int]) -> dict[str, int]:
    """The kernel's page operations: allocated + scanned + migrated + hint faults."""
    alloc = sum(v for key, v in vm.items() if key.startswith("pgalloc_"))
    scanned = vm.get("pgscan_kswapd", 0) + vm.get("pgscan_direct", 0) + vm.get("pgrefill", 0)
    migrated = vm.get("pgmigrate_success", 0)
    faults = vm.get("numa_hint_faults", 0)
    return {
        "allocated": alloc,
        "scanned": scanned,
        "migrated": migrated,
        "hint_faults": faults,
        "total": alloc + scanned + migrated + faults,
        "pte_updates": vm.get("numa_pte_updates", 0),
    }


def transitions(s: dict[str, Any]) -> dict[str, tuple]:
    """Per phase and node: node_unreclaimable (min, max), kswapd ran (runs > 0), OOM kills > 0
    - the per-phase checks of the recordings' compare.md."""
    out = {}
    for ph in s["phases"]:
        nodes = tuple(
            (n, v["unreclaimable_min"], v["unreclaimable_max"], v["kswapd_runs"] > 0)
            for n, v in sorted(ph["nodes"].items())
        )
        out[ph["name"]] = (nodes, ph["vmstat_delta"].get("oom_kill", 0) > 0)
    return out


def fmt_transitions(t: dict[str, tuple]) -> str:
    parts = []
    for name, (nodes, oom) in t.items():
        ns = " ".join(
            f"n{n}:unrecl={lo}..{hi},kswapd={'y' if run else '0'}" for n, lo, hi, run in nodes
        )
        parts.append(f"{name}[{ns}{' OOM' if oom else ''}]")
    return " ".join(parts)


def run_once(sc: Scenario, policy: str) -> tuple[dict[str, Any], float, Simulation]:
    t0 = time.perf_counter()
    sim = Simulation(sc, policy).run()
    wall = time.perf_counter() - t0
    return summary(sim), wall, sim


def peak_rss_mib() -> float:
    """Peak resident set size of this process (ru_maxrss is in KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def warm_up() -> None:
    """Load (or compile) the numba kernels with a tiny run, so timings exclude the JIT."""
    sc = scaled_scenario(4096).model_copy(update={"duration_s": 20.0})
    Simulation(sc, "v6.12").run()


def with_lru(sc: Scenario, lru: str | None) -> Scenario:
    """The scenario with ``machine.lru`` set to ``lru`` (classic / mglru); None keeps it."""
    if lru is None:
        return sc
    return sc.model_copy(update={"machine": sc.machine.model_copy(update={"lru": lru})})


def run_record(
    scale: int,
    policy: str,
    duration: float | None = None,
    frames: bool = False,
    path: str | None = None,
    lru: str | None = None,
) -> dict[str, Any]:
    """One run of a full-scale scenario (default: the seed storyboard) at ``1/scale``: the
    figures every bench prints. ``lru``: override ``machine.lru`` (classic / mglru)."""
    warm_up()
    sc = scaled_scenario(scale, path=Path(path) if path else None, frames=frames)
    if duration is not None:
        sc = sc.model_copy(update={"duration_s": duration})
    sc = with_lru(sc, lru)
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    sim = Simulation(sc, policy)
    build = time.perf_counter() - t0
    sim.run()
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    s = summary(sim)
    k = sim.k
    vm = k.vmstat.snapshot(k)
    ops = page_ops(vm)
    ops["pswpout"] = vm.get("pswpout", 0)
    ops["pswpin"] = vm.get("pswpin", 0)
    return {
        "scale": scale,
        "policy": policy,
        "pages": k.nr_pages,
        "wall_s": wall,
        "build_s": build,
        # user vs system CPU: on the project VM first-touched memory costs ~2 s of system
        # time per GiB (docs/performance.md), so sys follows peak RSS
        "user_s": r1.ru_utime - r0.ru_utime,
        "sys_s": r1.ru_stime - r0.ru_stime,
        "sim_s": s["sim_seconds"],
        "peak_rss_mib": peak_rss_mib(),
        "state_bytes_per_page": (
            k.mem.nbytes() + sum(r.data.nbytes for pg in k.pgdats for r in pg.lists)
        )
        / k.nr_pages,
        "page_ops": ops,
        "transitions": {
            name: [list(map(list, nodes)), oom] for name, (nodes, oom) in transitions(s).items()
        },
        "phases": [(p["name"], p["start_s"], p["end_s"]) for p in s["phases"]],
        "hopeless_spans": s["metrics"]["hopeless_spans"],
    }


def run_in_child(
    scale: int,
    policy: str,
    duration: float | None = None,
    frames: bool = False,
    path: str | None = None,
    lru: str | None = None,
) -> dict[str, Any]:
    """:func:`run_record` in a fresh process, so that its peak RSS is its own. Call it before
    this process grows: Linux carries the parent's RSS at the spawn into the child's
    ``ru_maxrss`` (through the copied mm's high-water mark), so a child started from a
    5 GiB parent reports at least 5 GiB (seen in bench_floor.py)."""
    import json
    import subprocess

    bench = str(REPO / "bench")
    code = (
        f"import json,sys;sys.path.insert(0,{bench!r});from _common import run_record;"
        f"print(json.dumps(run_record({scale},{policy!r},{duration!r},{frames!r},{path!r},{lru!r})))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def fmt_record_transitions(rec: dict[str, Any]) -> str:
    t = {
        name: (tuple(tuple(n) for n in nodes), oom)
        for name, (nodes, oom) in rec["transitions"].items()
    }
    return fmt_transitions(t)
