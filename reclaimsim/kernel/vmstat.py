"""``/proc/vmstat`` counters and tracepoint output (mm/vmstat.c, include/trace/events/vmscan.h)."""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .state import Kernel

# counters written to vmstat.parquet even when they stay 0, in vmstat_text order
VMSTAT_KEYS = (
    "nr_free_pages",
    "nr_inactive_anon",
    "nr_active_anon",
    "nr_inactive_file",
    "nr_active_file",
    "pgpromote_success",
    "pgpromote_candidate",
    "pgpromote_candidate_nrl",
    "pgdemote_kswapd",
    "pgdemote_direct",
    "pgalloc_dma",
    "pgalloc_dma32",
    "pgalloc_normal",
    "pgalloc_movable",
    "allocstall_dma",
    "allocstall_dma32",
    "allocstall_normal",
    "allocstall_movable",
    "pgfree",
    "pgactivate",
    "pgdeactivate",
    "pgrefill",
    "pgsteal_kswapd",
    "pgsteal_direct",
    "pgscan_kswapd",
    "pgscan_direct",
    "pgscan_anon",
    "pgscan_file",
    "pgsteal_anon",
    "pgsteal_file",
    "pswpin",
    "pswpout",
    "pgmajfault",
    "workingset_refault_anon",
    "pageoutrun",
    "kswapd_low_wmark_hit_quickly",
    "kswapd_high_wmark_hit_quickly",
    "oom_kill",
    "numa_hit",
    "numa_miss",
    "numa_foreign",
    "numa_local",
    "numa_other",
    "numa_pte_updates",
    "numa_hint_faults",
    "numa_hint_faults_local",
    "numa_pages_migrated",
    "pgmigrate_success",
    "pgmigrate_fail",
)


class VmStat:
    """Global vm events and node-stat sums, under their kernel names."""

    def __init__(self) -> None:
        self.c: dict[str, int] = defaultdict(int)

    def inc(self, name: str, n: int = 1) -> None:
        if n:
            self.c[name] += n

    def snapshot(self, k: Kernel) -> dict[str, int]:
        """The counters plus the gauges (nr_free_pages, LRU sizes) read now."""
        out = {key: self.c.get(key, 0) for key in VMSTAT_KEYS}
        for key, v in self.c.items():
            out[key] = v
        out["nr_free_pages"] = int(k.za.free.sum())
        lc = k.za.lru_count.sum(axis=0)
        out["nr_inactive_anon"] = int(lc[0])
        out["nr_active_anon"] = int(lc[1])
        out["nr_inactive_file"] = int(lc[2])
        out["nr_active_file"] = int(lc[3])
        return out


class Tracer:
    """ftrace-style event lines (``trace.txt``) plus per-event counts per node."""

    def __init__(self, k: Kernel, enabled: bool = True, verbose: bool = False) -> None:
        self.k = k
        self.enabled = enabled
        self.verbose = verbose
        self.lines: list[str] = []
        self.events: list[tuple[float, str, int, str]] = []

    def emit(
        self, event: str, nid: int, detail: str, t: float | None = None, verbose: bool = False
    ) -> None:
        if verbose and not self.verbose:
            return
        when = self.k.now if t is None else t
        self.events.append((when, event, nid, detail))
        if self.enabled:
            comm = (
                f"kswapd{nid}"
                if event.startswith("mm_vmscan_kswapd") and nid >= 0
                else (self.k.current_comm)
            )
            self.lines.append(f"{comm:>16s} [000] {when:12.6f}: {event}: {detail}")
