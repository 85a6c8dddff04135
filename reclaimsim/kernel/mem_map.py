"""``struct page`` state as flat arrays indexed by PFN, and the LRU lists as rings.

The kernel keeps a ``struct page`` per 4 KiB frame and links folios on per-node LRU lists
(``lruvec->lists[lru]``, include/linux/mmzone.h). Here every page is a few bytes in flat numpy
arrays indexed by PFN (a node is a contiguous PFN range, zones are sub-ranges, as on x86-64),
and every LRU list is a ring of PFNs with lazy deletion: ``list_add`` pushes at the head,
``isolate_lru_folios`` pops from the tail, and an entry whose page has since left the list (or
re-entered it elsewhere) is recognised as stale by its recorded position (``lru_pos``) and
skipped. That keeps every list operation O(pages touched), never O(memory size).

Per-page fields (``flags`` bits):
  LRU id (2 bits: inactive/active x anon/file), ON_LRU (``PG_lru``), REFERENCED
  (``PG_referenced``), YOUNG (the PTE accessed bit, set by the workload, cleared by
  ``folio_referenced``), PROTNONE (a NUMA-hinting PTE set by ``change_prot_numa``), FILE.
``owner``: the workload region the page belongs to (-1 = free).
``t_look``: ms when the accessed bit was last cleared (rate-based reference draws).
``stamp``: NUMA-balancing access-time stamp in ms (``folio_xchg_access_time``).
"""

from __future__ import annotations

import numpy as np
from numba import njit

F_LRU_MASK = np.uint8(0x03)
F_ACTIVE = np.uint8(0x01)
F_FILE = np.uint8(0x02)  # bit 1 of the LRU id is "file" as in enum lru_list
F_ONLRU = np.uint8(0x04)
F_REFERENCED = np.uint8(0x08)
F_YOUNG = np.uint8(0x10)
F_PROTNONE = np.uint8(0x20)

POS_MASK = np.int64(0xFFFFFFFF)

# folio_check_references() results
FOLIOREF_RECLAIM = 0
FOLIOREF_KEEP = 1
FOLIOREF_ACTIVATE = 2


class LruRing:
    """One LRU list of one node: a ring of PFNs, head = most recently added."""

    __slots__ = ("data", "meta", "nr")

    def __init__(self, capacity: int = 1024) -> None:
        self.data = np.full(max(capacity, 64), -1, dtype=np.int32)
        # meta[0] = head (next push position), meta[1] = tail (next pop position), absolute.
        self.meta = np.zeros(2, dtype=np.int64)

    def reserve(self, k: int, flags: np.ndarray, lru_pos: np.ndarray, lru_id: int) -> None:
        """Make room for ``k`` more pushes (compact stale entries, grow if needed)."""
        used = int(self.meta[0] - self.meta[1])
        cap = self.data.size
        if used + k <= cap:
            return
        live = _ring_count_live(self.data, self.meta, flags, lru_pos, np.uint8(lru_id))
        need = live + k
        new_cap = cap
        while need > new_cap * 3 // 4:
            new_cap *= 2
        new = np.full(new_cap, -1, dtype=np.int32) if new_cap != cap else np.empty_like(self.data)
        _ring_compact(self.data, self.meta, new, flags, lru_pos, np.uint8(lru_id))
        self.data = new


@njit(cache=True)
def _valid(flags, lru_pos, pfn, q, lru_id):
    f = flags[pfn]
    return (f & F_ONLRU) != 0 and (f & F_LRU_MASK) == lru_id and lru_pos[pfn] == (q & POS_MASK)


@njit(cache=True)
def _ring_count_live(data, meta, flags, lru_pos, lru_id):
    cap = data.size
    n = 0
    for q in range(meta[1], meta[0]):
        pfn = data[q % cap]
        if pfn >= 0 and _valid(flags, lru_pos, pfn, q, lru_id):
            n += 1
    return n


