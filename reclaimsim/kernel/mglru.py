"""Multi-gen LRU (mm/vmscan.c ``lru_gen_*``, include/linux/mm_inline.h ``lru_gen_add_folio``).

Modelled, per lruvec (node x memcg; :class:`LruGen` is ``struct lru_gen_folio``):

- generations: ``max_seq`` and ``min_seq[anon/file]``, ``MIN_NR_GENS = 2`` ..
  ``MAX_NR_GENS = 4`` of them (``lru_gen_init_lruvec``: ``max_seq = MIN_NR_GENS + 1``). A
  folio's generation is ``seq % MAX_NR_GENS`` in the two spare bits of ``flags`` (6-7), and
  each (gen, type) is one ring (``lrugen->folios[gen][type]``; the kernel also splits by zone).
  Gen-ring entries record their position with bit 31 of ``lru_pos`` set, so they never look
  live to the classic rings' check (which compares against positions below 2^31: a classic
  ring would need 2^31 pushes to alias), and a gen ring accepts an entry only if the page's
  gen bits and type still match: no new per-page array.
- ``lru_gen_add_folio``: every path that adds a folio to an LRU (fault, migration, demotion,
  swap-in, putback) pushes it on the classic list of its lru id, as before; under MGLRU those
  four lists are only an intake that :func:`_drain` sorts into generations at the start of
  every MGLRU operation with the kernel's rule (active -> max_seq; anon -> max_seq - 1; file
  -> min_seq, or min_seq + 1 when more than MIN_NR_GENS generations exist). Nothing changes
  max_seq/min_seq between the add and the drain, so the generation is the one the kernel gives.
- the "active" statistics follow ``lru_gen_is_active`` (the two youngest generations):
  ``nr_active_*`` counts those folios (fixed up by the aging walk when max_seq moves).
- aging ``try_to_inc_max_seq``: a page-table walk over the lruvec's pages (each page's
  accessed bit drawn from its region's touch rate, as ``folio_referenced`` does; cleared) that
  moves young folios to max_seq, then ``inc_max_seq`` (which first ``inc_min_seq``s a type at
  MAX_NR_GENS; anon without swap just advances min_seq, as in the kernel).
  ``should_run_aging`` / ``get_nr_to_scan`` as from v6.8 (aging when the evictable
  min_seq + MIN_NR_GENS reaches max_seq; not at DEF_PRIORITY).
- eviction ``evict_folios``: ``scan_folios`` takes folios from the tail of min_seq's
  generation (up to MIN_LRU_BATCH isolated or MAX_LRU_BATCH looked at); a folio in a zone
  above ``sc->reclaim_idx`` goes to the next generation (``sort_folio``: ineligible); an
  isolated folio whose accessed bit is set is promoted to max_seq (``folio_check_references``
  + look-around: "rejected folios" are set active), the rest go through the classic
  ``shrink_folio_list`` (demotion, swap, drop: :func:`vmscan.run_fused`), whose survivors
  come back active (max_seq). ``try_to_inc_min_seq`` advances min_seq past empty generations
  (anon min_seq <= file min_seq when swapping).
- ``get_swappiness``: 0 (anon not evictable) without ``may_swap`` or when the node can neither
  demote nor swap (fewer than MIN_LRU_BATCH free swap slots).
- ``lru_gen_shrink_node``'s entry condition (boosted kswapd reclaim, ``may_writepage = 0``,
  does nothing) and per kernel version its ``kswapd_failures`` reset (policy hook).

Simplified (docs/fidelity.md): tiers and the refault PID controller (``get_type_to_scan``)
are not modelled: with no refault history the controller picks file, so anon is evicted
only when its min_seq is older than file's (the kernel's first rule), or with swappiness
200; the walk visits every page of the lruvec (no Bloom filter, no PMD skipping); lists are
not split per zone; ``inc_min_seq`` and ``sort_folio`` add moved folios at the head of the
next generation, not its tail; memcgs are visited in ``mem_cgroup_iter`` order, not the memcg
LRU (``shrink_many``); ``set_initial_priority`` and ``min_ttl_ms`` are not modelled; the
accessed bit of a folio in max_seq is cleared by the walk like any other.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from numba import njit

from . import mem_map as mm
from .constants import (
    DEF_PRIORITY,
    NUMA_BALANCING_MEMORY_TIERING,
    SWAP_CLUSTER_MAX,
    WMARK_HIGH,
    WMARK_PROMO,
)
from .mem_map import LruRing
from .vmscan import (
    _ANON_COST,
    _ARG,
    _DONE,
    _FILE_COST,
    _HOOKS,
    _LRU_I,
    _NEED_ROOM,
    _NR_RECLAIMED,
    _NR_SCANNED,
    _PAGES_MIGRATED,
    _PAGES_SCANNED,
    _PUSH_N,
    _ST_LEN,
    _SWAP_USED,
    _WAKE,
    _run_hooks,
    _shrink_lruvec_fused,
    _wake_bookkeeping,
    _wake_target,
    apply_counters,
    can_demote,
    demotion_arrays,
    flush_pushes,
    fused_args,
    fused_buffers,
    fused_shrink_pass,
    refresh_wake_possible,
)

if TYPE_CHECKING:
    from .mmzone import PgData
    from .state import Kernel
    from .vmscan import ScanControl

MIN_NR_GENS = 2
MAX_NR_GENS = 4
MIN_LRU_BATCH = 64  # BITS_PER_LONG
MAX_LRU_BATCH = MIN_LRU_BATCH * 64
LRU_GEN_ANON, LRU_GEN_FILE = 0, 1
MAX_SWAPPINESS = 200

F_GEN_SHIFT = np.uint8(6)
F_GEN_MASK = np.uint8(0xC0)
# gen-ring positions: bit 31 of lru_pos set (classic rings store positions below 2^31)
GEN_POS = np.int64(0x80000000)
GEN_POS_MASK = np.int64(0x7FFFFFFF)


class LruGen:
    """``struct lru_gen_folio`` of one lruvec: sequence numbers and the (gen, type) rings."""

    __slots__ = ("max_seq", "min_seq", "rings", "ctx", "ctx_stamp", "_seqs", "_seqs_key")

    def __init__(self) -> None:
        # lru_gen_init_lruvec(): max_seq = MIN_NR_GENS + 1, min_seq = 0
        self.max_seq = MIN_NR_GENS + 1
        self.min_seq = [0, 0]
        self.rings = [LruRing() for _ in range(MAX_NR_GENS * 2)]  # index gen * 2 + type
        # the numba kernels' view of the rings (_ctx), valid while no ring was resized
        self.ctx: tuple | None = None
        self.ctx_stamp = -1
        self._seqs = np.zeros(3, dtype=np.int64)
        self._seqs_key: tuple[int, int, int] | None = None

    def seqs(self) -> np.ndarray:
        """(max_seq, min_seq[anon], min_seq[file]) for the kernels, which only read it;
        the same array until a sequence number moves."""
        key = (self.max_seq, self.min_seq[0], self.min_seq[1])
        if key != self._seqs_key:
            self._seqs = np.array(key, dtype=np.int64)
            self._seqs_key = key
        return self._seqs

    def ring(self, seq: int, type_: int) -> LruRing:
        return self.rings[(seq % MAX_NR_GENS) * 2 + type_]

    def nr_gens(self, type_: int) -> int:
        """``get_nr_gens()``."""
        return self.max_seq - self.min_seq[type_] + 1


def lrugen(k: Kernel, pgdat: PgData, memcg: int) -> LruGen:
    """``&lruvec->lrugen`` (created on first use)."""
    lv = pgdat.lruvecs[memcg]
    g = lv.lrugen
    if g is None:
        g = LruGen()
        # a gen ring's live entries are at most its type's LRU pages in the lruvec
        zf = pgdat.zone_first()
        rows = k.za.lru_count_mc[memcg, zf : zf + len(pgdat.populated_zones())]
        for i, r in enumerate(g.rings):
            r.count = rows[:, (i % 2) * 2 : (i % 2) * 2 + 2]
        lv.lrugen = g
    return g


# ---------------------------------------------------------------------------------------------
# numba pieces


@njit(cache=True, inline="always")
def _gen_valid(flags, lru_pos, pfn, q, gen, type_):
    f = flags[pfn]
    return (
        ((f & mm.F_ONLRU) != 0)
        & (((f & mm.F_FILE) != 0) == (type_ == 1))
        & (((f & F_GEN_MASK) >> F_GEN_SHIFT) == gen)
        & (lru_pos[pfn] == ((q & GEN_POS_MASK) | GEN_POS))
    )


@njit(cache=True, inline="always")
def _gen_push(data, meta, lru_pos, pfn):
    q = meta[0]
    data[q & (data.size - 1)] = pfn
    lru_pos[pfn] = (q & GEN_POS_MASK) | GEN_POS
    meta[0] = q + 1


@njit(cache=True)
def _gen_compact(data, meta, flags, lru_pos, gen, type_):
    """Drop stale entries of a gen ring in place (as ``mem_map._ring_compact``)."""
    mask = data.size - 1
    w = meta[1]
    for q in range(meta[1], meta[0]):
        pfn = data[q & mask]
        if pfn >= 0 and _gen_valid(flags, lru_pos, pfn, q, gen, type_):
            data[w & mask] = pfn
            lru_pos[pfn] = (w & GEN_POS_MASK) | GEN_POS
            w += 1
    meta[0] = w
    return w - meta[1]


@njit(cache=True, inline="always")
def _is_active(seq, max_seq):
    """``lru_gen_is_active()``: the two youngest generations count as active."""
    return seq + 1 >= max_seq


@njit(cache=True, inline="always")
def _place(flags, lru_count, zi, pfn, seq, type_, max_seq):
    """A folio's generation bits and active/inactive accounting (``lru_gen_update_size``)."""
    f = flags[pfn]
    old = f & mm.F_LRU_MASK
    new = np.uint8(type_ * 2) | (mm.F_ACTIVE if _is_active(seq, max_seq) else np.uint8(0))
    flags[pfn] = (
        (f & ~(F_GEN_MASK | mm.F_LRU_MASK)) | new | mm.F_ONLRU | (np.uint8(seq % 4) << F_GEN_SHIFT)
    )
    if (f & mm.F_ONLRU) != 0:
        lru_count[zi, old] -= 1
    lru_count[zi, new] += 1


