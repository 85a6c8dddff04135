"""Raw serial captures of one guest run -> the shared harness's CSV layout.

A port of ``../shared/realkernel/parse.py`` (same files, same columns), so
``reclaimsim.realkernel.load_recording`` and ``reclaimsim validate`` read the result. The
difference: the ``phase`` column is the scenario's open phase (from the ``PHASE:<name>`` /
``PHASE_END:<name>`` events of the generated ``/init``), or "" outside phases, as the
simulator's samples; a phase still open when the guest stopped (duration cap) is closed at the
last sample, with a ``PHASE_END:<name>`` event added to ``events.csv``.

Written: info.json, events.csv, vmstat.csv, zones.csv, nodes.csv, kthreads.csv,
numa_maps.csv, trace_events.csv, trace_counts.csv, summary.csv. All t are guest
CLOCK_BOOTTIME seconds.
"""

from __future__ import annotations

import csv
import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

VM_KEEP = [
    "nr_free_pages",
    "nr_inactive_anon",
    "nr_active_anon",
    "nr_inactive_file",
    "nr_active_file",
    "nr_unevictable",
    "nr_anon_pages",
    "nr_isolated_anon",
    "pgpromote_success",
    "pgpromote_candidate",
    "pgdemote_kswapd",
    "pgdemote_direct",
    "pgscan_kswapd",
    "pgscan_direct",
    "pgsteal_kswapd",
    "pgsteal_direct",
    "pgscan_anon",
    "pgsteal_anon",
    "pgrefill",
    "pgactivate",
    "pgdeactivate",
    "allocstall_dma32",
    "allocstall_normal",
    "allocstall_movable",
    "oom_kill",
    "numa_hint_faults",
    "numa_hint_faults_local",
    "numa_pte_updates",
    "numa_pages_migrated",
    "pgmigrate_success",
    "pgmigrate_fail",
    "pageoutrun",
    "kswapd_low_wmark_hit_quickly",
    "kswapd_high_wmark_hit_quickly",
    "pgfault",
    "pgalloc_dma32",
    "pgalloc_normal",
    "numa_miss",
    "numa_foreign",
    "pswpin",
    "pswpout",
]
ZONE_COLS = [
    "free",
    "boost",
    "min",
    "low",
    "high",
    "promo",
    "spanned",
    "present",
    "managed",
    "unreclaimable",
    "start_pfn",
    "prot",
    "nr_zone_inactive_anon",
    "nr_zone_active_anon",
    "nr_zone_inactive_file",
    "nr_zone_active_file",
    "nr_zone_unevictable",
    "nr_mlock",
    "numa_hit",
    "numa_miss",
    "numa_local",
    "numa_other",
]
NODE_MEMINFO = [
    "MemTotal",
    "MemFree",
    "MemUsed",
    "Active_anon_",
    "Inactive_anon_",
    "Active_file_",
    "Inactive_file_",
    "Unevictable",
    "AnonPages",
    "FilePages",
    "Shmem",
    "KernelStack",
    "PageTables",
    "Slab",
]
NODE_VM_KEEP = [
    "nr_free_pages",
    "nr_inactive_anon",
    "nr_active_anon",
    "nr_anon_pages",
    "nr_isolated_anon",
    "pgpromote_success",
    "pgpromote_candidate",
    "pgdemote_kswapd",
    "pgdemote_direct",
    "numa_hit",
    "numa_miss",
    "numa_foreign",
    "numa_local",
    "numa_other",
]
SUMMARY_KEYS = [
    "oom_kill",
    "pgscan_kswapd",
    "pgsteal_kswapd",
    "pgdemote_kswapd",
    "pgdemote_direct",
    "pgscan_direct",
    "allocstall_movable",
    "pgpromote_candidate",
    "pgpromote_success",
    "numa_hint_faults",
    "numa_pte_updates",
    "pgmigrate_fail",
    "pageoutrun",
]
TRACE_RE = re.compile(r"^\s*(.+?)-(\d+)\s+\[(\d+)\]\s+\S+\s+([\d.]+): (\w+): ?(.*)$")


def _kv(tokens: list[str]) -> dict[str, Any]:
    d: dict[str, Any] = {}
    for tok in tokens:
        if "=" in tok:
            k, v = tok.split("=", 1)
            try:
                d[k] = int(v)
            except ValueError:
                d[k] = v
    return d


