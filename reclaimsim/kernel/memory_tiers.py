"""Memory tiers and demotion targets (mm/memory-tiers.c, drivers/acpi/numa/hmat.c)."""

from __future__ import annotations

from dataclasses import dataclass, field

from .constants import MEMTIER_ADISTANCE_DRAM, MEMTIER_CHUNK_BITS, MEMTIER_DEFAULT_DAX_ADISTANCE


def mt_perf_to_adistance(lat_ns: float, bw: float, dram_lat_ns: float, dram_bw: float) -> int:
    """``mt_perf_to_adistance()``: 576 * lat/dram_lat * dram_bw/bw (read + write summed)."""
    return int(MEMTIER_ADISTANCE_DRAM * (2 * lat_ns) / (2 * dram_lat_ns) * (2 * dram_bw) / (2 * bw))


@dataclass
class MemoryTiers:
    """Tier of each node, demotion targets, top-tier test."""

    adistance: list[int]
    has_cpu: list[bool]
    tier_of: list[int] = field(default_factory=list)  # tier id = adistance >> 7
    preferred: list[list[int]] = field(default_factory=list)  # node_demotion[n].preferred
    lower_tier_mask: list[list[int]] = field(default_factory=list)
    top_tier_adistance: int = 0

    def __post_init__(self) -> None:
        self.establish_demotion_targets()

    def establish_demotion_targets(self, distance: list[list[int]] | None = None) -> None:
        """``establish_demotion_targets()``: each node demotes to the nearest nodes of the next
        lower tier that has memory; ``top_tier_adistance`` is the end of the highest tier
        holding a CPU node."""
        n = len(self.adistance)
        self.tier_of = [a >> MEMTIER_CHUNK_BITS for a in self.adistance]
        tiers = sorted(set(self.tier_of))
        cpu_tiers = [self.tier_of[i] for i in range(n) if self.has_cpu[i]]
        top = max(cpu_tiers) if cpu_tiers else tiers[0]
        self.top_tier_adistance = (top << MEMTIER_CHUNK_BITS) + (1 << MEMTIER_CHUNK_BITS) - 1
        dist = distance or [[10 if i == j else 20 for j in range(n)] for i in range(n)]
        self.preferred = []
        self.lower_tier_mask = []
        for i in range(n):
            t = self.tier_of[i]
            lower = [x for x in tiers if x > t]
            if not lower:
                self.preferred.append([])
                self.lower_tier_mask.append([])
                continue
            nxt = lower[0]
            cands = [j for j in range(n) if self.tier_of[j] == nxt]
            best = min(dist[i][j] for j in cands)
            self.preferred.append([j for j in cands if dist[i][j] == best])
            self.lower_tier_mask.append([j for j in range(n) if self.tier_of[j] > t])

    def next_demotion_node(self, nid: int) -> int:
        """``next_demotion_node()``: the (first) preferred target, or NUMA_NO_NODE (-1).

        The kernel picks randomly among equally near targets; with one target per node in
        every scenario here the choice is the first (docs/fidelity.md).
        """
        p = self.preferred[nid]
        return p[0] if p else -1

    def node_is_toptier(self, nid: int) -> bool:
        """``node_is_toptier()``: the node's tier starts at or below top_tier_adistance."""
        return (self.tier_of[nid] << MEMTIER_CHUNK_BITS) <= self.top_tier_adistance


def node_adistance(
    memory: str,
    hmat: tuple[float, float] | None,
    dram_perf: tuple[float, float] | None,
    explicit: int | None,
    hmat_cpuless_tiers: bool,
    has_cpu: bool,
) -> int:
    """Abstract distance of a node, as ``set_node_memory_tier()`` finds it.

    - explicit ``adistance`` in the scenario wins;
    - dax/kmem memory registers its own type: HMAT-refined if HMAT data exists, else 2880;
    - plain RAM: a CPU node is DRAM (576); a CPU-less node gets an HMAT-derived distance only
      on kernels that place CPU-less nodes at late init (Ho-Ren Chuang, ~v6.10), else DRAM.
    """
    if explicit is not None:
        return explicit
    if memory == "kmem":
        if hmat is not None and dram_perf is not None:
            return mt_perf_to_adistance(hmat[0], hmat[1], dram_perf[0], dram_perf[1])
        return MEMTIER_DEFAULT_DAX_ADISTANCE
    if has_cpu or not hmat_cpuless_tiers or hmat is None or dram_perf is None:
        return MEMTIER_ADISTANCE_DRAM
    return mt_perf_to_adistance(hmat[0], hmat[1], dram_perf[0], dram_perf[1])
