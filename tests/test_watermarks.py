"""Watermark arithmetic (mm/page_alloc.c) against the real kernel's /proc/zoneinfo."""

from __future__ import annotations

import csv

import pytest
from conftest import SCENARIOS, make

from reclaimsim.engine import Simulation
from reclaimsim.kernel.constants import WMARK_HIGH, WMARK_LOW, WMARK_MIN, WMARK_PROMO
from reclaimsim.kernel.watermarks import calculate_min_free_kbytes, pgdat_balanced
from reclaimsim.realkernel import recordings_dir
from reclaimsim.scenario import load_scenario


def test_vm_marks_equal_the_recorded_zoneinfo():
    """__setup_per_zone_wmarks(): min is the zone's share of min_free_kbytes over the managed
    pages of all zones of all nodes; low/high/promo add 1/2/3 gaps of max(min/4, 0.1%)."""
    rd = recordings_dir()
    if rd is None:
        pytest.skip("../shared/realkernel/results is not present")
    with open(rd / "6.12.117-hmat-classic-bug" / "zones.csv") as f:
        first = {}
        for row in csv.DictReader(f):
            first.setdefault((int(row["node"]), row["zone"]), row)
    k = Simulation(load_scenario(SCENARIOS / "vm-2g1g-hopeless.toml"), "v6.12").k
    for z in k.zones:
        row = first[(z.node_id, z.name)]
        got = [z.wmark(WMARK_MIN), z.wmark(WMARK_LOW), z.wmark(WMARK_HIGH), z.wmark(WMARK_PROMO)]
        want = [int(row[c]) for c in ("min", "low", "high", "promo")]
        assert got == want, (z.node_id, z.name)
    # lowmem_reserve of DMA32 for Normal/Movable allocations = Normal managed / 256
    dma32 = k.pgdats[0].zones[1]
    assert dma32 is not None and dma32.lowmem_reserve(3) == 384845 // 256


def test_min_free_kbytes_formula():
    """calculate_min_free_kbytes(): int_sqrt(lowmem_kbytes * 16), clamped to [128, 262144]."""
    k = Simulation(make(), "v6.12").k
    lowmem_kb = sum(z.managed for z in k.zones) * 4
    assert k.sysctl.min_free_kbytes == calculate_min_free_kbytes(k.zones)
    assert k.sysctl.min_free_kbytes == int(__import__("math").isqrt(lowmem_kb * 16))


def test_any_zone_balances_the_node():
    """pgdat_balanced(): one eligible zone at its mark balances the whole node (the DMA zone
    counts, with its lowmem_reserve for the allocation class)."""
    k = Simulation(load_scenario(SCENARIOS / "vm-2g1g-hopeless.toml"), "v6.12").k
    pg = k.pgdats[0]
    for z in pg.populated_zones():
        k.za.free[z.idx] = 0
    assert not pgdat_balanced(pg, 0, 3, 2)
    dma = pg.zones[0]
    assert dma is not None
    k.za.free[dma.idx] = dma.wmark(WMARK_PROMO) + dma.lowmem_reserve(3) + 1
    assert pgdat_balanced(pg, 0, 3, 2)
    k.za.free[dma.idx] -= 1
    assert not pgdat_balanced(pg, 0, 3, 2)
