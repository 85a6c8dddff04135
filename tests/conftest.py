"""Shared helpers: small machines and scenarios built in code."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from reclaimsim.engine import Simulation
from reclaimsim.scenario import Scenario, scenario_from_dict

REPO = Path(__file__).resolve().parents[1]
SCENARIOS = REPO / "scenarios"

TIERED = {
    "name": "tiny-tiered",
    "duration_s": 60,
    "machine": {
        "nodes": [
            {
                "id": 0,
                "cpus": 1,
                "size": "64MiB",
                "hmat": {"latency_ns": 100, "bandwidth_MBps": 20480},
            },
            {
                "id": 1,
                "cpus": 0,
                "size": "32MiB",
                "hmat": {"latency_ns": 300, "bandwidth_MBps": 5120},
            },
        ],
        "swap": 0,
    },
    "sysctl": {"numa_balancing": 2, "demotion_enabled": True},
    "workloads": {},
    "script": [{"sleep_s": 1}],
}


def make(overrides: dict[str, Any] | None = None, **top: Any) -> Scenario:
    """A tiny two-node tiered machine (64 MiB DRAM + 32 MiB CXL), with changes."""
    d = copy.deepcopy(TIERED)
    d.update(top)
    for key, v in (overrides or {}).items():
        cur = d
        parts = key.split(".")
        for p in parts[:-1]:
            cur = cur.setdefault(p, {})
        cur[parts[-1]] = v
    return scenario_from_dict(d)


def sim(scenario: Scenario, policy: str = "v6.12", seed: int | None = None) -> Simulation:
    return Simulation(scenario, policy, seed)


@pytest.fixture
def tiered() -> Scenario:
    return make()
