"""struct page helpers of mem_map: the reference draw of folio_referenced() over a run of
pages, and how the simulator's own arrays get their memory (base_pages)."""

import numpy as np

from reclaimsim.kernel import mem_map as mm


def test_page_referenced_run_matches_page_by_page_looks() -> None:
    # Kernel rule (folio_referenced via the rate model): each look clears the accessed bit and
    # reports whether it was set since the last look, P = 1 - exp(-rate * dt). Passing the
    # last (x, p) along a run must only skip recomputing p, never change a page's answer:
    # pages of several regions with runs of equal and of different last-look times.
    rng = np.random.default_rng(7)
    n = 20_000
    nreg = 3
    span_owner = np.full(nreg + 2, -1, dtype=np.int16)
    span_owner[1 : nreg + 1] = np.arange(nreg)
    gvp = (rng.integers(0, nreg, n) << mm.SPAN_SHIFT).astype(np.int32)
    gvp[rng.random(n) < 0.3] = gvp[0]  # long runs of one region
    rate = np.array([0.0, 0.05, 3.0])
    t_look = np.repeat(rng.integers(0, 60_000, n // 50), 50).astype(np.uint32)
    t_look[rng.random(n) < 0.2] = 59_000
    flags = np.where(rng.random(n) < 0.1, mm.F_YOUNG, 0).astype(np.uint8)
    pfns = rng.permutation(n).astype(np.int64)
    now = np.uint32(61_000)

    f1, t1, rs1 = flags.copy(), t_look.copy(), mm.seed_rng(3)
    want = np.array([mm.page_referenced(f1, t1, gvp, span_owner, rate, p, now, rs1) for p in pfns])
    f2, t2, rs2 = flags.copy(), t_look.copy(), mm.seed_rng(3)
    refs = np.empty(n, dtype=np.int64)
    mm.check_references(pfns, n, f2, t2, gvp, span_owner, rate, now, refs, rs2)
    # check_references: referenced -> KEEP or ACTIVATE, not referenced -> RECLAIM
    got = refs != mm.FOLIOREF_RECLAIM
    assert 0.2 < want.mean() < 0.9  # both answers occur, so the comparison can fail
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(t1, t2)
    assert rs1[0] == rs2[0]


def _thp_advice() -> bool:
    """numpy's current huge-page advice for large arrays (set, read back, restore)."""
    old = mm._np_multiarray._set_madvise_hugepage(True)
    mm._np_multiarray._set_madvise_hugepage(old)
    return bool(old)


def test_base_pages_turns_off_numpy_thp_advice_and_restores_it() -> None:
    # On a VM with free page reporting a huge page's first touch faults in 2 MiB on the host
    # (docs/performance.md): the simulator allocates its arrays in 4 KiB pages, and leaves
    # the caller's numpy setting as it was, also when the run raises.
    before = _thp_advice()
    for outer in (True, False):
        mm._np_multiarray._set_madvise_hugepage(outer)
        with mm.base_pages():
            assert _thp_advice() is False
        assert _thp_advice() is outer
        try:
            with mm.base_pages():
                raise RuntimeError
        except RuntimeError:
            pass
        assert _thp_advice() is outer
    mm._np_multiarray._set_madvise_hugepage(before)
