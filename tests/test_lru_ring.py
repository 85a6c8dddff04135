"""LRU ring growth (mem_map.LruRing.reserve): list_add order and lazy deletion survive
compaction and growth, whether the ring grows in place (mremap) or by copying."""

import numpy as np
import pytest

from reclaimsim.kernel import mem_map as mm


def _drain(ring: mm.LruRing, flags, lru_pos, lru_id: int, most: int = 1 << 62) -> list[int]:
    """isolate_lru_folios() from the tail (up to ``most`` pages or until empty): the
    pages in LRU order (oldest first)."""
    out = np.empty(64, dtype=np.int64)
    lru_count = np.zeros((1, 4), dtype=np.int64)
    zs = np.zeros(1, dtype=np.int64)
    got: list[int] = []
    while len(got) < most:
        n, _, _ = mm.isolate_lru(
            ring.data, ring.meta, flags, lru_pos, lru_id, min(64, most - len(got)), 1 << 40, out,
            lru_count, zs, 0,
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