@njit(cache=True)
def _add_seq(lru_id, seqs):
    """The generation ``lru_gen_add_folio()`` gives a folio of intake list ``lru_id``:
    active -> max_seq; anon (never in the swap cache here) -> max_seq - 1; file -> min_seq if
    only MIN_NR_GENS generations exist, else min_seq + 1."""
    max_seq = seqs[0]
    type_ = 1 if (lru_id & mm.F_FILE) != 0 else 0
    min_seq = seqs[1 + type_]
    if (lru_id & mm.F_ACTIVE) != 0:
        return max_seq
    if type_ == 0:
        return max_seq - 1
    if min_seq + MIN_NR_GENS >= max_seq:
        return min_seq
    return min_seq + 1


@njit(cache=True, inline="always")
def _add_ring(lru_id, seqs):
    """Index (gen * 2 + type) of the generation ring :func:`_add_seq` puts intake list
    ``lru_id`` into."""
    return (_add_seq(lru_id, seqs) % MAX_NR_GENS) * 2 + (lru_id >> 1)


@njit(cache=True)
def _drain(d, m, flags, lru_pos, lru_id, gd_i, gm_i, seqs, lru_count, zone_starts, zone_first):
    """``lru_gen_add_folio()`` for every live folio of one intake (classic) list, oldest first,
    into the generation :func:`_add_seq` gives that list, whose ring is (``gd_i``, ``gm_i``)
    (only the rings a kernel uses are passed: each array argument costs an atomic
    incref/decref pair per call). Empties the intake list."""
    mask = d.size - 1
    max_seq = seqs[0]
    type_ = 1 if (lru_id & mm.F_FILE) != 0 else 0
    seq = _add_seq(lru_id, seqs)
    n = 0
    for q in range(m[1], m[0]):
        pfn = d[q & mask]
        if pfn >= 0 and mm._valid(flags, lru_pos, pfn, q, np.uint8(lru_id)):
            zi = mm.zone_index(pfn, zone_starts, zone_first)
            _place(flags, lru_count, zi, pfn, seq, type_, max_seq)
            _gen_push(gd_i, gm_i, lru_pos, pfn)
            n += 1
    m[1] = m[0]
    return n


@njit(cache=True)
def _walk(
    gd,
    gm,
    flags,
    t_look,
    gvp,
    span_owner,
    rate,
    lru_pos,
    seqs,
    can_swap,
    lru_count,
    zone_starts,
    zone_first,
    now,
    rs,
):
    """The page-table walk of ``try_to_inc_max_seq()`` (``walk_mm`` -> ``walk_pte_range``):
    every folio whose accessed bit is set moves to max_seq (``folio_update_gen``); the bit is
    cleared. Anon VMAs are skipped without swappiness (``should_skip_vma``). Folios of
    max_seq - 1 become inactive once max_seq grows (``inc_max_seq``'s size update).
    Returns (moved, looked at)."""
    max_seq = seqs[0]
    gmax = max_seq % 4
    moved = 0
    looked = 0
    lx = np.nan  # the last look's (x, p): see mem_map.page_referenced_run
    lp = 0.0
    for type_ in range(2):
        if type_ == 0 and not can_swap:
            continue  # should_skip_vma(): anon VMAs are not walked without swappiness
        dmax = gd[gmax * 2 + type_]
        mmax = gm[gmax * 2 + type_]
        for seq in range(seqs[1 + type_], max_seq + 1):
            g = seq % 4
            d = gd[g * 2 + type_]
            m = gm[g * 2 + type_]
            mask = d.size - 1
            end = m[0]  # pushes into max_seq's ring during its own walk are not revisited
            for q in range(m[1], end):
                pfn = d[q & mask]
                if pfn < 0 or not _gen_valid(flags, lru_pos, pfn, q, g, type_):
                    continue
                looked += 1
                young, lx, lp = mm.page_referenced_run(
                    flags, t_look, gvp, span_owner, rate, pfn, now, rs, lx, lp
                )
                if seq == max_seq:
                    continue
                zi = mm.zone_index(pfn, zone_starts, zone_first)
                if young:
                    # max_seq + 1 is the accounting's reference: the walk's generation stays
                    # active after inc_max_seq
                    _place(flags, lru_count, zi, pfn, max_seq, type_, max_seq + 1)
                    _gen_push(dmax, mmax, lru_pos, pfn)
                    moved += 1
                elif seq + 1 == max_seq:
                    _place(flags, lru_count, zi, pfn, seq, type_, max_seq + 1)
    return moved, looked