@njit(cache=True)
def _ring_compact(data, meta, new, flags, lru_pos, lru_id):
    """Copy live entries tail->head into ``new`` from position 0, keeping their order."""
    cap = data.size
    w = 0
    for q in range(meta[1], meta[0]):
        pfn = data[q % cap]
        if pfn >= 0 and _valid(flags, lru_pos, pfn, q, lru_id):
            new[w] = pfn
            lru_pos[pfn] = w
            w += 1
    for i in range(w, new.size):
        new[i] = -1
    meta[0] = w
    meta[1] = 0


@njit(cache=True, inline="always")
def ring_push(data, meta, lru_pos, pfn):
    """``list_add(&folio->lru, &lruvec->lists[lru])``: add at the head."""
    q = meta[0]
    data[q % data.size] = pfn
    lru_pos[pfn] = q & POS_MASK
    meta[0] = q + 1


@njit(cache=True, inline="always")
def zone_index(pfn, zone_starts, zone_first):
    """Global zone index of ``pfn`` within a node whose zones start at ``zone_starts``."""
    z = 0
    nz = zone_starts.size
    while z + 1 < nz and pfn >= zone_starts[z + 1]:
        z += 1
    return zone_first + z


@njit(cache=True)
def seed_rng(seed):
    """Seed numba's generator (used by every per-page draw) for bit-for-bit reruns."""
    np.random.seed(seed)


@njit(cache=True, inline="always")
def page_referenced(flags, t_look, owner, rate, pfn, now_ms):
    """``folio_referenced()`` for one mapping: was the accessed bit set since the last look?

    The bit is set at fault time (YOUNG) or by the workload's touches, drawn here from the
    region's per-page touch rate over the time since the bit was last cleared. Clears it.
    """
    f = flags[pfn]
    young = (f & F_YOUNG) != 0
    if not young:
        lam = rate[owner[pfn]]
        if lam > 0.0:
            dt = (now_ms - t_look[pfn]) * 1e-3
            if dt > 0.0:
                if np.isinf(lam) or np.random.random() < 1.0 - np.exp(-lam * dt):
                    young = True
    flags[pfn] = f & ~F_YOUNG
    t_look[pfn] = now_ms
    return young


@njit(cache=True)
def alloc_in_range(
    owner,
    flags,
    t_look,
    lru_pos,
    vidx,
    start,
    end,
    cursor,
    n,
    region,
    vstart,
    now_ms,
    lru_id,
    ring_data,
    ring_meta,
    cnt_node_region,
    node_col,
    lru_count,
    zidx,
):
    """Take ``n`` free frames of one zone for ``region`` and add them to an LRU list.

    The buddy allocator's choice of frame does not matter to reclaim; a cursor that walks the
    zone for free frames is O(frames looked at), amortised O(1) per allocation.
    """
    got = 0
    span = end - start
    c = cursor
    looked = 0
    while got < n and looked < span:
        if c >= end:
            c = start
        if owner[c] < 0:
            owner[c] = region
            flags[c] = np.uint8(lru_id) | F_ONLRU | F_YOUNG
            t_look[c] = now_ms
            vidx[c] = vstart + got
            ring_push(ring_data, ring_meta, lru_pos, c)
            got += 1
        c += 1
        looked += 1
    cnt_node_region[region, node_col] += got
    lru_count[zidx, lru_id] += got
    return got, c


@njit(cache=True)
def free_regions(
    owner, flags, start, end, dead, cnt_node_region, zone_starts, zone_counts, lru_count, zone_first
):
    """Free every page in [start, end) whose owner is marked in ``dead`` (process exit).

    ``zone_counts[z]`` receives the pages freed per zone. LRU entries become stale.
    """
    nz = zone_starts.size
    for pfn in range(start, end):
        o = owner[pfn]
        if o >= 0 and dead[o]:
            z = 0
            while z + 1 < nz and pfn >= zone_starts[z + 1]:
                z += 1
            f = flags[pfn]
            if (f & F_ONLRU) != 0:
                lru_count[zone_first + z, f & F_LRU_MASK] -= 1
            owner[pfn] = -1
            flags[pfn] = 0
            zone_counts[z] += 1
    return 0


