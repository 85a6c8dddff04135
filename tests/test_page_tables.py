"""The per-VMA virtual-to-frame tables that change_prot_numa walks (state.Regions.v2p)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from numba import njit

from reclaimsim.engine import Simulation
from reclaimsim.kernel import mem_map as mm
from reclaimsim.kernel.state import MemMap, Regions
from reclaimsim.scenario import load_scenario, scenario_from_dict

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"


def test_every_present_page_is_found_through_its_vmas_table():
    """A PTE maps its page wherever the page lives: set at the fault (``do_anonymous_page``),
    moved by ``remove_migration_pte`` on demotion and promotion. After the VM storyboard
    (hogs faulted in and killed, W demoted and promoted, R bound to node0) every frame that
    holds (region, vidx) is the one its region's table names, and span reuse after the
    hogs' exit did not mix tables."""
    sim = Simulation(load_scenario(SCENARIOS / "vm-2g1g-hopeless.toml"), "v6.12").run()
    k = sim.k
    vm = k.vmstat.snapshot(k)
    assert vm["pgdemote_kswapd"] + vm.get("pgdemote_direct", 0) > 0
    assert vm["pgpromote_success"] > 0
    regs = k.regions
    pfns = np.flatnonzero(k.mem.gvp >= 0)
    owner = k.mem.owner_of(pfns).astype(np.int64)
    v = k.mem.vidx_of(pfns)
    assert (owner >= 0).all()  # every frame in use points into a live region's span
    assert (regs.vspan[owner, 1] > v).all()  # a live page's VMA is mapped and holds it
    assert (regs.v2p[regs.vspan[owner, 0] + v] == pfns).all()
    # spans of live regions do not overlap
    live = sorted((int(a), int(n)) for a, n in regs.vspan if n > 0)
    assert all(a + n <= b for (a, n), (b, _) in zip(live, live[1:], strict=False))


def test_dead_spans_are_reused_and_the_arena_grows_keeping_live_tables():
    """Regions.unmap frees a span (merged with its neighbours) and a larger table grows the
    arena without losing the entries already written."""
    r = Regions(1, 4096)
    a = r.add("a", False, npages=1000)
    b = r.add("b", False, npages=1000)
    r.v2p[r.vspan[b, 0] : r.vspan[b, 0] + 10] = np.arange(10)
    r.touched[b] = 10
    r.unmap(a)
    c = r.add("c", False, npages=600)
    assert r.vspan[c, 0] == r.vspan[a, 0]  # first fit reuses a's span
    d = r.add("d", False, npages=8000)  # does not fit: the arena grows
    assert r.v2p.size >= 8000 + 2000
    assert (r.v2p[r.vspan[b, 0] : r.vspan[b, 0] + 10] == np.arange(10)).all()
    spans = sorted((int(x), int(n)) for x, n in r.vspan[[b, c, d]])
    assert all(x + n <= y for (x, n), (y, _) in zip(spans, spans[1:], strict=False))
    # the owner table grew with the arena: every live page's gvp still names its region
    for reg in (b, c, d):
        g = r.vspan[reg, 0] + np.array([0, r.vspan[reg, 1] - 1, r.vspan[reg, 1]])
        assert (r.owner_of_gvp(g) == reg).all()
    assert r.owner_of_gvp(np.array([-1]))[0] == -1


def test_exit_frees_every_page_also_those_the_tables_miss():
    """Exit (``exit_mmap`` → ``zap_pte_range``) frees all of a task's pages. Swap-in numbers
    its pages at a random virtual offset (memory.do_swap_page), which can repeat a virtual
    page still present elsewhere; the table then names only one of the two frames, and the
    exit path must still free the other (its frame-by-frame fallback)."""
    sc = load_scenario(SCENARIOS / "chanwon-2025-swap-exhausted-vm.toml")
    sim = Simulation(sc, "v6.18").run()
    k = sim.k
    assert k.vmstat.snapshot(k).get("pswpin", 0) > 0
    dead = [r for p in sim.procs if not p.alive for r in p.regions]
    assert dead
    assert not np.isin(k.mem.owner_of(slice(None)), dead).any()
    assert not np.isin(k.regions.span_owner, dead).any()  # their spans are free for reuse
    assert k.check_lru_counts()
    # every frame is free or holds a live page
    held = int(k.za.pcp[:, 0].sum())  # free frames on per-cpu lists, not in NR_FREE_PAGES
    free = sum(pg.free_pages() for pg in k.pgdats)
    assert free + held + int(k.regions.cnt.sum()) == k.nr_pages


