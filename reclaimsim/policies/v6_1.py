"""v6.1: as v6.12 for the hopeless rule, but a CPU-less node described only by HMAT (plain
boot RAM) lands in the DRAM tier (no demotion, no promotion) unless it comes through
dax/kmem; MGLRU reclaim runs inside ``shrink_node`` (reset on progress)."""

from .base import Policy


class V61(Policy):
    name = "v6.1"
    description = "v6.1: CPU-less HMAT RAM nodes are not a lower tier"
    cache_trim_retry = False  # Byungchul Park's cache_trim_mode retry came in v6.9
    hmat_cpuless_tiers = False
