"""Run metrics and scenario verdicts: the numbers reviewers of the hopeless-node patches asked for.

Computed from a finished run's samples, trace and summary, so they work the same for every
policy: time a node spent hopeless while it had reclaimable pages (Byungchul Park), kswapd CPU
while nothing was reclaimable (Karim Manaouil), top-tier share of the hot set (Ying Huang's
"tiering needs kswapd"), direct-reclaim stalls, OOM kills, and the hot-path work a policy adds
per allocation (Ying Huang's objection to ``nr_may_reclaimable``).
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Callable
from typing import Any

from .units import eval_expr

# A node "has reclaimable pages" when kswapd could make progress on it: file pages, or anon
# pages with a swap slot free or demotion enabled and a demotion target above its MIN mark
# (zone_reclaimable_pages() with the target's room taken into account), at the sample time.


def _by_time(rows: list[dict[str, Any]], key: str) -> dict[float, list[dict[str, Any]]]:
    out: dict[float, list[dict[str, Any]]] = {}
    for r in rows:
        out.setdefault(r[key], []).append(r)
    return out


def compute(
    summary: dict[str, Any],
    samples: dict[str, list[dict[str, Any]]],
    demotion_targets: list[list[int]],
    swap_free_any: bool,
) -> dict[str, float]:
    """Flat metrics ``name -> value`` (node-specific names end in ``_node<N>``)."""
    m: dict[str, float] = {}
    zi = _by_time(samples.get("zoneinfo", []), "t")
    nodes = _by_time(samples.get("nodes", []), "t")
    times = sorted(nodes)
    nn = len(demotion_targets)
    for n in range(nn):
        for key in (
            "hopeless_s",
            "hopeless_while_reclaimable_s",
            "kswapd_cpu_unreclaimable_s",
            "kswapd_cpu_unbalanced_s",
        ):
            m[f"{key}_node{n}"] = 0.0
    for t0, t1 in zip(times, times[1:], strict=False):
        dt = t1 - t0
        z0 = zi.get(t0, [])
        for n in range(nn):
            zs = [r for r in z0 if r["node"] == n]
            if not zs:
                continue
            anon = sum(r["nr_zone_inactive_anon"] + r["nr_zone_active_anon"] for r in zs)
            file = sum(r["nr_zone_inactive_file"] + r["nr_zone_active_file"] for r in zs)
            # the simulator's samples say whether a slot was free and demotion enabled at t0
            # (can_reclaim_anon_pages); recordings without those fields use the run's swap
            # size and the topology
            row = next((r for r in nodes[t0] if r["node"] == n), {})
            swap_ok = row["swap_free_pages"] > 0 if "swap_free_pages" in row else swap_free_any
            room = bool(row.get("demotion_enabled", 1)) and any(
                sum(r["free"] - r["min"] for r in z0 if r["node"] == t) > 0
                for t in demotion_targets[n]
            )
            reclaimable = file > 0 or (anon > 0 and (swap_ok or room))
            if zs[0]["node_unreclaimable"]:
                m[f"hopeless_s_node{n}"] += dt
                if reclaimable:
                    m[f"hopeless_while_reclaimable_s_node{n}"] += dt
            a = next(r for r in nodes[t0] if r["node"] == n)
            b = next(r for r in nodes[t1] if r["node"] == n)
            if not reclaimable:
                m[f"kswapd_cpu_unreclaimable_s_node{n}"] += b["kswapd_cpu_s"] - a["kswapd_cpu_s"]
            # kswapd working without reaching its goal: no zone at HIGH, node not hopeless
            if not zs[0]["node_unreclaimable"] and all(r["free"] <= r["high"] for r in zs):
                m[f"kswapd_cpu_unbalanced_s_node{n}"] += b["kswapd_cpu_s"] - a["kswapd_cpu_s"]
    last = nodes[times[-1]] if times else []
    for r in last:
        n = r["node"]
        m[f"kswapd_cpu_s_node{n}"] = r["kswapd_cpu_s"]
        m[f"kswapd_runs_node{n}"] = r["kswapd_runs"]
    vm = samples.get("vmstat", [])
    end = vm[-1] if vm else {}
    allocs = sum(v for k, v in end.items() if k.startswith("pgalloc_"))
    m["oom_kills"] = end.get("oom_kill", 0)
    m["direct_reclaim_stalls"] = sum(v for k, v in end.items() if k.startswith("allocstall_"))
    m["pgpromote_success"] = end.get("pgpromote_success", 0)
    m["pgdemote"] = end.get("pgdemote_kswapd", 0) + end.get("pgdemote_direct", 0)
    m["refaults"] = end.get("workingset_refault_anon", 0) + end.get("workingset_refault_file", 0)
    m["hugepages_total"] = summary.get("meminfo", {}).get("HugePages_Total", 0)
    for n, mi in summary.get("node_meminfo", {}).items():
        m[f"hugepages_total_node{n}"] = mi["HugePages_Total"]
    m["refaults_file"] = end.get("workingset_refault_file", 0)
    m["pgmajfault"] = end.get("pgmajfault", 0)
    ext = summary.get("metrics", {}).get("policy_ext", {})
    hot_ops = sum(float(v.get("nr_may_reclaimable_updates", 0)) for v in ext.values())
    m["hot_path_ops_per_alloc"] = hot_ops / allocs if allocs else 0.0
    for ph in summary.get("phases", []):
        for w, pl in ph.get("workloads", {}).items():
            hot = pl.get("hot_pages_by_node", {})
            tot = sum(hot.values())
            if tot:
                m[f"hot_node0_share_{ph['name']}_{w}"] = hot.get("0", 0) / tot
    return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in m.items()}


def verdict_env(
    summary: dict[str, Any],
    metrics: dict[str, float],
    trace_events: list[tuple[float, str, int, str]],
) -> dict[str, Any]:
    """Names and functions a verdict expression may use."""
    events: dict[str, float] = {}
    for e in summary.get("events", []):
        events.setdefault(e["name"], e["t"])
    phases = {p["name"]: p for p in summary.get("phases", [])}
    from .output import kswapd_wakes

    wakes = kswapd_wakes(trace_events)

    def event(name: str) -> float:
        return events.get(name, math.inf)

    def kswapd_runs(node: int, t0: float, t1: float) -> int:
        return sum(c for (t, n, c) in wakes if n == node and t0 <= t <= t1)

    def phase(name: str, node: int, key: str) -> Any:
        return phases[name]["nodes"][str(node)][key]

    def delta(name: str, counter: str) -> Any:
        return phases[name]["vmstat_delta"].get(counter, 0)

    def hot_share(name: str, workload: str) -> float:
        hot = phases[name]["workloads"].get(workload, {}).get("hot_pages_by_node", {})
        tot = sum(hot.values())
        return hot.get("0", 0) / tot if tot else 0.0

    def resident_share(name: str, pattern: str, node: int) -> float:
        """Share of the resident pages of the workloads matching ``pattern`` (a glob) that sit
        on ``node`` at the end of phase ``name``."""
        on = tot = 0
        for w, pl in phases[name]["workloads"].items():
            if fnmatch.fnmatchcase(w, pattern):
                res = pl.get("resident_pages_by_node", {})
                on += res.get(str(node), 0)
                tot += sum(res.values())
        return on / tot if tot else 0.0

    env: dict[str, Any] = dict(metrics)
    env.update(
        event=event,
        kswapd_runs=kswapd_runs,
        phase=phase,
        delta=delta,
        hot_share=hot_share,
        resident_share=resident_share,
        inf=math.inf,
    )
    return env


def evaluate(verdicts: list[Any], env: dict[str, Any]) -> dict[str, bool]:
    """Each verdict's expression -> True/False (an error is a failed verdict)."""
    out = {}
    for v in verdicts:
        try:
            out[v.name] = bool(eval_expr(v.expr, env, functions=True))
        except (KeyError, ValueError, ZeroDivisionError):
            out[v.name] = False
    return out


Fn = Callable[..., Any]
