"""LRU rings (mem_map.LruRing): list_add order and lazy deletion survive compaction, growth
(in place with mremap or by copying) and shrinking; a ring's resident memory follows its live
entries (stale entries compacted away, drained slots given back)."""

from types import SimpleNamespace

import numpy as np
import pytest
from numba import njit

from reclaimsim.kernel import mem_map as mm
from reclaimsim.kernel import mglru


def _drain(ring: mm.LruRing, flags, lru_pos, lru_id: int, most: int = 1 << 62) -> list[int]:
    """isolate_lru_folios() from the tail (up to ``most`` pages or until empty): the
    pages in LRU order (oldest first)."""
    out = np.empty(64, dtype=np.int64)
    gvp = np.zeros(flags.size, dtype=np.int32)  # only prefetched
    lru_count = np.zeros((1, 4), dtype=np.int64)
    zs = np.zeros(1, dtype=np.int64)
    got: list[int] = []
    while len(got) < most:
        n, _, _ = mm.isolate_lru(
            ring.data, ring.meta, flags, lru_pos, gvp, gvp, lru_id, min(64, most - len(got)),
            1 << 40, out, lru_count, zs, 0,
        )  # fmt: skip
        if n == 0:
            break
        got.extend(int(x) for x in out[:n])
    return got