@njit(cache=True)
def _move_gen(
    d, m, dn, mn, flags, lru_pos, lru_count, zone_starts, zone_first, gen, seq_new, type_, max_seq
):
    """``inc_min_seq()``: every folio of the oldest generation to the next (``folio_inc_gen``)."""
    mask = d.size - 1
    n = 0
    for q in range(m[1], m[0]):
        pfn = d[q & mask]
        if pfn >= 0 and _gen_valid(flags, lru_pos, pfn, q, gen, type_):
            zi = mm.zone_index(pfn, zone_starts, zone_first)
            _place(flags, lru_count, zi, pfn, seq_new, type_, max_seq)
            _gen_push(dn, mn, lru_pos, pfn)
            n += 1
    m[1] = m[0]
    return n


@njit(cache=True)
def _gen_empty(d, m, flags, lru_pos, gen, type_):
    """Is the generation's list empty? Pops stale tail entries (each once)."""
    mask = d.size - 1
    q = m[1]
    while q < m[0]:
        pfn = d[q & mask]
        if pfn >= 0 and _gen_valid(flags, lru_pos, pfn, q, gen, type_):
            m[1] = q
            return False
        q += 1
    m[1] = q
    return True


@njit(cache=True)
def _scan_folios(
    d,
    m,
    dn,
    mn,
    dx,
    mx,
    id_d,
    id_m,
    flags,
    t_look,
    gvp,
    span_owner,
    rate,
    lru_pos,
    seqs,
    type_,
    limit_pfn,
    lru_count,
    zone_starts,
    zone_first,
    now,
    rs,
    budget,
):
    """``scan_folios()`` + ``sort_folio()`` + ``isolate_folio()`` from min_seq's generation,
    and the reference check of ``shrink_folio_list()`` for the isolated folios: young ones
    are put back active (max_seq), cold ones go on the intake inactive list of their type for
    the classic ``shrink_folio_list``. A batch ends at MIN_LRU_BATCH taken or MAX_LRU_BATCH
    looked at. Batches that isolated nothing cold reclaim nothing and change nothing
    ``lru_gen_shrink_lruvec`` looks at between batches (sizes, seqs, free pages), so they
    follow each other here until one isolates, the generation runs out or ``budget`` folios
    were scanned. The rings passed are min_seq's (``d``, ``m``), min_seq + 1's and max_seq's
    of ``type_``. Returns (isolated cold, promoted, sorted, looked at)."""
    max_seq = seqs[0]
    min_seq = seqs[1 + type_]
    g = min_seq % 4
    mask = d.size - 1
    isolated = 0
    promoted = 0
    sorted_ = 0
    remaining = MAX_LRU_BATCH
    looked = 0
    batch = 0
    lx = np.nan  # the last look's (x, p): see mem_map.page_referenced_run
    lp = 0.0
    q = m[1]
    end = m[0]
    while q < end:
        pfn = d[q & mask]
        q += 1
        if pfn < 0 or not _gen_valid(flags, lru_pos, pfn, q - 1, g, type_):
            continue
        zi = mm.zone_index(pfn, zone_starts, zone_first)
        young = False
        if pfn < limit_pfn:
            young, lx, lp = mm.page_referenced_run(
                flags, t_look, gvp, span_owner, rate, pfn, now, rs, lx, lp
            )
        if pfn >= limit_pfn:
            # sort_folio(): ineligible zone -> next generation
            _place(flags, lru_count, zi, pfn, min_seq + 1, type_, max_seq)
            _gen_push(dn, mn, lru_pos, pfn)
            sorted_ += 1
        elif young:
            _place(flags, lru_count, zi, pfn, max_seq, type_, max_seq)
            _gen_push(dx, mx, lru_pos, pfn)
            promoted += 1
            batch += 1
        else:
            f = flags[pfn]
            old = f & mm.F_LRU_MASK
            new = np.uint8(type_ * 2)
            flags[pfn] = (f & ~(F_GEN_MASK | mm.F_LRU_MASK | mm.F_REFERENCED)) | new | mm.F_ONLRU
            lru_count[zi, old] -= 1
            lru_count[zi, new] += 1
            mm.ring_push(id_d, id_m, lru_pos, pfn)
            isolated += 1
            batch += 1
        remaining -= 1
        looked += 1
        if remaining == 0 or batch >= MIN_LRU_BATCH:
            if isolated > 0 or promoted + sorted_ >= budget:
                break
            remaining = MAX_LRU_BATCH
            batch = 0
    m[1] = q
    return isolated, promoted, sorted_, looked


# ---------------------------------------------------------------------------------------------
# Python side


def _ctx(k: Kernel, pgdat: PgData, memcg: int):
    """(lrugen, ring data, ring meta, lru_count, zone_starts, zone_first) for the kernels;
    rebuilt only after a ring was resized (``LruRing.resizes``), not per batch."""
    g = lrugen(k, pgdat, memcg)
    if g.ctx is None or g.ctx_stamp != LruRing.resizes:
        g.ctx = (
            g,
            tuple(r.data for r in g.rings),
            tuple(r.meta for r in g.rings),
            k.za.lru_count_mc[memcg],
            pgdat.zone_starts(),
            pgdat.zone_first(),
        )
        g.ctx_stamp = LruRing.resizes
    return g.ctx


