"""The hugetlb pool (mm/hugetlb.c ``set_max_huge_pages``) on a small two-node machine:
64 MiB node0 with a CPU, 32 MiB CPU-less node1, 2 MiB huge pages."""

from __future__ import annotations

import pytest
from conftest import make, sim

from reclaimsim.kernel.constants import MAX_RECLAIM_RETRIES, WMARK_MIN, ZONE_MOVABLE, ZONE_NORMAL
from reclaimsim.kernel.hugetlb import set_max_huge_pages
from reclaimsim.kernel.page_alloc import GFP_HIGHUSER_MOVABLE, alloc_pages
from reclaimsim.kernel.vmscan import try_to_free_pages, zone_reclaimable_pages
from reclaimsim.scenario import ScenarioError

HPAGE = 512  # 2 MiB in 4 KiB pages


def test_pool_grows_round_robin_until_no_node_can_give_a_huge_page():
    """set_max_huge_pages(): one huge page per attempt, nodes of N_MEMORY in turn from
    next_nid_to_alloc, each attempt __GFP_THISNODE; the loop stops only when an attempt fails
    on every node, so the pool holds as many as the nodes could give and reads back that."""
    k = sim(make()).k
    got = set_max_huge_pages(k, k.hugetlb, 1000)
    h = k.hugetlb
    assert got == h.nr_huge_pages == sum(h.nr_huge_pages_node) < 1000
    assert h.free_huge_pages == h.nr_huge_pages
    # both nodes gave pages; the smaller node1 filled first, node0 went on alone
    assert h.nr_huge_pages_node[0] > h.nr_huge_pages_node[1] > 0
    for pg in k.pgdats:
        z = pg.zones[ZONE_NORMAL]
        # no room for one more order-9 block above MIN (__zone_watermark_ok at the order)
        assert z.free - (HPAGE - 1) <= z.wmark(WMARK_MIN)
        assert z.free + h.nr_huge_pages_node[pg.node_id] * HPAGE == z.managed
    # the first attempts alternate: 2 pages asked -> one per node
    k2 = sim(make()).k
    set_max_huge_pages(k2, k2.hugetlb, 2)
    assert k2.hugetlb.nr_huge_pages_node == [1, 1]


def test_pool_pages_are_off_the_lru_and_not_reclaimable():
    """PageHuge folios are on no lruvec list: zone_reclaimable_pages() does not count them
    and reclaim frees none of them, so a node full of pool pages has nothing to reclaim."""
    k = sim(make()).k
    set_max_huge_pages(k, k.hugetlb, 1000)
    assert int(k.za.lru_count.sum()) == 0 and k.check_lru_counts()
    z0 = k.pgdats[0].zones[ZONE_NORMAL]
    assert zone_reclaimable_pages(k, z0) == 0
    reclaimed, _ = try_to_free_pages(k, [z0], 0, GFP_HIGHUSER_MOVABLE)
    assert reclaimed == 0 and k.hugetlb.nr_huge_pages_node[0] * HPAGE + z0.free == z0.managed


def test_shrinking_the_pool_frees_to_the_buddy():
    """Lowering nr_hugepages frees free huge pages (remove_pool_hugetlb_folio, round-robin
    from next_nid_to_free) back through the page free path; user allocations then fit."""
    k = sim(make()).k
    set_max_huge_pages(k, k.hugetlb, 1000)
    pgfree0 = k.vmstat.c["pgfree"]
    before = k.hugetlb.nr_huge_pages
    assert set_max_huge_pages(k, k.hugetlb, 10) == 10
    assert k.vmstat.c["pgfree"] - pgfree0 == (before - 10) * HPAGE
    assert int(k.za.free.sum()) + 10 * HPAGE == sum(pg.managed_pages() for pg in k.pgdats)
    r = k.regions.add("user", False)
    assert alloc_pages(k, 1000, GFP_HIGHUSER_MOVABLE, 0, None, r).got == 1000


def test_hugetlb_failure_wakes_the_nodes_kswapd_which_gives_up():
    """The failing __GFP_THISNODE huge page allocation wakes that node's kswapd (slow path,
    wake_all_kswapds over a one-node zonelist); with only pool pages left nothing is
    reclaimable, so since c73322d098e4 kswapd fails MAX_RECLAIM_RETRIES runs and sleeps.
    (watermark_scale_factor 400 puts HIGH more than one huge page above MIN, so the pool's
    remainder is below HIGH even at order 0, as on Jia He's machine.)"""
    s = sim(make({"sysctl.watermark_scale_factor": 400}), "v6.12")
    k = s.k
    set_max_huge_pages(k, k.hugetlb, 1000)
    assert all(pg.kswapd.is_awake() for pg in k.pgdats)
    for _ in range(300):
        for pg in k.pgdats:
            pg.kswapd.advance(k.now + 0.01)
        k.now += 0.01
    assert all(pg.kswapd_failures >= MAX_RECLAIM_RETRIES for pg in k.pgdats)
    assert all(not pg.kswapd.is_awake() for pg in k.pgdats)


def test_boot_pool_and_sysctl_step():
    """nr_hugepages in [sysctl] is the boot pool (hugepages=N); a script step resizes it at
    its time and the sysctl reads back the size reached."""
    sc = make(
        {"sysctl.nr_hugepages": 4},
        script=[{"sleep_s": 0.05}, {"sysctl": {"nr_hugepages": 1000}}, {"sleep_s": 0.05}],
    )
    s = sim(sc)
    assert s.k.hugetlb.nr_huge_pages == 4
    s.run()
    assert s.k.sysctl.nr_hugepages == s.k.hugetlb.nr_huge_pages < 1000


@pytest.mark.parametrize("size", ["3MiB", "4KiB", "1000"])
def test_bad_hugepagesz_names_the_field(size):
    with pytest.raises(ScenarioError, match="hugepagesz"):
        make({"machine.hugepagesz": size})


def test_movable_zone_takes_huge_pages():
    """htlb_alloc_mask() is GFP_HIGHUSER_MOVABLE for a migratable size, so the pool may use
    ZONE_MOVABLE (highest_zoneidx = ZONE_MOVABLE)."""
    sc = make(
        {
            "machine.nodes": [
                {"id": 0, "cpus": 1, "size": "64MiB"},
                {"id": 1, "cpus": 0, "zones": [{"type": "Movable", "size": "32MiB"}]},
            ]
        }
    )
    k = sim(sc).k
    set_max_huge_pages(k, k.hugetlb, 1000)
    assert k.hugetlb.nr_huge_pages_node[1] > 0
    assert k.pgdats[1].zones[ZONE_MOVABLE].free < 2 * HPAGE
