"""Policies: the registry, and a user's policy loaded from a Python file."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import REPO, make

from reclaimsim.engine import Simulation
from reclaimsim.kernel.constants import MAX_RECLAIM_RETRIES, WMARK_HIGH, WMARK_LOW
from reclaimsim.kernel.page_alloc import free_pages_zone
from reclaimsim.policies import POLICIES, PolicyError, get_policy


def test_registry_names():
    assert {"v6.1", "v6.12", "v6.18", "byungchul-v1", "byungchul-v2", "tiering-0.8"} <= set(
        POLICIES
    )
    with pytest.raises(PolicyError, match="unknown policy"):
        get_policy("v9.99")


def test_user_policy_file_changes_the_kernel():
    """examples/kswapd_retry_on_free.py revives node1 too (v6.18 never revives the last node)."""
    path = REPO / "examples" / "kswapd_retry_on_free.py"
    pol = get_policy(str(path))
    assert pol.name == "retry-on-free"
    k = Simulation(make(), pol).k
    pg = k.pgdats[1]
    pg.kswapd_failures = MAX_RECLAIM_RETRIES
    z = pg.zones[2]
    assert z is not None
    k.za.free[z.idx] = z.wmark(WMARK_LOW)
    k.za.below_high[z.idx] = True
    free_pages_zone(k, z, z.wmark(WMARK_HIGH))
    assert pg.kswapd_failures == 0


def test_policy_file_needs_one_policy(tmp_path: Path):
    f = tmp_path / "p.py"
    f.write_text("x = 1\n")
    with pytest.raises(PolicyError, match="exactly one Policy"):
        get_policy(str(f))
