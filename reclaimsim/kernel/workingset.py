"""Page-cache reads and refault detection (mm/filemap.c, mm/workingset.c).

A file page evicted by reclaim leaves a shadow entry recording the lruvec's
``nonresident_age`` (evictions + activations) at eviction. When the page is read again,
``workingset_refault`` compares the refault distance (age now - age at eviction) with the
workingset size of the lruvec it was evicted from; within it the page comes back on the
active list (``workingset_activate_file``), else on the inactive list.

**Simplified:** shadows are kept per region as a count and a summed eviction age (no per-page
shadow entries): an eviction is noted with the lruvec's age when the owning task next looks
(its next engine step), and a batch of refaults uses the mean eviction age of the region's
shadows. File pages are mapped (mmap reads: their accesses are PTE accessed bits, like anon);
``read()``'s ``folio_mark_accessed`` activation path is not modelled (docs/fidelity.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .constants import LRU_ACTIVE_ANON, LRU_ACTIVE_FILE, LRU_INACTIVE_ANON

if TYPE_CHECKING:
    from .mmzone import PgData
    from .state import Kernel


def workingset_size(k: Kernel, pgdat: PgData, memcg: int) -> int:
    """``workingset_test_recent``'s workingset for a file refault: the eviction lruvec's
    active file pages, plus all its anon pages if the memcg can swap."""
    from .vmscan import lru_sizes

    sizes = lru_sizes(pgdat, memcg=memcg if memcg else None)
    ws = sizes[LRU_ACTIVE_FILE]
    if k.swap.free_pages() > 0:
        ws += sizes[LRU_ACTIVE_ANON] + sizes[LRU_INACTIVE_ANON]
    return ws


def workingset_refault(k: Kernel, pgdat: PgData, memcg: int, nr: int, distance: float) -> bool:
    """``workingset_refault()`` for ``nr`` file pages with refault ``distance``: count
    ``workingset_refault_file``; if the distance is within the workingset, they are
    activated (``workingset_activate_file``, ``workingset_age_nonresident``)."""
    lv = pgdat.lruvecs[memcg]
    k.vmstat.inc("workingset_refault_file", nr)
    pgdat.add_stat("workingset_refault_file", nr)
    if memcg:
        k.memcgs[memcg].add_stat("workingset_refault_file", nr)
    if distance > workingset_size(k, pgdat, memcg):
        return False
    lv.nonresident_age += nr
    lv.workingset_activate_file += nr
    k.vmstat.inc("workingset_activate_file", nr)
    pgdat.add_stat("workingset_activate_file", nr)
    if memcg:
        k.memcgs[memcg].add_stat("workingset_activate_file", nr)
    return True


def lruvec_activate_file(pgdat: PgData, memcg: int | None) -> int:
    """``lruvec_page_state(target_lruvec, WORKINGSET_ACTIVATE_FILE)`` (the root's is the sum
    over the node's memcgs)."""
    if memcg is None:
        return sum(lv.workingset_activate_file for lv in pgdat.lruvecs)
    return pgdat.lruvecs[memcg].workingset_activate_file


def snapshot_refaults(pgdat: PgData, memcg: int | None) -> None:
    """``snapshot_refaults()``: remember the target lruvec's activations (end of
    ``balance_pgdat`` / ``do_try_to_free_pages``)."""
    key = -1 if memcg is None else memcg
    pgdat.ext.setdefault("refaults_snap", {})[key] = lruvec_activate_file(pgdat, memcg)


def refaults_changed(pgdat: PgData, memcg: int | None) -> bool:
    """WORKINGSET_ACTIVATE_FILE differs from ``target_lruvec->refaults[WORKINGSET_FILE]``."""
    key = -1 if memcg is None else memcg
    return lruvec_activate_file(pgdat, memcg) != pgdat.ext.get("refaults_snap", {}).get(key, 0)