def test_gvp_gives_back_each_pages_owner_and_index():
    """A page's ``gvp`` is the index of its PTE in the table arena (``page->mapping`` +
    ``page->index``): the owner region comes back from the span block holding it, the
    virtual page from its offset in the region's span, for every page of every table size
    (one block, exactly a block, several) and for the overflow slot of pages numbered past
    a table; a free frame (-1) has no owner."""
    regs = Regions(1, 4096)
    sizes = [1, mm.SPAN_BLOCK - 1, mm.SPAN_BLOCK, 3 * mm.SPAN_BLOCK + 5]
    rids = [regs.add(f"r{i}", False, npages=n) for i, n in enumerate(sizes)]
    total = sum(sizes) + len(sizes)  # every page of each table + its overflow slot
    mem = MemMap(total + 7, regs)
    pfn = 0
    want_owner, want_v = [], []
    for r, n in zip(rids, sizes, strict=True):
        base = int(regs.vspan[r, 0])
        assert base % mm.SPAN_BLOCK == 0 and regs.vspan[r, 1] == n
        for v in range(n + 1):  # v == n: the overflow slot
            mem.gvp[pfn] = base + v
            want_owner.append(r)
            want_v.append(v)
            pfn += 1
    pfns = np.arange(pfn)
    assert (mem.owner_of(pfns) == want_owner).all()
    assert (mem.vidx_of(pfns) == want_v).all()
    # the numba lookup the fused loops use agrees, and free frames are nobody's
    owners = np.array([_page_owner(mem.gvp, regs.span_owner, p) for p in range(mem.gvp.size)])
    assert (owners[:pfn] == want_owner).all() and (owners[pfn:] == -1).all()
    assert (mem.owner_of(np.arange(pfn, mem.gvp.size)) == -1).all()


def _page_owner(gvp: np.ndarray, span_owner: np.ndarray, pfn: int) -> int:
    return int(_page_owner_jit(gvp, span_owner, pfn))


@njit(cache=True)
def _page_owner_jit(gvp, span_owner, pfn):
    return mm.page_owner(gvp, span_owner, pfn)


def test_a_dead_regions_span_is_reused_only_once_its_frames_are_free():
    """Exit frees every frame of a task (``exit_mmap``), its anon tables and its unmovable
    kernel memory (no table: frames hold the span base) alike; only then are the spans
    unmapped, and a task started later gets the first of them (first fit). Every frame then
    resolves to a live owner, the new task's pages to it, at their own PTEs, and the per-
    region page counts (``MM_ANONPAGES`` per node) match a recount from the frames."""
    d = {
        "name": "tiny-span-reuse",
        "duration_s": 10,
        "machine": {"swap": 0, "nodes": [{"id": 0, "cpus": 1, "size": "128MiB"}]},
        "sysctl": {"numa_balancing": 0, "nr_hugepages": 4},
        "workloads": {
            "a": {"hot": "8MiB", "cold": "24MiB", "kernel": "2MiB", "access": 2.0},
            "b": {"hot": "16MiB", "kernel": "1MiB", "access": 2.0},
        },
        "script": [
            {"start": "a"},
            {"wait_ready": "a", "timeout_s": 5},
            {"kill": "a"},
            {"start": "b"},
            {"wait_ready": "b", "timeout_s": 5},
        ],
    }
    k = Simulation(scenario_from_dict(d), "v6.12").run().k
    sim_regions = {name: i for i, name in enumerate(k.regions.names)}
    a_hot, a_cold = sim_regions["a.hot"], sim_regions["a.cold"]
    b_hot, b_kern = sim_regions["b.hot"], sim_regions["b.kernel"]
    regs = k.regions
    # a's spans are free again and b's hot table took the first one
    assert regs.vspan[a_hot, 1] == regs.vspan[a_cold, 1] == 0
    assert regs.vspan[b_hot, 0] == regs.vspan[a_hot, 0]
    dead = [a_hot, a_cold, sim_regions["a.kernel"]]
    assert not np.isin(regs.span_owner, dead).any()
    owner = k.mem.owner_of(slice(None))
    assert not np.isin(owner, dead).any()
    # every page of b's hot region is at its PTE; its kernel frames hold the span base
    pf = np.flatnonzero(owner == b_hot)
    assert pf.size == regs.cnt[b_hot].sum() > 0
    assert (regs.v2p[regs.vspan[b_hot, 0] + k.mem.vidx_of(pf)] == pf).all()
    assert (k.mem.gvp[owner == b_kern] == regs.vspan[b_kern, 0]).all()
    # per-region page counts equal a recount from the frames (hugetlb pool included)
    used = owner >= 0
    recount = np.zeros_like(regs.cnt)
    np.add.at(recount, (owner[used], k.node_of_pfn(np.flatnonzero(used))), 1)
    assert (recount == regs.cnt).all() and regs.cnt[sim_regions["hugetlb"]].sum() > 0
    assert k.check_lru_counts()