@njit(cache=True)
def isolate_lru(
    data,
    meta,
    flags,
    lru_pos,
    lru_id,
    nr_to_scan,
    limit_pfn,
    out,
    lru_count,
    zone_starts,
    zone_first,
):
    """``isolate_lru_folios()``: take up to ``nr_to_scan`` pages from the tail into ``out``.

    Pages in zones above ``sc->reclaim_idx`` (pfn >= limit_pfn) are skipped without using the
    scan budget and put back at the head. Returns (taken, scanned incl. skipped, skipped).
    """
    cap = data.size
    q = meta[1]
    head = meta[0]
    taken = 0
    scan = 0
    total = 0
    nskip = 0
    skip_list = np.empty(0, dtype=np.int32)
    skip_n = 0
    while q < head and scan < nr_to_scan and taken < nr_to_scan:
        pfn = data[q % cap]
        if pfn >= 0 and _valid(flags, lru_pos, pfn, q, lru_id):
            total += 1
            if pfn >= limit_pfn:
                if skip_n == skip_list.size:
                    grown = np.empty(max(16, 2 * skip_n), dtype=np.int32)
                    grown[:skip_n] = skip_list[:skip_n]
                    skip_list = grown
                skip_list[skip_n] = pfn
                skip_n += 1
                nskip += 1
            else:
                scan += 1
                flags[pfn] = flags[pfn] & ~F_ONLRU
                lru_count[zone_index(pfn, zone_starts, zone_first), lru_id] -= 1
                out[taken] = pfn
                taken += 1
        q += 1
    meta[1] = q
    for i in range(skip_n):
        ring_push(data, meta, lru_pos, skip_list[i])
    return taken, total, nskip


@njit(cache=True)
def shrink_active_pages(
    pfns,
    n,
    flags,
    t_look,
    owner,
    rate,
    lru_pos,
    now_ms,
    inact_data,
    inact_meta,
    lru_count,
    zone_starts,
    zone_first,
):
    """``shrink_active_list()`` body for isolated pages: deactivate all but exec file pages.

    ``folio_referenced()`` clears the accessed bits; referenced anon is deactivated too (only
    VM_EXEC file folios are rotated, and no workload here maps executables). Returns
    (nr_deactivated, nr_rotated).
    """
    deact = 0
    for i in range(n):
        pfn = pfns[i]
        page_referenced(flags, t_look, owner, rate, pfn, now_ms)
        f = flags[pfn]
        f = (f & ~F_ACTIVE) | F_ONLRU
        flags[pfn] = f
        ring_push(inact_data, inact_meta, lru_pos, pfn)
        lru_count[zone_index(pfn, zone_starts, zone_first), f & F_LRU_MASK] += 1
        deact += 1
    return deact, 0


@njit(cache=True)
def check_references(pfns, n, flags, t_look, owner, rate, now_ms, refs):
    """``folio_check_references()`` for each isolated page into ``refs``."""
    for i in range(n):
        pfn = pfns[i]
        referenced_ptes = page_referenced(flags, t_look, owner, rate, pfn, now_ms)
        f = flags[pfn]
        referenced_folio = (f & F_REFERENCED) != 0
        f = f & ~F_REFERENCED
        if referenced_ptes:
            # "All mapped folios start out with page table references from the instantiating
            # fault, so we need to look twice": mark it and spare it once.
            f = f | F_REFERENCED
            flags[pfn] = f
            if referenced_folio:
                refs[i] = FOLIOREF_ACTIVATE
            else:
                refs[i] = FOLIOREF_KEEP
        else:
            flags[pfn] = f
            refs[i] = FOLIOREF_RECLAIM  # RECLAIM_CLEAN for referenced file is the same here


