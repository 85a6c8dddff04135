"""The per-VMA virtual-to-frame tables that change_prot_numa walks (state.Regions.v2p)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from reclaimsim.engine import Simulation
from reclaimsim.kernel.state import Regions
from reclaimsim.scenario import load_scenario

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
    pfns = np.flatnonzero(k.mem.owner >= 0)
    owner = k.mem.owner[pfns].astype(np.int64)
    v = k.mem.vidx[pfns].astype(np.int64)
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
    assert not np.isin(k.mem.owner, dead).any()
    assert k.check_lru_counts()
    # every frame is free or holds a live page
    held = int(k.za.pcp[:, 0].sum())  # free frames on per-cpu lists, not in NR_FREE_PAGES
    free = sum(pg.free_pages() for pg in k.pgdats)
    assert free + held + int(k.regions.cnt.sum()) == k.nr_pages
