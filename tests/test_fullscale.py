"""The seed report at the reporter's scale (500 GiB + 100 GiB, 4 KiB pages): the same story as
the VM-size runs. The full-scale runs are slow (minutes, ~5 GiB); 1/64 runs by default."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

from _common import scaled_scenario  # noqa: E402

from reclaimsim.engine import Simulation  # noqa: E402
from reclaimsim.output import summary  # noqa: E402


def _story(scale: int, policy: str) -> dict[str, dict]:
    s = summary(Simulation(scaled_scenario(scale), policy).run())
    return {p["name"]: p for p in s["phases"]}


def _hot(p: dict) -> float:
    h = p["workloads"]["W"]["hot_pages_by_node"]
    return h["0"] / sum(h.values())


def check_v612(ph: dict[str, dict]) -> None:
    """Pre-fix: hopeless in p1, still hopeless with zero kswapd0 runs after the kill and while
    W's hot set sits on CXL; R's node0-bound allocation revives it in p4."""
    assert ph["p1"]["nodes"]["0"]["unreclaimable_max"] == 1
    for name in ("p2", "p3"):
        assert ph[name]["nodes"]["0"]["unreclaimable_min"] == 1
        assert ph[name]["nodes"]["0"]["kswapd_runs"] == 0
    assert _hot(ph["p3"]) <= 0.2
    assert ph["p4"]["nodes"]["0"]["unreclaimable_max"] == 0
    assert ph["p4"]["nodes"]["0"]["kswapd_runs"] > 0 and _hot(ph["p4"]) > _hot(ph["p3"])


def check_v618(ph: dict[str, dict]) -> None:
    """v6.18: the exit's frees revive node0 (PCP), tiering works in p3."""
    assert ph["p1"]["nodes"]["0"]["unreclaimable_max"] == 1
    assert ph["p2"]["nodes"]["0"]["unreclaimable_max"] == 0
    assert ph["p3"]["nodes"]["0"]["kswapd_runs"] > 0 and _hot(ph["p3"]) >= 0.5


@pytest.mark.parametrize("policy, check", [("v6.12", check_v612), ("v6.18", check_v618)])
def test_seed_story_at_1_64(policy, check):
    check(_story(64, policy))


@pytest.mark.slow
@pytest.mark.parametrize("policy, check", [("v6.12", check_v612), ("v6.18", check_v618)])
def test_seed_story_at_full_scale(policy, check):
    check(_story(1, policy))