@njit(cache=True)
def putback(
    pfns,
    n,
    flags,
    lru_pos,
    lru_count,
    zone_starts,
    zone_first,
    activate,
    data_i,
    meta_i,
    data_a,
    meta_a,
    base_lru,
):
    """``move_folios_to_lru()``: put isolated pages back, on the active list if ``activate``."""
    for i in range(n):
        pfn = pfns[i]
        f = flags[pfn]
        if activate[i]:
            new = np.uint8(base_lru) | F_ACTIVE
            flags[pfn] = (f & ~F_LRU_MASK) | new | F_ONLRU
            ring_push(data_a, meta_a, lru_pos, pfn)
        else:
            new = np.uint8(base_lru)
            flags[pfn] = (f & ~F_LRU_MASK) | new | F_ONLRU
            ring_push(data_i, meta_i, lru_pos, pfn)
        lru_count[zone_index(pfn, zone_starts, zone_first), new] += 1


@njit(cache=True)
def migrate_pages_to(
    src,
    n,
    owner,
    flags,
    t_look,
    stamp,
    lru_pos,
    vidx,
    dst_start,
    dst_end,
    cursor,
    ring_i_data,
    ring_i_meta,
    ring_a_data,
    ring_a_meta,
    cnt_node_region,
    src_col,
    dst_col,
    keep_young,
    lru_count,
    dst_zidx,
):
    """``migrate_pages()`` of ``n`` pages into free frames of one zone [dst_start, dst_end).

    The new folio inherits the LRU type, PG_active and PG_referenced (``folio_migrate_flags``)
    and the PTE's young bit (``remove_migration_pte`` keeps it); the old frame is freed.
    Source pages must be isolated (off the LRU). Returns (migrated, cursor).
    """
    done = 0
    c = cursor
    span = dst_end - dst_start
    looked = 0
    while done < n and looked < span:
        if c >= dst_end:
            c = dst_start
        if owner[c] < 0:
            s = src[done]
            o = owner[s]
            f = flags[s]
            nf = (f & (F_LRU_MASK | F_REFERENCED | F_YOUNG)) | F_ONLRU
            if keep_young:
                nf = nf | F_YOUNG
            owner[c] = o
            flags[c] = nf
            t_look[c] = t_look[s]
            stamp[c] = stamp[s]
            vidx[c] = vidx[s]
            lru_count[dst_zidx, nf & F_LRU_MASK] += 1
            if (nf & F_ACTIVE) != 0:
                ring_push(ring_a_data, ring_a_meta, lru_pos, c)
            else:
                ring_push(ring_i_data, ring_i_meta, lru_pos, c)
            owner[s] = -1
            flags[s] = 0
            cnt_node_region[o, src_col] -= 1
            cnt_node_region[o, dst_col] += 1
            done += 1
        c += 1
        looked += 1
    return done, c


@njit(cache=True)
def isolate_pages(pfns, flags, lru_count, zone_starts, zone_first, ok):
    """``folio_isolate_lru()`` for given pages: fails for pages not on an LRU."""
    n = 0
    for i in range(pfns.size):
        pfn = pfns[i]
        f = flags[pfn]
        if (f & F_ONLRU) == 0:
            ok[i] = False
            continue
        flags[pfn] = f & ~F_ONLRU
        lru_count[zone_index(pfn, zone_starts, zone_first), f & F_LRU_MASK] -= 1
        ok[i] = True
        n += 1
    return n


@njit(cache=True)
def count_lru_by_zone(flags, owner, start, end, zone_starts, out):
    """Recount LRU pages per zone of one node (for checks; the engine keeps counts live)."""
    nz = zone_starts.size
    for pfn in range(start, end):
        if owner[pfn] >= 0 and (flags[pfn] & F_ONLRU) != 0:
            z = 0
            while z + 1 < nz and pfn >= zone_starts[z + 1]:
                z += 1
            out[z, flags[pfn] & F_LRU_MASK] += 1
