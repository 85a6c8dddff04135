"""reclaimsim: a simulator of Linux memory reclaim and NUMA memory tiering."""

__version__ = "0.1.0"