def _reserve(g: LruGen, mem, n: int, rings: list[int] | None = None, shrink: bool = False) -> None:
    """Room for ``n`` more pushes in each gen ring, compacting with the gen check
    (``LruRing.make_room``). Reservations are worst cases (a walk may move every folio
    into max_seq, a scan every folio of the oldest generation), so they swing between a
    batch and the whole lruvec: the rings only grow here and are shrunk where a process
    exit left them mostly stale (:func:`trim_gens`), and their drained slots are given back
    after each shrink pass (:func:`release_gens`)."""
    for i in rings if rings is not None else range(len(g.rings)):
        r = g.rings[i]
        r.make_room(
            n,
            lambda r=r, i=i: _gen_compact(r.data, r.meta, mem.flags, mem.lru_pos, i // 2, i % 2),
            shrink,
        )


def trim_gens(g: LruGen, mem) -> None:
    """Compact and shrink the gen rings whose entries went mostly stale (a process exit)."""
    _reserve(g, mem, 0, shrink=True)
    release_gens(g)


def release_gens(g: LruGen) -> None:
    """Give back the slots the gen rings' tails have drained (``LruRing.release_drained``)."""
    for r in g.rings:
        r.release_drained()


def drain_intake(k: Kernel, pgdat: PgData, memcg: int) -> int:
    """Sort the folios added since the last MGLRU operation into generations
    (``lru_gen_add_folio``). Returns how many."""
    g = lrugen(k, pgdat, memcg)
    mem = k.mem
    lists = pgdat.lruvecs[memcg].lists
    # room in the generation ring each non-empty intake list drains into (_add_seq)
    need: dict[int, int] = {}
    seqs = g.seqs()
    for lru, r in enumerate(lists):
        head, tail = r.meta.tolist()
        if head > tail:
            gi = int(_add_ring(lru, seqs))
            need[gi] = need.get(gi, 0) + head - tail
    if not need:
        return 0
    for gi, n in need.items():
        _reserve(g, mem, n, [gi])
    g, gd, gm, lru_count, zs, zf = _ctx(k, pgdat, memcg)
    n = 0
    for lru, r in enumerate(lists):
        if r.meta[0] > r.meta[1]:
            gi = int(_add_ring(lru, seqs))
            n += _drain(
                r.data, r.meta, mem.flags, mem.lru_pos, lru, gd[gi], gm[gi], seqs, lru_count, zs, zf
            )
            # an empty intake list need not keep the capacity of its last burst (4 bytes
            # a slot: the same pages now sit in the gen rings)
            r.resize(0)
    return n


def inc_min_seq(k: Kernel, pgdat: PgData, memcg: int, type_: int, swappiness: int) -> None:
    """``inc_min_seq()``: move the oldest generation's folios to the next one, advance min_seq
    (anon that cannot be swapped only advances min_seq, leaving its folios in place)."""
    g = lrugen(k, pgdat, memcg)
    if not (type_ == LRU_GEN_ANON and not swappiness):
        r = g.ring(g.min_seq[type_], type_)
        nxt = ((g.min_seq[type_] + 1) % MAX_NR_GENS) * 2 + type_
        _reserve(g, k.mem, int(r.meta[0] - r.meta[1]), [nxt])
        g, gd, gm, lru_count, zs, zf = _ctx(k, pgdat, memcg)
        cur = (g.min_seq[type_] % MAX_NR_GENS) * 2 + type_
        _move_gen(
            gd[cur],
            gm[cur],
            gd[nxt],
            gm[nxt],
            k.mem.flags,
            k.mem.lru_pos,
            lru_count,
            zs,
            zf,
            g.min_seq[type_] % MAX_NR_GENS,
            g.min_seq[type_] + 1,
            type_,
            g.max_seq,
        )
    g.min_seq[type_] += 1


def try_to_inc_max_seq(
    k: Kernel, pgdat: PgData, memcg: int, swappiness: int, sc: ScanControl | None = None
) -> int:
    """``try_to_inc_max_seq()``: the walk (young folios -> max_seq), then ``inc_max_seq()``.
    The pages the walk looks at count as scanned work of ``sc`` (its CPU cost). Returns the
    folios the walk moved."""
    g = lrugen(k, pgdat, memcg)
    mem = k.mem
    total = sum(int(r.meta[0] - r.meta[1]) for r in g.rings)
    _reserve(g, mem, total, [(g.max_seq % MAX_NR_GENS) * 2, (g.max_seq % MAX_NR_GENS) * 2 + 1])
    g, gd, gm, lru_count, zs, zf = _ctx(k, pgdat, memcg)
    moved, looked = _walk(
        gd,
        gm,
        mem.flags,
        mem.t_look,
        mem.gvp,
        k.regions.span_owner,
        k.regions.rate,
        mem.lru_pos,
        g.seqs(),
        swappiness > 0,
        lru_count,
        zs,
        zf,
        k.now_ms(),
        k.rs,
    )
    # inc_max_seq(): a type already at MAX_NR_GENS first gives up its oldest generation
    for type_ in (LRU_GEN_FILE, LRU_GEN_ANON):
        if g.nr_gens(type_) == MAX_NR_GENS:
            inc_min_seq(k, pgdat, memcg, type_, swappiness)
    g.max_seq += 1
    if sc is not None:
        sc.pages_scanned += looked
    return moved


def get_swappiness(k: Kernel, pgdat: PgData, sc: ScanControl) -> int:
    """``get_swappiness()``: 0 (anon not evictable) without may_swap, or when the node can
    neither demote nor find MIN_LRU_BATCH free swap slots."""
    if not sc.may_swap:
        return 0
    if not can_demote(k, pgdat.node_id, sc) and k.swap.free_pages() < MIN_LRU_BATCH:
        return 0
    return k.sysctl.swappiness


def evictable_min_seq(g: LruGen, swappiness: int) -> int:
    """``evictable_min_seq()``: the oldest evictable generation over the types scanned."""
    return min(g.min_seq) if swappiness else g.min_seq[LRU_GEN_FILE]


def _type_size(k: Kernel, pgdat: PgData, memcg: int, type_: int) -> int:
    """The lruvec's folios of one type (a node's zones are consecutive rows)."""
    zf = pgdat.zone_first()
    c = k.za.lru_count_mc[memcg][zf : zf + len(pgdat.populated_zones()), type_ * 2 : type_ * 2 + 2]
    return sum(map(sum, c.tolist()))  # a few cells: cheaper in Python than ndarray.sum


def should_run_aging(k: Kernel, pgdat: PgData, memcg: int, swappiness: int) -> tuple[bool, int]:
    """``should_run_aging()`` (v6.8+): must age when fewer than MIN_NR_GENS evictable
    generations are left beyond min_seq; prefer to when exactly MIN_NR_GENS + 1 remain.
    Also returns nr_to_scan (the evictable folios)."""
    g = lrugen(k, pgdat, memcg)
    ems = evictable_min_seq(g, swappiness)
    if ems + MIN_NR_GENS > g.max_seq:
        return True, 0
    if swappiness:  # both types: the lruvec's four lists over its zones, one read
        zf = pgdat.zone_first()
        rows = k.za.lru_count_mc[memcg][zf : zf + len(pgdat.populated_zones())]
        nr = sum(map(sum, rows.tolist()))
    else:
        nr = _type_size(k, pgdat, memcg, LRU_GEN_FILE)
    return ems + MIN_NR_GENS == g.max_seq, nr


def get_nr_to_scan(k: Kernel, pgdat: PgData, sc: ScanControl, memcg: int, swappiness: int) -> int:
    """``get_nr_to_scan()``: no aging at DEF_PRIORITY; otherwise age when needed and stop
    scanning this lruvec (-1)."""
    need, nr = should_run_aging(k, pgdat, memcg, swappiness)
    if not need or sc.priority == DEF_PRIORITY:
        return nr >> sc.priority
    try_to_inc_max_seq(k, pgdat, memcg, swappiness, sc)
    return -1


def try_to_inc_min_seq(k: Kernel, pgdat: PgData, memcg: int, swappiness: int) -> bool:
    """``try_to_inc_min_seq()`` (:func:`_try_to_inc_min_seq` on the lruvec's generations).
    Returns whether min_seq moved."""
    g, gd, gm = _ctx(k, pgdat, memcg)[:3]
    seqs = np.array([g.max_seq, *g.min_seq], dtype=np.int64)
    changed = bool(_try_to_inc_min_seq(seqs, gd, gm, k.mem.flags, k.mem.lru_pos, swappiness))
    g.min_seq = [int(seqs[1]), int(seqs[2])]
    return changed


def _scan(k: Kernel, pgdat: PgData, sc: ScanControl, memcg: int, type_: int, budget: int):
    g = lrugen(k, pgdat, memcg)
    mem = k.mem
    intake = pgdat.lruvecs[memcg].lists[type_ * 2]
    intake.reserve(MAX_LRU_BATCH, mem.flags, mem.lru_pos, type_ * 2)
    oldest = g.ring(g.min_seq[type_], type_)
    _reserve(
        g,
        mem,
        int(oldest.meta[0] - oldest.meta[1]),  # at most every entry of the oldest generation
        [
            ((g.min_seq[type_] + 1) % MAX_NR_GENS) * 2 + type_,
            (g.max_seq % MAX_NR_GENS) * 2 + type_,
        ],
    )
    g, gd, gm, lru_count, zs, zf = _ctx(k, pgdat, memcg)
    gen = (g.min_seq[type_] % MAX_NR_GENS) * 2 + type_
    nxt = ((g.min_seq[type_] + 1) % MAX_NR_GENS) * 2 + type_
    mx = (g.max_seq % MAX_NR_GENS) * 2 + type_
    return _scan_folios(
        gd[gen],
        gm[gen],
        gd[nxt],
        gm[nxt],
        gd[mx],
        gm[mx],
        intake.data,
        intake.meta,
        mem.flags,
        mem.t_look,
        mem.gvp,
        k.regions.span_owner,
        k.regions.rate,
        mem.lru_pos,
        g.seqs(),
        type_,
        pgdat.highest_zone_limit_pfn(sc.reclaim_idx),
        lru_count,
        zs,
        zf,
        k.now_ms(),
        k.rs,
        budget,
    )


def isolate_folios(
    k: Kernel, pgdat: PgData, sc: ScanControl, memcg: int, swappiness: int, budget: int = 1
):
    """``isolate_folios()``: the type to scan, then ``scan_folios`` (the other type if it
    found nothing). Type choice: file without swappiness; anon when its min_seq is older;
    anon at swappiness 200; otherwise file (``get_type_to_scan``'s PID controller without
    refault history - tiers are not modelled)."""
    g = lrugen(k, pgdat, memcg)
    if not swappiness:
        type_ = LRU_GEN_FILE
    elif g.min_seq[LRU_GEN_ANON] < g.min_seq[LRU_GEN_FILE]:
        type_ = LRU_GEN_ANON
    elif swappiness == MAX_SWAPPINESS:
        type_ = LRU_GEN_ANON
    else:
        type_ = LRU_GEN_FILE
    res = (0, 0, 0, 0)
    for _ in range(0 if swappiness else 1, 2):
        res = _scan(k, pgdat, sc, memcg, type_, budget)
        if res[0] + res[1] + res[2]:
            break
        type_ = 1 - type_
    return type_, res


def evict_folios(
    k: Kernel, pgdat: PgData, sc: ScanControl, memcg: int, swappiness: int, budget: int = 1
) -> int:
    """``evict_folios()``: isolate from the oldest generation, ``try_to_inc_min_seq``, then
    ``shrink_folio_list`` on the cold folios. Returns the folios scanned (0 = stop).
    ``budget``: the scan the caller still allows (see :func:`_scan_folios`); 1 = one batch."""
    type_, (isolated, promoted, sorted_, _looked) = isolate_folios(
        k, pgdat, sc, memcg, swappiness, budget
    )
    scanned = isolated + promoted + sorted_
    if try_to_inc_min_seq(k, pgdat, memcg, swappiness):
        scanned += 1
    g = lrugen(k, pgdat, memcg)
    if evictable_min_seq(g, swappiness) + MIN_NR_GENS > g.max_seq:
        scanned = 0
    who = "kswapd" if sc.kswapd else "direct"
    glob = sc.target_mem_cgroup is None
    if glob:
        k.vmstat.inc(f"pgscan_{who}", promoted)
        k.vmstat.inc("pgscan_file" if type_ else "pgscan_anon", promoted)
        k.vmstat.inc("pgactivate", promoted)
        k.vmstat.inc("pgrefill", sorted_)
    sc.nr_scanned += promoted
    sc.pages_scanned += promoted + sorted_
    if isolated:
        # shrink_folio_list() on the cold folios, which sit alone on the intake inactive list
        nr = [0, 0, 0, 0]
        nr[type_ * 2] = isolated
        anon_cost, file_cost = pgdat.anon_cost, pgdat.file_cost
        # every isolated folio goes through shrink_folio_list: no nr_to_reclaim stop
        fused_shrink_pass(k, pgdat, sc, nr, memcg, glob, 1 << 62, False, 0)
        # MGLRU does not feed lru_note_cost's balance (the PID controller decides)
        pgdat.anon_cost, pgdat.file_cost = anon_cost, file_cost
    # survivors ("rejected folios") come back active: max_seq
    _activate_intake(k, pgdat, memcg)
    return scanned


def _activate_intake(k: Kernel, pgdat: PgData, memcg: int) -> None:
    """``evict_folios()``: rejected folios are set active before ``move_folios_to_lru``, so
    ``lru_gen_add_folio`` puts them in max_seq; the intake inactive lists hold only them now."""
    mem = k.mem
    lists = pgdat.lruvecs[memcg].lists
    for lru in (0, 2):
        r = lists[lru]
        if r.meta[0] > r.meta[1]:
            act = lists[lru + 1]
            act.reserve(int(r.meta[0] - r.meta[1]), mem.flags, mem.lru_pos, lru + 1)
            _to_active(
                r.data,
                r.meta,
                act.data,
                act.meta,
                mem.flags,
                mem.lru_pos,
                lru,
                k.za.lru_count_mc[memcg],
                pgdat.zone_starts(),
                pgdat.zone_first(),
            )
    drain_intake(k, pgdat, memcg)


@njit(cache=True)
def _to_active(d, m, da, ma, flags, lru_pos, lru, lru_count, zone_starts, zone_first):
    mask = d.size - 1
    for q in range(m[1], m[0]):
        pfn = d[q & mask]
        if pfn >= 0 and mm._valid(flags, lru_pos, pfn, q, np.uint8(lru)):
            zi = mm.zone_index(pfn, zone_starts, zone_first)
            flags[pfn] = flags[pfn] | mm.F_ACTIVE
            lru_count[zi, lru] -= 1
            lru_count[zi, lru + 1] += 1
            mm.ring_push(da, ma, lru_pos, pfn)
    m[1] = m[0]


def should_abort_scan(k: Kernel, pgdat: PgData, sc: ScanControl) -> bool:
    """``should_abort_scan()`` (v6.8+): direct reclaim stops at nr_to_reclaim; kswapd at order 0
    once every eligible zone is above its mark (PROMO in tiering mode, else HIGH) plus
    MIN_LRU_BATCH."""
    from .watermarks import zone_watermark_ok

    if not sc.kswapd:
        return sc.nr_reclaimed >= sc.nr_to_reclaim
    if sc.order:
        return False
    which = WMARK_PROMO if k.sysctl.numa_balancing & NUMA_BALANCING_MEMORY_TIERING else WMARK_HIGH
    for z in pgdat.zones[: sc.reclaim_idx + 1]:
        if z is None or z.managed == 0:
            continue
        if not zone_watermark_ok(z, 0, z.wmark(which) + MIN_LRU_BATCH, sc.reclaim_idx):
            return False
    return True


# Run lru_gen_shrink_lruvec's batch loop in Python, batch by batch (evict_folios and the
# functions above), instead of the numba loop (_lruvec_loop). Both give the same result, bit
# for bit (tests/test_mglru.py); the Python loop is the readable reference and costs ~44 us of
# Python per 64-folio batch.
PY_LOOP = False


def lru_gen_shrink_lruvec(k: Kernel, pgdat: PgData, sc: ScanControl, memcg: int = 0) -> None:
    """``lru_gen_shrink_lruvec()`` / ``try_to_shrink_lruvec()``: evict in batches until
    nr_to_scan is met, eviction stalls, or ``should_abort_scan``."""
    drain_intake(k, pgdat, memcg)
    swappiness = get_swappiness(k, pgdat, sc)
    if PY_LOOP:
        _shrink_lruvec_py(k, pgdat, sc, memcg, swappiness)
        release_gens(lrugen(k, pgdat, memcg))
    else:
        _shrink_lruvec_fast(k, pgdat, sc, memcg, swappiness)


def _shrink_lruvec_py(
    k: Kernel, pgdat: PgData, sc: ScanControl, memcg: int, swappiness: int
) -> None:
    """The batch loop of ``try_to_shrink_lruvec()``, one Python call per batch."""
    scanned = 0
    while True:
        nr_to_scan = get_nr_to_scan(k, pgdat, sc, memcg, swappiness)
        if nr_to_scan <= 0:
            break
        delta = evict_folios(k, pgdat, sc, memcg, swappiness, nr_to_scan - scanned)
        if not delta:
            break
        scanned += delta
        if scanned >= nr_to_scan:
            break
        if should_abort_scan(k, pgdat, sc):
            break


# state of one _lruvec_loop run (int64 array, kept across returns to Python)
_L_PHASE, _L_SCANNED, _L_NR_TO_SCAN, _L_DELTA, _L_SWAP = 0, 1, 2, 3, 4
# deltas for sc and /proc/vmstat, handed over at each return to Python
_L_RECLAIMED, _L_NR_SCANNED, _L_PAGES_SCANNED, _L_PAGES_MIGRATED = 5, 6, 7, 8
_L_PGSCAN, _L_PGSCAN_ANON, _L_PGSCAN_FILE, _L_PGACTIVATE, _L_PGREFILL = 9, 10, 11, 12, 13
_L_FUSED = 14  # the shrink pass's return code, when it returned to Python
_L_DIRTY = 15  # something to hand over since the last return
_L_BATCHES = 16  # batches isolated
_L_LEN = 17
# phases of a batch: evict_folios' isolation, its shrink_folio_list pass, the putback
_PH_ISOLATE, _PH_SHRINK, _PH_PUTBACK = 0, 1, 2
# parameters (int64 array)
_P_SWAPPINESS, _P_PRIORITY, _P_KSWAPD, _P_ORDER, _P_GLOB, _P_NR_TO_RECLAIM = 0, 1, 2, 3, 4, 5
_P_RECLAIMED, _P_RECLAIM_IDX, _P_MARK, _P_LIMIT_PFN, _P_NOW, _P_ZF, _P_NZ = 6, 7, 8, 9, 10, 11, 12
_P_ANON_COST, _P_FILE_COST = 13, 14
# return codes
_LS_DONE, _LS_AGING, _LS_ROOM, _LS_FUSED, _LS_BOOK = 0, 1, 2, 3, 4


@njit(cache=True)
def _try_to_inc_min_seq(seqs, gd, gm, flags, lru_pos, swappiness):
    """``try_to_inc_min_seq()`` on the kernels' ``seqs`` array: skip empty oldest
    generations (keeping MIN_NR_GENS); when swapping, anon's min_seq never passes file's.
    Returns whether it moved."""
    max_seq = seqs[0]
    old_anon = seqs[1]
    old_file = seqs[2]
    ms = [old_anon, old_file]
    for type_ in range(0 if swappiness else 1, 2):
        while ms[type_] + MIN_NR_GENS <= max_seq:
            gen = ms[type_] % MAX_NR_GENS
            i = gen * 2 + type_
            if not _gen_empty(gd[i], gm[i], flags, lru_pos, gen, type_):
                break
            ms[type_] += 1
    if swappiness:
        ms[0] = min(ms[0], ms[1])
        ms[1] = max(ms[0], old_file)
    seqs[1] = ms[0]
    seqs[2] = ms[1]
    return ms[0] != old_anon or ms[1] != old_file


@njit(cache=True, inline="always")
def _room(d, m):
    return d.size - (m[0] - m[1])


@njit(cache=True)
def _lruvec_loop(ls, lp, seqs, gd, gm, lc_all, zchk, acc, booked, st, fp, fa):
    """The batch loop of ``try_to_shrink_lruvec()`` as one resumable numba loop: per batch
    ``get_nr_to_scan`` -> ``evict_folios`` (``isolate_folios``, ``try_to_inc_min_seq``, the
    classic ``shrink_folio_list`` pass of :func:`vmscan._shrink_lruvec_fused`, the putback of
    rejected folios into max_seq) -> ``should_abort_scan``, exactly as the Python loop
    (:func:`_shrink_lruvec_py`) does it. It returns to Python where Python must run: aging
    (``try_to_inc_max_seq``, after which the loop ends), ring room before a phase (checked
    before the phase changes anything, so the phase restarts), the shrink pass's own returns
    (a kswapd wake, free-path hooks, room), and the first failed wake of a node since the
    last return (``wakeup_kswapd`` bookkeeping; further ones change nothing: see
    ``vmscan._wake_bookkeeping``). ``fa`` is :func:`vmscan.fused_args`."""
    rings_d = fa[0]
    rings_m = fa[1]
    flags = fa[2]
    gvp = fa[3]
    span_owner = fa[4]
    t_look = fa[5]
    lru_pos = fa[6]
    rate = fa[7]
    z_free = fa[10]
    z_wmark = fa[11]
    z_boost = fa[12]
    z_lres = fa[13]
    lru_count = fa[18]
    zone_starts = fa[20]
    wake_req = fa[26]
    bc = fa[34]
    rs = fa[37]
    swappiness = lp[_P_SWAPPINESS]
    priority = lp[_P_PRIORITY]
    zf = lp[_P_ZF]
    nz = lp[_P_NZ]
    while True:
        phase = ls[_L_PHASE]
        if phase == _PH_ISOLATE:
            # get_nr_to_scan() -> should_run_aging()
            max_seq = seqs[0]
            ems = min(seqs[1], seqs[2]) if swappiness else seqs[2]
            need = True
            nr = 0
            if ems + MIN_NR_GENS <= max_seq:
                for zi in range(zf, zf + nz):
                    for lru in range(0 if swappiness else 2, 4):
                        nr += lru_count[zi, lru]
                need = ems + MIN_NR_GENS == max_seq
            if need and priority != DEF_PRIORITY:
                return _LS_AGING
            nr_to_scan = nr >> priority
            if nr_to_scan <= 0:
                return _LS_DONE
            # the room isolate_folios' scans may push into, for either type it may scan
            for t in range(0 if swappiness else 1, 2):
                if _room(rings_d[t * 2], rings_m[t * 2]) < MAX_LRU_BATCH:
                    return _LS_ROOM
                mo = gm[(seqs[1 + t] % MAX_NR_GENS) * 2 + t]
                span = mo[0] - mo[1]  # at most every entry of the oldest generation
                for gi in (
                    ((seqs[1 + t] + 1) % MAX_NR_GENS) * 2 + t,
                    (max_seq % MAX_NR_GENS) * 2 + t,
                ):
                    if _room(gd[gi], gm[gi]) < span:
                        return _LS_ROOM
            ls[_L_NR_TO_SCAN] = nr_to_scan
            # evict_folios() -> isolate_folios(): get_type_to_scan without tiers
            if not swappiness:
                type_ = LRU_GEN_FILE
            elif seqs[1 + LRU_GEN_ANON] < seqs[1 + LRU_GEN_FILE]:
                type_ = LRU_GEN_ANON
            elif swappiness == MAX_SWAPPINESS:
                type_ = LRU_GEN_ANON
            else:
                type_ = LRU_GEN_FILE
            isolated = promoted = sorted_ = 0
            for _ in range(0 if swappiness else 1, 2):
                g0 = (seqs[1 + type_] % MAX_NR_GENS) * 2 + type_
                g1 = ((seqs[1 + type_] + 1) % MAX_NR_GENS) * 2 + type_
                g2 = (seqs[0] % MAX_NR_GENS) * 2 + type_
                isolated, promoted, sorted_, _looked = _scan_folios(
                    gd[g0],
                    gm[g0],
                    gd[g1],
                    gm[g1],
                    gd[g2],
                    gm[g2],
                    rings_d[type_ * 2],
                    rings_m[type_ * 2],
                    flags,
                    t_look,
                    gvp,
                    span_owner,
                    rate,
                    lru_pos,
                    seqs,
                    type_,
                    lp[_P_LIMIT_PFN],
                    lru_count,
                    zone_starts,
                    zf,
                    lp[_P_NOW],
                    rs,
                    nr_to_scan - ls[_L_SCANNED],
                )
                if isolated + promoted + sorted_:
                    break
                type_ = 1 - type_
            scanned = isolated + promoted + sorted_
            if _try_to_inc_min_seq(seqs, gd, gm, flags, lru_pos, swappiness):
                scanned += 1
            ems = min(seqs[1], seqs[2]) if swappiness else seqs[2]
            if ems + MIN_NR_GENS > seqs[0]:
                scanned = 0
            ls[_L_DELTA] = scanned
            ls[_L_DIRTY] = 1
            ls[_L_BATCHES] += 1
            if lp[_P_GLOB]:
                ls[_L_PGSCAN] += promoted
                ls[_L_PGSCAN_FILE if type_ else _L_PGSCAN_ANON] += promoted
                ls[_L_PGACTIVATE] += promoted
                ls[_L_PGREFILL] += sorted_
            ls[_L_NR_SCANNED] += promoted
            ls[_L_PAGES_SCANNED] += promoted + sorted_
            if isolated:
                # fused_shrink_pass()'s state: the cold folios alone on the intake inactive
                # list; deferred pushes to other nodes' lists stay queued across batches
                pushed = st[_PUSH_N]
                st[:] = 0
                st[type_ * 2] = isolated
                st[4 + type_ * 2] = isolated
                st[_LRU_I] = -1
                st[_ANON_COST] = lp[_P_ANON_COST]
                st[_FILE_COST] = lp[_P_FILE_COST]
                st[_SWAP_USED] = ls[_L_SWAP]
                st[_PUSH_N] = pushed
                size = 0  # the root lruvec's LRU size (every memcg's pages of the node)
                for mc in range(lc_all.shape[0]):
                    for zi in range(zf, zf + nz):
                        for lru in range(4):
                            size += lc_all[mc, zi, lru]
                fp[10] = size
                ls[_L_PHASE] = _PH_SHRINK
            else:
                ls[_L_PHASE] = _PH_PUTBACK
            continue
        if phase == _PH_SHRINK:
            status = _shrink_lruvec_fused(st, fp, *fa)
            if status != _DONE:
                ls[_L_FUSED] = status
                return _LS_FUSED
            ls[_L_RECLAIMED] += st[_NR_RECLAIMED]
            ls[_L_NR_SCANNED] += st[_NR_SCANNED]
            ls[_L_PAGES_SCANNED] += st[_PAGES_SCANNED]
            ls[_L_PAGES_MIGRATED] += st[_PAGES_MIGRATED]
            ls[_L_SWAP] = st[_SWAP_USED]
            ls[_L_DIRTY] = 1
            for i in range(bc.size):
                acc[i] += bc[i]
                bc[i] = 0
            ls[_L_PHASE] = _PH_PUTBACK
            book = False
            for n in range(wake_req.size):
                if wake_req[n] and not booked[n]:
                    book = True
            if book:
                return _LS_BOOK
            wake_req[:] = False
            continue
        # _activate_intake(): rejected folios active, then lru_gen_add_folio() into max_seq;
        # room first (the phase restarts after Python made it)
        max_seq = seqs[0]
        for t in range(2):
            inact = rings_m[t * 2][0] - rings_m[t * 2][1]
            act = rings_m[t * 2 + 1][0] - rings_m[t * 2 + 1][1]
            if _room(rings_d[t * 2 + 1], rings_m[t * 2 + 1]) < inact:
                return _LS_ROOM
            gi = (max_seq % MAX_NR_GENS) * 2 + t
            if _room(gd[gi], gm[gi]) < inact + act:
                return _LS_ROOM
        for lru in (0, 2):
            m = rings_m[lru]
            if m[0] > m[1]:
                _to_active(
                    rings_d[lru],
                    m,
                    rings_d[lru + 1],
                    rings_m[lru + 1],
                    flags,
                    lru_pos,
                    lru,
                    lru_count,
                    zone_starts,
                    zf,
                )
        for lru in range(4):
            m = rings_m[lru]
            if m[0] > m[1]:
                gi = _add_ring(lru, seqs)
                _drain(
                    rings_d[lru],
                    m,
                    flags,
                    lru_pos,
                    lru,
                    gd[gi],
                    gm[gi],
                    seqs,
                    lru_count,
                    zone_starts,
                    zf,
                )
        ls[_L_PHASE] = _PH_ISOLATE
        # try_to_shrink_lruvec(): stop when eviction stalls, nr_to_scan is met, or
        # should_abort_scan()
        delta = ls[_L_DELTA]
        if not delta:
            return _LS_DONE
        ls[_L_SCANNED] += delta
        if ls[_L_SCANNED] >= ls[_L_NR_TO_SCAN]:
            return _LS_DONE
        if not lp[_P_KSWAPD]:
            if lp[_P_RECLAIMED] + ls[_L_RECLAIMED] >= lp[_P_NR_TO_RECLAIM]:
                return _LS_DONE
        elif lp[_P_ORDER] == 0:
            ok = True
            for z in zchk:
                mark = z_wmark[z, lp[_P_MARK]] + z_boost[z] + MIN_LRU_BATCH
                if not z_free[z] > mark + z_lres[z, lp[_P_RECLAIM_IDX]]:
                    ok = False
                    break
            if ok:
                return _LS_DONE


def _shrink_lruvec_fast(
    k: Kernel, pgdat: PgData, sc: ScanControl, memcg: int, swappiness: int
) -> None:
    """Drive :func:`_lruvec_loop` to the end of ``try_to_shrink_lruvec()``, doing the Python
    parts it asks for and handing its counts to ``sc`` and /proc/vmstat at each return, so
    that whatever Python runs sees what it saw after the same batches of the Python loop."""
    # the first get_nr_to_scan() here: a call that only ages, or has nothing to scan, needs
    # none of the loop's set-up
    need, nr = should_run_aging(k, pgdat, memcg, swappiness)
    if need and sc.priority != DEF_PRIORITY:
        try_to_inc_max_seq(k, pgdat, memcg, swappiness, sc)
        return
    if nr >> sc.priority <= 0:
        return
    g = lrugen(k, pgdat, memcg)
    mem = k.mem
    buf = fused_buffers(k)
    lists = pgdat.lruvecs[memcg].lists
    demote = can_demote(k, pgdat.node_id, sc)
    dem = demotion_arrays(k, buf, pgdat.node_id, demote)
    glob = sc.target_mem_cgroup is None
    who = "kswapd" if sc.kswapd else "direct"
    limit_pfn = pgdat.highest_zone_limit_pfn(sc.reclaim_idx)
    now = k.now_ms()
    zf = pgdat.zone_first()
    tiering = k.sysctl.numa_balancing & NUMA_BALANCING_MEMORY_TIERING
    lp = np.array(
        [
            swappiness,
            sc.priority,
            int(sc.kswapd),
            sc.order,
            int(glob),
            sc.nr_to_reclaim,
            sc.nr_reclaimed,
            sc.reclaim_idx,
            WMARK_PROMO if tiering else WMARK_HIGH,
            limit_pfn,
            now,
            zf,
            len(pgdat.populated_zones()),
            pgdat.anon_cost,
            pgdat.file_cost,
        ],
        dtype=np.int64,
    )
    # should_abort_scan()'s zones (kswapd only)
    zchk = _NO_ZONES
    if sc.kswapd:
        zs = pgdat.zones[: sc.reclaim_idx + 1]
        zchk = np.array([z.idx for z in zs if z is not None and z.managed], dtype=np.int64)
    # fused_shrink_pass()'s parameters: every isolated folio goes through shrink_folio_list
    # (no nr_to_reclaim stop), no proportional stop, no deactivation
    fp = np.array(
        [1 << 62, 0, int(sc.kswapd), 0, int(demote), k.swap.total_pages, now, limit_pfn]
        + [pgdat.node_id, zf, 0],
        dtype=np.int64,
    )
    st = np.zeros(_ST_LEN, dtype=np.int64)
    ls = np.zeros(_L_LEN, dtype=np.int64)
    ls[_L_SWAP] = k.swap.used
    seqs = np.array([g.max_seq, *g.min_seq], dtype=np.int64)
    acc = np.zeros_like(buf.counters)
    booked = np.zeros(len(k.pgdats), dtype=np.bool_)
    refresh_wake_possible(k, buf)
    while True:
        gd, gm = _ctx(k, pgdat, memcg)[1:3]
        status = _lruvec_loop(
            ls,
            lp,
            seqs,
            gd,
            gm,
            k.za.lru_count_mc,
            zchk,
            acc,
            booked,
            st,
            fp,
            fused_args(k, pgdat, memcg, buf, dem),
        )
        g.min_seq = [int(seqs[1]), int(seqs[2])]
        if ls[_L_DIRTY]:
            _hand_over(k, pgdat, sc, memcg, ls, acc, glob, who)
            lp[_P_RECLAIMED] = sc.nr_reclaimed
        flush_pushes(k, buf.push, int(st[_PUSH_N]))
        st[_PUSH_N] = 0
        if status == _LS_BOOK:
            booked |= buf.wake_req  # a second failed wake of these nodes would change nothing
        else:
            booked[:] = False
        _wake_bookkeeping(k, buf)
        if status == _LS_DONE:
            break
        if status == _LS_AGING:
            try_to_inc_max_seq(k, pgdat, memcg, swappiness, sc)
            break
        if status == _LS_ROOM:
            _make_room(k, pgdat, g, memcg, swappiness, int(ls[_L_PHASE]))
        elif status == _LS_FUSED:
            code = int(ls[_L_FUSED])
            if code == _NEED_ROOM:
                for lru, ring in enumerate(lists):
                    ring.reserve(2 * SWAP_CLUSTER_MAX, mem.flags, mem.lru_pos, lru)
            elif code == _WAKE:
                _wake_target(k, int(st[_ARG]))
            elif code == _HOOKS:
                _run_hooks(k, buf)
        refresh_wake_possible(k, buf)
    if ls[_L_BATCHES]:
        for r in lists:
            r.release_drained()
            if r.meta[0] == r.meta[1]:
                r.resize(0)  # as drain_intake: an empty intake list gives back its last burst
        release_gens(g)


_NO_ZONES = np.zeros(0, dtype=np.int64)


def _hand_over(
    k: Kernel,
    pgdat: PgData,
    sc: ScanControl,
    memcg: int,
    ls: np.ndarray,
    acc: np.ndarray,
    glob: bool,
    who: str,
) -> None:
    """What the Python loop would have added to ``sc``, /proc/vmstat, swap and the workingset
    clock by now: evict_folios' counts of the batches so far (the current one included) and
    the shrink passes that ended (``fused_shrink_pass`` / ``run_fused``)."""
    (rec, nscan, pscan, pmig, pgscan, pg_anon, pg_file, pgact, pgrefill) = ls[
        _L_RECLAIMED : _L_PGREFILL + 1
    ].tolist()
    if glob:
        k.vmstat.inc(f"pgscan_{who}", pgscan)
        k.vmstat.inc("pgscan_anon", pg_anon)
        k.vmstat.inc("pgscan_file", pg_file)
        k.vmstat.inc("pgactivate", pgact)
        k.vmstat.inc("pgrefill", pgrefill)
    sc.nr_reclaimed += rec
    sc.nr_scanned += nscan
    sc.pages_scanned += pscan
    sc.pages_migrated += pmig
    ls[_L_RECLAIMED : _L_PGREFILL + 1] = 0
    ls[_L_DIRTY] = 0
    k.swap.used = int(ls[_L_SWAP])
    # workingset_eviction(): each dropped file page ages the lruvec's nonresident clock
    pgdat.lruvecs[memcg].nonresident_age += int(acc[mm.C_PGSTEAL_FILE])
    apply_counters(k, pgdat, acc, who, memcg, glob)


def _make_room(
    k: Kernel, pgdat: PgData, g: LruGen, memcg: int, swappiness: int, phase: int
) -> None:
    """The reservations the Python loop makes before the phase :func:`_lruvec_loop` stopped
    at: ``_scan``'s (for each type isolate_folios may scan) or ``_activate_intake``'s."""
    mem = k.mem
    lists = pgdat.lruvecs[memcg].lists
    for t in (LRU_GEN_ANON, LRU_GEN_FILE) if swappiness or phase != _PH_ISOLATE else (1,):
        if phase == _PH_ISOLATE:
            lists[t * 2].reserve(MAX_LRU_BATCH, mem.flags, mem.lru_pos, t * 2)
            oldest = g.ring(g.min_seq[t], t)
            nxt = ((g.min_seq[t] + 1) % MAX_NR_GENS) * 2 + t
            _reserve(
                g,
                mem,
                int(oldest.meta[0] - oldest.meta[1]),
                [nxt, (g.max_seq % MAX_NR_GENS) * 2 + t],
            )
        else:
            inact = int(lists[t * 2].meta[0] - lists[t * 2].meta[1])
            act = int(lists[t * 2 + 1].meta[0] - lists[t * 2 + 1].meta[1])
            lists[t * 2 + 1].reserve(inact, mem.flags, mem.lru_pos, t * 2 + 1)
            _reserve(g, mem, inact + act, [(g.max_seq % MAX_NR_GENS) * 2 + t])


def lru_gen_shrink_node(k: Kernel, pgdat: PgData, sc: ScanControl) -> None:
    """``lru_gen_shrink_node()``: nothing under boosted kswapd reclaim (``may_writepage = 0``);
    every memcg's lruvec (``shrink_one`` in ``mem_cgroup_iter`` order, memory.low skipped unless
    ``memcg_low_reclaim``); then the version's ``kswapd_failures`` reset (policy hook)."""
    from .vmscan import memcgs_to_shrink

    reclaimed_before = sc.nr_reclaimed
    if sc.may_writepage and sc.may_unmap:
        for memcg in memcgs_to_shrink(k, sc):
            lru_gen_shrink_lruvec(k, pgdat, sc, memcg)
    k.policy.lru_gen_shrink_node_done(k, pgdat, sc, sc.nr_reclaimed - reclaimed_before)