@pytest.mark.parametrize("in_place", [True, False])
def test_ring_growth_keeps_lru_order(monkeypatch, in_place: bool) -> None:
    # Kernel rule: list_add() puts a folio at the head, isolation takes from the tail, a
    # folio that left the list (list_del) is not found there again.
    if not in_place:
        monkeypatch.setattr(mm, "HAVE_MREMAP", False)
    rng = np.random.default_rng(1)
    npfn = 50_000
    flags = np.zeros(npfn, dtype=np.uint8)
    lru_pos = np.zeros(npfn, dtype=np.uint32)
    lru_id = 0
    ring = mm.LruRing(64)
    assert (ring._map is not None) == (in_place and mm.HAVE_MREMAP)
    expect: list[int] = []
    order = rng.permutation(npfn)
    for start in range(0, npfn, 3000):
        batch = order[start : start + 3000].astype(np.int32)
        ring.reserve(batch.size, flags, lru_pos, lru_id)
        flags[batch] = mm.F_ONLRU
        mm.ring_push_many(ring.data, ring.meta, lru_pos, batch)
        expect.extend(int(x) for x in batch)
        # list_del of a random third of the list: their entries go stale in the ring
        gone = rng.choice(np.array(expect), size=len(expect) // 3, replace=False)
        flags[gone] = 0
        gone_set = set(int(x) for x in gone)
        expect = [p for p in expect if p not in gone_set]
        # isolation from the tail moves the ring's positions on (growth must keep them)
        taken = _drain(ring, flags, lru_pos, lru_id, most=1500)
        assert taken == expect[: len(taken)]
        expect = expect[len(taken) :]
    assert ring.data.size > 4096  # it grew several times
    assert _drain(ring, flags, lru_pos, lru_id) == expect


def _new_ring(npfn: int) -> tuple[mm.LruRing, np.ndarray, np.ndarray, np.ndarray]:
    """An empty list of one zone over ``npfn`` frames: (ring, flags, lru_pos, lru_count);
    ``lru_count`` is the zone's lru_zone_size row the ring reads its live size from."""
    flags = np.zeros(npfn, dtype=np.uint8)
    lru_pos = np.zeros(npfn, dtype=np.uint32)
    lru_count = np.zeros((1, 4), dtype=np.int64)
    ring = mm.LruRing(64)
    ring.count = lru_count[:, 0:1]
    return ring, flags, lru_pos, lru_count


def _push(ring: mm.LruRing, flags, lru_pos, lru_count, pfns: np.ndarray) -> None:
    """list_add() of ``pfns`` in order (reserve first, as every caller does)."""
    ring.reserve(pfns.size, flags, lru_pos, 0)
    flags[pfns] = mm.F_ONLRU
    mm.ring_push_many(ring.data, ring.meta, lru_pos, pfns.astype(np.int32))
    lru_count[0, 0] += pfns.size


@pytest.mark.parametrize("in_place", [True, False])
def test_stale_ring_is_compacted_and_shrunk(monkeypatch, in_place: bool) -> None:
    # Kernel rule: a folio freed at exit (zap_pte_range) is off its LRU list at once; the
    # list keeps its other folios in list_add order. Here the ring's entries of freed pages
    # go stale; a ring they dominate is compacted and given back its memory without waiting
    # to be full, and its order is unchanged.
    if not in_place:
        monkeypatch.setattr(mm, "HAVE_MREMAP", False)
    npfn = 1 << 21
    ring, flags, lru_pos, lru_count = _new_ring(npfn)
    order = np.random.default_rng(2).permutation(npfn)
    _push(ring, flags, lru_pos, lru_count, order[: 1 << 20])
    cap = ring.data.size
    assert cap == 1 << 21 and ring.resident_bytes() >= 4 << 20  # 1 Mi entries written
    # a process exit frees 31/32 of the pages: their entries stay in the ring, stale
    keep = order[: 1 << 20][::32]
    flags[order[: 1 << 20]] = 0
    flags[keep] = mm.F_ONLRU
    lru_count[0, 0] = keep.size
    ring.reserve(0, flags, lru_pos, 0)  # Lruvec.trim() after the exit
    assert int(ring.meta[0] - ring.meta[1]) == keep.size  # stale entries dropped
    assert ring.data.size < cap // 8  # shrunk to its live size ...
    assert ring.resident_bytes() <= 4 * ring.data.size  # ... and the rest given back
    # the list goes on: pushes at the head, isolation from the tail, in list_add order
    more = order[1 << 20 : (1 << 20) + 5000]
    _push(ring, flags, lru_pos, lru_count, more)
    expect = [int(x) for x in keep] + [int(x) for x in more]
    assert _drain(ring, flags, lru_pos, 0) == expect


def test_stale_majority_compacts_before_full() -> None:
    # The same without an explicit trim: the next list_add finds the ring mostly stale
    # (span > 2 * live + RING_FLOOR) while it still has room, and compacts it first.
    npfn = 1 << 20
    ring, flags, lru_pos, lru_count = _new_ring(npfn)
    pfns = np.arange(600_000)
    _push(ring, flags, lru_pos, lru_count, pfns)
    cap = ring.data.size
    flags[pfns[200_000:]] = 0  # the newest 400k freed
    lru_count[0, 0] = 200_000
    assert ring.needs_compaction(10)
    _push(ring, flags, lru_pos, lru_count, np.arange(600_000, 600_010))
    assert int(ring.meta[0] - ring.meta[1]) == 200_010
    assert ring.data.size == cap  # compacted, not shrunk: it still holds > 1/8 of it
    assert _drain(ring, flags, lru_pos, 0) == list(range(200_000)) + list(range(600_000, 600_010))


def test_full_ring_grows_without_a_pass_when_little_can_be_stale(monkeypatch) -> None:
    # A list that only fills (a process faulting in) has no stale entries, and its live bound
    # (lru_zone_size) says so: growing it needs no compaction pass over its entries. A full
    # ring whose bound allows more than 1/8 of it stale is still compacted first.
    passes: list[int] = []
    real = mm._ring_compact

    def counting(data, meta, flags, lru_pos, lru_id):
        passes.append(int(meta[0] - meta[1]))
        return real(data, meta, flags, lru_pos, lru_id)

    monkeypatch.setattr(mm, "_ring_compact", counting)
    npfn = 1 << 20
    ring, flags, lru_pos, lru_count = _new_ring(npfn)
    for lo in range(0, 200_000, 10_000):
        _push(ring, flags, lru_pos, lru_count, np.arange(lo, lo + 10_000))
    assert passes == [] and ring.data.size >= 200_000
    assert _drain(ring, flags, lru_pos, 0, most=5) == list(range(5))
    # free 1/4 of what it holds, then fill it to the brim: the next push compacts
    flags[np.arange(5, 50_005)] = 0
    lru_count[0, 0] -= 50_000
    room = ring.data.size - int(ring.meta[0] - ring.meta[1])
    _push(ring, flags, lru_pos, lru_count, np.arange(200_000, 200_000 + room))
    assert passes == []
    _push(ring, flags, lru_pos, lru_count, np.arange(200_000 + room, 200_010 + room))
    assert len(passes) == 1
    expect = list(range(50_005, 200_010 + room))
    assert _drain(ring, flags, lru_pos, 0) == expect


def test_worst_case_reservations_do_not_shrink_and_regrow_a_ring() -> None:
    # MGLRU reserves for the worst case: a walk may move every folio into max_seq, a scan
    # only the oldest generation's. Without shrink the ring keeps the room the big one
    # needed (no mremap and compaction pass per batch); a shrinking reservation gives it back.
    ring, flags, lru_pos, lru_count = _new_ring(1 << 20)
    _push(ring, flags, lru_pos, lru_count, np.arange(1000))
    passes = []

    def compact() -> int:
        passes.append(1)
        return mm._ring_compact(ring.data, ring.meta, flags, lru_pos, np.uint8(0))

    ring.make_room(600_000, compact, shrink=False)
    big = ring.data.size
    assert big >= 601_000
    for _ in range(5):
        ring.make_room(64, compact, shrink=False)
        ring.make_room(600_000, compact, shrink=False)
    assert ring.data.size == big and len(passes) <= 1
    ring.make_room(64, compact, shrink=True)
    assert ring.data.size < big
    assert _drain(ring, flags, lru_pos, 0) == list(range(1000))


@pytest.mark.skipif(not mm.HAVE_MREMAP, reason="release needs the ring's own mapping")
def test_drained_ring_releases_slots_behind_tail() -> None:
    # Isolation takes folios from the tail (isolate_lru_folios); when a list drains, the
    # slots its tail left behind are given back in large runs; a steady list (as many added
    # as taken) gives back nothing, and the list order is unchanged either way.
    npfn = 1 << 23
    ring, flags, lru_pos, lru_count = _new_ring(npfn)
    _push(ring, flags, lru_pos, lru_count, np.arange(3 << 20))
    assert ring.data.size == 4 << 20
    # steady: 1 Mi added for each 1 Mi taken
    for i in range(2):
        assert _drain(ring, flags, lru_pos, 0, most=1 << 20) == list(range(i << 20, (i + 1) << 20))
        _push(ring, flags, lru_pos, lru_count, np.arange((3 + i) << 20, (4 + i) << 20))
        assert ring.release_drained() == 0
    full = ring.resident_bytes()
    assert full == 16 << 20  # every slot written once
    # draining: 2.5 Mi taken, nothing added
    got = _drain(ring, flags, lru_pos, 0, most=5 << 19)
    assert got == list(range(2 << 20, (9 << 19)))
    released = ring.release_drained()
    assert released >= 8 << 20  # the 2.5 Mi slots behind the tail, whole pages
    assert ring.resident_bytes() <= full - released + (4 << 12)
    # what is left of the list is intact, and pushes after the release work as before
    _push(ring, flags, lru_pos, lru_count, np.arange(5 << 20, (5 << 20) + 1000))
    assert _drain(ring, flags, lru_pos, 0) == list(range(9 << 19, (5 << 20) + 1000))


@njit(cache=True)
def _gen_push_all(data, meta, lru_pos, pfns):
    for i in range(pfns.size):
        mglru._gen_push(data, meta, lru_pos, pfns[i])


def test_mglru_gen_ring_follows_live_size() -> None:
    # The same rule for MGLRU's lrugen->folios[gen][type] rings: after an exit freed most of
    # a generation's folios, trimming compacts and shrinks its ring; the generation keeps the
    # order in which lru_gen_add_folio() added the rest.
    npfn = 1 << 21
    mem = SimpleNamespace(
        flags=np.zeros(npfn, dtype=np.uint8), lru_pos=np.zeros(npfn, dtype=np.uint32)
    )
    rows = np.zeros((1, 4), dtype=np.int64)
    g = mglru.LruGen()
    gen, type_ = 1, mglru.LRU_GEN_ANON
    i = gen * 2 + type_
    ring = g.rings[i]
    ring.count = rows[:, 0:2]  # the anon lists' pages bound an anon generation's size
    pfns = np.random.default_rng(3).permutation(npfn)[: 1 << 20]
    mglru._reserve(g, mem, pfns.size, [i])
    mem.flags[pfns] = mm.F_ONLRU | np.uint8(gen << 6)
    _gen_push_all(ring.data, ring.meta, mem.lru_pos, pfns)
    cap = ring.data.size
    keep = pfns[::32]
    mem.flags[pfns] = 0
    mem.flags[keep] = mm.F_ONLRU | np.uint8(gen << 6)
    rows[0, 0] = keep.size
    mglru.trim_gens(g, mem)
    head, tail = int(ring.meta[0]), int(ring.meta[1])
    assert head - tail == keep.size and ring.data.size < cap // 8
    mask = ring.data.size - 1
    assert [int(ring.data[q & mask]) for q in range(tail, head)] == [int(x) for x in keep]