def _write(path: Path, header: list[str], rows: list[list[Any]]) -> None:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


def phase_windows(events: list[tuple[float, str, str]]) -> list[tuple[str, float, float]]:
    """(name, start, end) of every scenario phase, from the PHASE:/PHASE_END: events."""
    out: list[tuple[str, float, float]] = []
    open_: tuple[str, float] | None = None
    for t, name, _ in events:
        if name.startswith("PHASE:"):
            if open_ is not None:
                out.append((open_[0], open_[1], t))
            open_ = (name[6:], t)
        elif name.startswith("PHASE_END:") and open_ is not None:
            out.append((open_[0], open_[1], t))
            open_ = None
    return out


def parse_run(raw: Path, out: Path) -> dict[str, Any]:
    """Parse ``raw``/{samples,trace}.log into CSVs in ``out``; returns counts for the console."""
    raw, out = Path(raw), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    info: dict[str, str] = {}
    events: list[tuple[float, str, str]] = []
    vm: list[dict[str, Any]] = []
    zones: list[dict[str, Any]] = []
    nodes: dict[tuple[float, int], dict[str, Any]] = {}
    nodevm: dict[tuple[float, int], dict[str, Any]] = {}
    kth: list[dict[str, Any]] = []
    nmaps: list[dict[str, Any]] = []
    samples = raw / "samples.log"
    text = samples.read_text(errors="replace") if samples.exists() else ""
    for line in text.splitlines():
        line = line.replace("\r", "")
        if not line:
            continue
        p = line.split(" ")
        typ = p[0]
        try:
            if typ == "I":
                info[p[1]] = " ".join(p[2:])
            elif typ == "E":
                events.append((float(p[1]), p[2] if len(p) > 2 else "", " ".join(p[3:])))
            elif typ == "V":
                d = _kv(p[2:])
                d["t"] = float(p[1])
                vm.append(d)
            elif typ == "Z":
                d = _kv(p[4:])
                if not d.get("managed"):
                    continue
                d.update(t=float(p[1]), node=int(p[2]), zone=p[3])
                zones.append(d)
            elif typ == "N":
                nodes[(float(p[1]), int(p[2]))] = _kv(p[3:])
            elif typ == "NV":
                nodevm[(float(p[1]), int(p[2]))] = _kv(p[3:])
            elif typ == "K":
                d = _kv(p[3:])
                d.update(t=float(p[1]), comm=p[2])
                kth.append(d)
            elif typ == "P":
                d = _kv(p[5:])
                d.update(t=float(p[1]), pid=int(p[2]), name=p[3], vma=p[4])
                nmaps.append(d)
        except (ValueError, IndexError):
            continue  # a record cut by the VM powering off

    events.sort(key=lambda e: e[0])
    # close a phase left open (duration cap, guest died) at the last sample
    open_name = None
    for _, name, _ in events:
        if name.startswith("PHASE:"):
            open_name = name[6:]
        elif name.startswith("PHASE_END:"):
            open_name = None
    if open_name is not None:
        t_last = max([vm[-1]["t"] if vm else 0.0] + [e[0] for e in events])
        events.append((t_last, f"PHASE_END:{open_name}", "closed at the last sample"))
    windows = phase_windows(events)

    def phase(t: float) -> str:
        for name, t0, t1 in windows:
            if t0 <= t < t1:
                return name
        return ""

    (out / "info.json").write_text(json.dumps(info, indent=1))
    _write(out / "events.csv", ["t", "event", "detail"], [list(e) for e in events])

    keys = [k for k in (vm[0].keys() if vm else []) if k != "t"]
    varying = [k for k in keys if len({d.get(k) for d in vm}) > 1]
    cols = [k for k in keys if k in VM_KEEP or k in varying]
    _write(
        out / "vmstat.csv",
        ["t", "phase"] + cols,
        [[d["t"], phase(d["t"])] + [d.get(k, "") for k in cols] for d in vm],
    )
    _write(
        out / "zones.csv",
        ["t", "phase", "node", "zone"] + ZONE_COLS,
        [
            [d["t"], phase(d["t"]), d["node"], d["zone"]] + [d.get(k, "") for k in ZONE_COLS]
            for d in zones
        ],
    )
    nkeys = sorted({k for d in nodevm.values() for k in d})
    nvary = [k for k in nkeys if len({d.get(k) for d in nodevm.values()}) > 1]
    ncols = [
        k
        for k in nkeys
        if k in NODE_VM_KEEP or (k in nvary and k.startswith(("pg", "numa", "nr_")))
    ]
    _write(
        out / "nodes.csv",
        ["t", "phase", "node"] + [k + "_kB" for k in NODE_MEMINFO] + ncols,
        [
            [t, phase(t), n]
            + [nodes[(t, n)].get(k, "") for k in NODE_MEMINFO]
            + [nodevm.get((t, n), {}).get(k, "") for k in ncols]
            for (t, n) in sorted(nodes)
        ],
    )
    _write(
        out / "kthreads.csv",
        ["t", "phase", "comm", "pid", "state", "utime", "stime"],
        [
            [d["t"], phase(d["t"]), d["comm"], d.get("pid"), d.get("state")]
            + [d.get("utime"), d.get("stime")]
            for d in kth
        ],
    )
    nodecols = sorted(
        {k for d in nmaps for k in d if re.fullmatch(r"N\d+", k)}, key=lambda c: int(c[1:])
    )
    _write(
        out / "numa_maps.csv",
        ["t", "phase", "pid", "name", "vma", "anon"] + nodecols,
        [
            [d["t"], phase(d["t"]), d["pid"], d["name"], d["vma"], d.get("anon", "")]
            + [d.get(k, 0) for k in nodecols]
            for d in nmaps
        ],
    )

    tev: list[list[Any]] = []
    counts: Counter[tuple[int, str, str]] = Counter()
    tpath = raw / "trace.log"
    if tpath.exists():
        for rawline in tpath.read_text(errors="replace").splitlines():
            m = TRACE_RE.match(rawline.replace("\r", ""))
            if not m:
                continue
            comm, pid, _cpu, ts, ev, rest = m.groups()
            t = float(ts)
            fields = dict(x.split("=", 1) for x in rest.split() if "=" in x)
            nid = fields.get("nid", "")
            tev.append(
                [t, phase(t), comm, pid, ev, nid]
                + [fields.get(k, "") for k in ("order", "nr_reclaimed", "gfp_flags")]
                + [fields.get("failures", ""), fields.get("reason", "")]
            )
            counts[(int(t), ev, nid)] += 1
    _write(
        out / "trace_events.csv",
        ["t", "phase", "comm", "pid", "event", "nid", "order", "nr_reclaimed", "gfp_flags"]
        + ["failures", "reason"],
        tev,
    )
    _write(
        out / "trace_counts.csv",
        ["t_bin", "event", "nid", "count"],
        [[tb, ev, nid, c] for (tb, ev, nid), c in sorted(counts.items())],
    )

    # summary.csv: key counters as of each event (last sample at or before it)
    unrecl: dict[float, dict[int, Any]] = {}
    for d in zones:
        unrecl.setdefault(d["t"], {})[d["node"]] = d.get("unreclaimable")
    rows = []
    for t, name, _ in events:
        if name == "START":
            continue
        s = None
        for d in vm:
            if d["t"] > t:
                break
            s = d
        if s is None:
            if not vm:
                continue
            s = vm[0]
        ur = unrecl.get(s["t"], {})
        fr = {n: nodes.get((s["t"], n), {}).get("MemFree") for n in (0, 1)}
        trs = [e for e in tev if e[0] <= t]
        rows.append(
            [name, round(t, 2), s["t"], ur.get(0), ur.get(1)]
            + [(fr[0] or 0) // 1024, (fr[1] or 0) // 1024]
            + [sum(1 for e in trs if e[4] == "mm_vmscan_kswapd_wake" and e[5] == "0")]
            + [sum(1 for e in trs if e[4] == "mm_vmscan_wakeup_kswapd" and e[5] == "0")]
            + [s.get(k, "") for k in SUMMARY_KEYS]
        )
    _write(
        out / "summary.csv",
        ["event", "t_event", "t_sample", "node0_unrecl", "node1_unrecl", "node0_free_MB"]
        + ["node1_free_MB", "kswapd0_runs(trace)", "kswapd0_wakeups(trace)"]
        + SUMMARY_KEYS,
        rows,
    )
    return {
        "samples": len(vm),
        "events": len(events),
        "trace_events": len(tev),
        "phases": [w[0] for w in windows],
        "info": info,
        "zones_first": [d for d in zones if vm and d["t"] == zones[0]["t"]],
    }
