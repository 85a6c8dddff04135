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
``gvp`` ("global virtual page", int32; -1 = free frame): the page's ``page->mapping`` and
``page->index`` in one word, the index of its PTE in the page-table arena
(``state.Regions.v2p``). Every region's table starts at a multiple of 2^``SPAN_SHIFT``
entries, so its owner region (the VMA, found from the address as the kernel finds a page's
mapping) is ``span_owner[(gvp >> SPAN_SHIFT) + 1]`` (:func:`gvp_owner`; entry 0 is -1, the
owner of a free frame) and its virtual page is ``gvp - vspan[owner, 0]`` (``page->index``).
A page-table entry ``v2p[g]`` is valid iff ``gvp[v2p[g]] == g``. Frames of regions without a
page table (kernel allocations, the hugetlb pool) hold their span's base.
``t_look``: ms when the accessed bit was last cleared (rate-based reference draws).
``stamp``: NUMA-balancing access-time stamp in ms (``folio_xchg_access_time``), meaningful
only while the page is PROT_NONE: written where ``change_pte_range`` sets PROT_NONE, read and
rewritten by that page's hint fault, not copied by migration (so only frames a scan protected
are ever paged in).
"""

from __future__ import annotations

import contextlib
import ctypes
import mmap
import os
import sys
from collections.abc import Callable, Iterator

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

try:
    from numpy._core import multiarray as _np_multiarray
except ImportError:  # numpy < 2
    from numpy.core import multiarray as _np_multiarray  # type: ignore[no-redef]

F_LRU_MASK = np.uint8(0x03)
F_ACTIVE = np.uint8(0x01)
F_FILE = np.uint8(0x02)  # bit 1 of the LRU id is "file" as in enum lru_list
F_ONLRU = np.uint8(0x04)
F_REFERENCED = np.uint8(0x08)
F_YOUNG = np.uint8(0x10)
F_PROTNONE = np.uint8(0x20)

# positions are kept modulo 2^32 in ``lru_pos`` (uint32): a stale entry could only alias a
# live one after 2^32 pushes to one list while it sat there, i.e. never
POS_MASK = np.int64(0xFFFFFFFF)

# page-table spans in the arena start at multiples of 2^SPAN_SHIFT entries (16 MiB of virtual
# memory): the owner of a page is looked up per block of its gvp (state.Regions.span_owner)
SPAN_SHIFT = 12
SPAN_BLOCK = 1 << SPAN_SHIFT

# folio_check_references() results
FOLIOREF_RECLAIM = 0
FOLIOREF_KEEP = 1
FOLIOREF_ACTIVATE = 2


class _AnonMap:
    """An int32 array in its own anonymous mapping (``mmap``), resized with ``mremap``.

    Growing a ring by ``np.empty`` + copy first-touches a fresh array of twice the size
    (each new 4 KiB page costs a host page fault, ~7-9 us on the project VM, see
    docs/performance.md) while the old one is still resident. ``mremap(MREMAP_MAYMOVE)``
    moves the old pages' page-table entries instead: no copy, no fault for them, no second
    copy resident; the new half is faulted in only where it is written. Shrinking unmaps the
    pages past the new end, which gives them back at once.
    ``np.asarray(obj)`` is a view whose base is this object, so the mapping lives as long as
    any view of it; after :meth:`resize` the old views must not be used (every ring user
    re-reads ``LruRing.data`` after ``reserve``).
    """

    __slots__ = ("addr", "nbytes", "n", "__weakref__")

    def __init__(self, n: int) -> None:
        self.nbytes = _map_bytes(n)
        addr = _libc.mmap(None, self.nbytes, _PROT_RW, _MAP_ANON_PRIVATE, -1, 0)
        if addr is None or addr == _MAP_FAILED:
            raise MemoryError(f"mmap of {self.nbytes} bytes failed")
        self.addr = addr
        self.n = n

    @property
    def __array_interface__(self) -> dict:
        return {"shape": (self.n,), "typestr": "<i4", "data": (self.addr, False), "version": 3}

    def resize(self, n: int) -> _AnonMap:
        """A mapping of ``n`` entries holding this one's first ``min(n, self.n)`` entries
        (this one is given up)."""
        new = object.__new__(_AnonMap)
        new.nbytes = _map_bytes(n)
        addr = _libc.mremap(self.addr, self.nbytes, new.nbytes, _MREMAP_MAYMOVE)
        if addr is None or addr == _MAP_FAILED:
            raise MemoryError(f"mremap to {new.nbytes} bytes failed")
        new.addr, new.n = addr, n
        self.addr = 0  # the pages moved: nothing left to unmap
        return new

    def resident_bytes(self) -> int:
        """Bytes of the mapping backed by memory now (``mincore``): what it costs in RSS."""
        npages = self.nbytes // mmap.PAGESIZE
        vec = (ctypes.c_ubyte * npages)()
        if _libc.mincore(ctypes.c_void_p(self.addr), self.nbytes, vec) != 0:
            raise OSError(ctypes.get_errno(), "mincore failed")
        return int(np.frombuffer(vec, dtype=np.uint8).astype(bool).sum()) * mmap.PAGESIZE

    def release(self, lo: int, hi: int) -> int:
        """``madvise(MADV_DONTNEED)`` the whole pages within entries [lo, hi): their memory
        goes back now and reads as zeros (a later write faults a page in again). Returns
        the bytes released."""
        a = (4 * lo + mmap.PAGESIZE - 1) // mmap.PAGESIZE * mmap.PAGESIZE
        b = 4 * hi // mmap.PAGESIZE * mmap.PAGESIZE
        if b <= a:
            return 0
        if _libc.madvise(ctypes.c_void_p(self.addr + a), b - a, _MADV_DONTNEED) != 0:
            raise OSError(ctypes.get_errno(), "madvise(MADV_DONTNEED) failed")
        return b - a

    def __del__(self) -> None:
        if self.addr and _libc is not None:  # None: interpreter shutdown, the OS unmaps
            _libc.munmap(self.addr, self.nbytes)
            self.addr = 0


def _map_bytes(n: int) -> int:
    return max(mmap.PAGESIZE, (4 * n + mmap.PAGESIZE - 1) // mmap.PAGESIZE * mmap.PAGESIZE)


try:  # Linux: mmap/mremap from libc; elsewhere rings are resized by copying
    _libc = ctypes.CDLL(None, use_errno=True)
    _libc.mmap.restype = ctypes.c_void_p
    _libc.mmap.argtypes = [
        ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long
    ]  # fmt: skip
    _libc.mremap.restype = ctypes.c_void_p
    _libc.mremap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_size_t, ctypes.c_int]
    _libc.munmap.restype = ctypes.c_int
    _libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    _libc.mincore.restype = ctypes.c_int
    _libc.madvise.restype = ctypes.c_int
    _libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    _MADV_DONTNEED = 4
    _libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]
    _PROT_RW = mmap.PROT_READ | mmap.PROT_WRITE
    _MAP_ANON_PRIVATE = mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS
    _MREMAP_MAYMOVE = 1
    _MAP_FAILED = ctypes.c_void_p(-1).value
    HAVE_MREMAP = sys.platform.startswith("linux")
except (AttributeError, OSError):
    HAVE_MREMAP = False


@contextlib.contextmanager
def base_pages() -> Iterator[None]:
    """Allocate the simulator's arrays in 4 KiB pages, not transparent huge pages.

    numpy asks for THP on every large array (``madvise(MADV_HUGEPAGE)``). On a VM with free
    page reporting (virtio-balloon; the project machine) the guest reports only free blocks
    of pageblock order (2 MiB) to the host, which discards them: a huge page always comes
    from such a block and its first touch faults all 512 4 KiB pages in on the host, while
    4 KiB faults are served first from the unreported low-order free pages. Measured on the
    project VM: first touch of 1 GiB 2.3 s with THP, 0.32 s without; the full-scale
    storyboard's system time 6.8-7.4 s -> 2.1-3.2 s, for ~0.2-0.5 s more user CPU (4 KiB
    pages miss the TLB more; docs/performance.md). The previous setting is restored on
    exit, so numpy in the caller's process keeps its own choice.
    ``RECLAIMSIM_THP=1`` in the environment keeps numpy's advice (a host without page
    reporting, where huge pages only save TLB misses).
    """
    set_thp = getattr(_np_multiarray, "_set_madvise_hugepage", None)
    if set_thp is None or os.environ.get("RECLAIMSIM_THP") == "1":
        yield
        return
    old = set_thp(False)
    try:
        yield
    finally:
        set_thp(old)


# Ring sizing. A ring is a power of two of slots (positions map to slots with a mask). It
# grows when its live entries would fill more than 3/4 of it, and shrinks when what it holds
# fits in 1/8 of it (to between 1/4 and 1/2 full: the gap between the two keeps a ring that
# swings around one size from resizing back and forth). Below RING_FLOOR slots (256 KiB) a
# ring is never shrunk, and a span below it is never compacted early: small rings are not
# worth the passes.
RING_MIN = 64
RING_FLOOR = 1 << 16
# slots a draining list's tail has left are given back in runs of at least this many (2 MiB):
# a write to a released page faults it in again, so never per batch
RELEASE_CHUNK = 1 << 19


class LruRing:
    """One LRU list of one lruvec: a ring of PFNs, head = most recently added.

    Its resident memory follows its live entries, not the largest size it ever had:
    :meth:`reserve` compacts it (drops stale entries in place, keeping order) when it is
    full, when its stale entries dominate (span > 2 * live + RING_FLOOR) or when what it
    holds would fit in 1/8 of it, and then resizes it (:meth:`resize`). Stale entries pile
    up where pages leave a list without being isolated from it: a process exit frees whole
    regions (``zap_pte_range``), migration moves a page to another node's list. ``count``
    bounds the live entries from above without a pass: a view of the lruvec's per-zone LRU
    sizes (``lru_zone_size``), summed.
    """

    __slots__ = ("data", "meta", "count", "_map", "_mark", "_stale_at")

    # bumped whenever any ring's ``data`` array is replaced (resize): callers that keep
    # tuples of ring arrays (MGLRU's per-batch context) rebuild them only then
    resizes = 0

    def __init__(self, capacity: int = 1024) -> None:
        cap = RING_MIN
        while cap < capacity:
            cap *= 2  # a power of two: positions map to slots with a mask, not a division
        self._map = _AnonMap(cap) if HAVE_MREMAP else None
        self.data = np.asarray(self._map) if self._map is not None else np.empty(cap, np.int32)
        self.data[:] = -1
        # meta[0] = head (next push position), meta[1] = tail (next pop position), absolute.
        self.meta = np.zeros(2, dtype=np.int64)
        # a (zones x lists) view whose sum is >= the live entries (set by the lists' owner)
        self.count: np.ndarray | None = None
        self._mark = (0, 0)  # (head, tail) when release_drained() last looked
        # without shrink: the span at which to test for stale dominance again
        self._stale_at = 0

    def needs_compaction(self, k: int, shrink: bool = True) -> bool:
        """Should :meth:`reserve` compact before ``k`` more pushes? Full, mostly stale, or
        (with ``shrink``) holding so little that the ring should shrink. O(1): no pass over
        the entries."""
        head, tail = self.meta.tolist()  # one call: cheaper than two numpy scalar reads
        used = head - tail
        cap = self.data.size
        if used + k > cap:
            return True
        if shrink and cap > RING_FLOOR and 8 * (used + k) < cap:
            return True
        if not shrink:
            # reservations that only grow come once per MGLRU batch: test stale dominance
            # (a sum over the live bound) again once the span grew by RING_FLOOR / 4, not
            # at every call; an exit's stale entries are dropped by the shrinking trim
            if used < self._stale_at:
                return False
            self._stale_at = used + RING_FLOOR // 4
        if used > RING_FLOOR and self.count is not None:
            # (zones x lists) sizes; summed in Python (tolist): ~10x cheaper than .sum()
            return used > 2 * sum(map(sum, self.count.tolist())) + RING_FLOOR
        return False

    def reserve(self, k: int, flags: np.ndarray, lru_pos: np.ndarray, lru_id: int) -> None:
        """Make room for ``k`` more pushes and keep the ring's size in line with its live
        entries: compact when :meth:`needs_compaction`, then :meth:`resize`.

        Every compaction drops at least as many stale entries (or empty slots given back)
        as the live ones it moves, or makes room the pushes need, so the passes stay
        amortised O(1) per push. The pages' LRU order is unchanged; their ``lru_pos`` are
        renumbered (they are only validity marks).
        """
        self.make_room(
            k, lambda: _ring_compact(self.data, self.meta, flags, lru_pos, np.uint8(lru_id))
        )

    def make_room(self, k: int, compact: Callable[[], int], shrink: bool = True) -> None:
        """:meth:`reserve` with the list's own compaction pass (``compact()`` drops the stale
        entries and returns the live ones; MGLRU's generation rings check generations).
        ``shrink=False``: only compact and grow, never shrink (a ring whose reservations
        swing between its size and the whole lruvec's would otherwise be shrunk and grown
        back on every batch)."""
        if not self.needs_compaction(k, shrink):
            return
        used = int(self.meta[0]) - int(self.meta[1])
        if used + k > self.data.size and self.count is not None:
            # full: if the live bound says at most 1/8 of it can be stale, a pass would
            # drop too little to matter; grow without it (a list filling up, the common
            # case: 0.75 s of compaction passes that found nothing stale at full scale)
            if used - sum(map(sum, self.count.tolist())) <= used >> 3:
                self.resize(used + k, shrink)
                return
        self.resize(compact() + k, shrink)
        self._stale_at = 0  # the span just shrank: test again at the next reservation

    def resize(self, need: int, shrink: bool = True) -> None:
        """After a compaction: a capacity for ``need`` entries, doubled while they would
        fill more than 3/4 of it, or halved while they fill less than 1/4 (not below
        RING_FLOOR) if they fill less than 1/8 of it now.

        Resizing keeps absolute positions (and so ``lru_pos``): each entry moves from slot
        ``q & (old - 1)`` to ``q & (new - 1)`` (:func:`_ring_remap`), in the same mapping
        resized with ``mremap`` (growth faults in only what is written; shrinking unmaps
        the pages past the end), or without it into a fresh array (:func:`_ring_copy`).
        """
        cap = self.data.size
        new_cap = cap
        while need > new_cap * 3 // 4:
            new_cap *= 2
        if shrink and new_cap == cap and cap > RING_FLOOR and 8 * need < cap:
            while new_cap > RING_FLOOR and 4 * need < new_cap:
                new_cap //= 2
        if new_cap == cap:
            return
        if self._map is not None:
            if new_cap < cap:
                _ring_remap(self.data, self.meta, cap, new_cap)  # into the part that stays
            self.data = None  # drop the view of the old mapping before it moves
            self._map = self._map.resize(new_cap)
            self.data = np.asarray(self._map)
            LruRing.resizes += 1
            if new_cap > cap:
                _ring_remap(self.data, self.meta, cap, new_cap)
        else:
            # only positions [tail, head) are ever read: no need to fill (a fill pass over a
            # fresh GiB-sized ring costs its page faults twice)
            new = np.empty(new_cap, dtype=np.int32)
            _ring_copy(self.data, self.meta, new)
            self.data = new
            LruRing.resizes += 1

    def release_drained(self) -> int:
        """Give back the memory of the slots a draining list's tail has left behind.

        A list that isolation empties faster than pages are added to it (pops >= 2x pushes
        since the last look) keeps its slots resident up to its high-water mark until the
        head comes round to them again, which may be never. Once the tail has moved
        RELEASE_CHUNK past the last look, the whole pages of the slots between are
        released. Only slots of positions [head - capacity, tail) are touched: they hold
        no entry of [tail, head). A steady list (pops ~ pushes) releases nothing, so the
        head does not fault back in what was just given back. Returns the bytes released.
        """
        if self._map is None:
            return 0
        head, tail = self.meta.tolist()
        cap = self.data.size
        lo = max(self._mark[1], head - cap)
        if tail - lo < RELEASE_CHUNK:
            return 0
        pops, pushes = tail - self._mark[1], head - self._mark[0]
        self._mark = (head, tail)
        if pops < 2 * pushes:
            return 0
        a, b = lo & (cap - 1), tail & (cap - 1)
        if a < b:
            return self._map.release(a, b)
        return self._map.release(a, cap) + self._map.release(0, b)

    def resident_bytes(self) -> int:
        """Bytes of this ring's slots backed by memory (all of them without ``mremap``)."""
        return self._map.resident_bytes() if self._map is not None else self.data.nbytes


@intrinsic
def prefetch(typingctx, arr, idx):  # type: ignore[no-untyped-def]
    """``prefetch(&arr[idx])`` (llvm.prefetch, read, keep in all cache levels): a hint to
    the CPU, no effect on results; the index is not bounds-checked (callers pass valid ones)."""
    sig = types.void(arr, idx)

    def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
        aryty = signature.args[0]
        ary = context.make_array(aryty)(context, builder, args[0])
        ptr = cgutils.get_item_pointer(
            context, builder, aryty, ary, [args[1]], wraparound=False, boundscheck=False
        )
        i8p = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        fnty = ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0i8")
        builder.call(
            fn, [builder.bitcast(ptr, i8p), ir.Constant(i32, 0), ir.Constant(i32, 3),
                 ir.Constant(i32, 1)],
        )  # fmt: skip
        return context.get_dummy_value()

    return sig, codegen


# Pages of an LRU list sit at random PFNs once the list has been rotated, migrated into
# and refilled: isolate_lru() prefetches the struct page fields of the entry this many
# slots ahead (one SWAP_CLUSTER_MAX batch), so that the next batch's misses overlap this
# one's work (a shuffled list of 157 M pages: 101 -> 34 ns per page; in frame order no
# change; docs/performance.md).
LRU_PF_AHEAD = 32


@njit(cache=True, inline="always")
def _valid(flags, lru_pos, pfn, q, lru_id):
    """The entry at position ``q`` is the page's live one (``&``, not ``and``: a branch-free
    inlined helper lets numba drop its array reference counting)."""
    f = flags[pfn]
    return ((f & F_ONLRU) != 0) & ((f & F_LRU_MASK) == lru_id) & (lru_pos[pfn] == (q & POS_MASK))


@njit(cache=True)
def _ring_compact(data, meta, flags, lru_pos, lru_id):
    """Drop stale entries in place, keeping order: live entries move toward the head end's
    old slots, renumbered from the tail (a slot is only written after it was read)."""
    mask = data.size - 1
    w = meta[1]
    for q in range(meta[1], meta[0]):
        pfn = data[q & mask]
        if pfn >= 0:
            if _valid(flags, lru_pos, pfn, q, lru_id):
                data[w & mask] = pfn
                lru_pos[pfn] = w & POS_MASK
                w += 1
    live = w - meta[1]
    meta[0] = w
    return live


@njit(cache=True)
def _ring_copy(data, meta, new):
    """Move a ring into a larger one; absolute positions (and ``lru_pos``) are unchanged."""
    mask = data.size - 1
    nmask = new.size - 1
    for q in range(meta[1], meta[0]):
        new[q & nmask] = data[q & mask]


@njit(cache=True)
def _ring_remap(data, meta, old_cap, new_cap):
    """Move each entry of [tail, head) from slot ``q & (old_cap - 1)`` to ``q & (new_cap -
    1)``, in place (``data`` has max(old_cap, new_cap) slots). Growing, a moved entry goes
    to a slot >= old_cap, which holds no entry still to move; shrinking (span <= new_cap), an
    entry in a slot < new_cap stays, and one above goes to a slot no other entry of the span
    maps to. So one pass in any order is enough."""
    omask = old_cap - 1
    nmask = new_cap - 1
    for q in range(meta[1], meta[0]):
        d = q & nmask
        s = q & omask
        if d != s:
            data[d] = data[s]


@njit(cache=True, inline="always")
def ring_push(data, meta, lru_pos, pfn):
    """``list_add(&folio->lru, &lruvec->lists[lru])``: add at the head."""
    q = meta[0]
    data[q & (data.size - 1)] = pfn  # capacities are powers of two
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


# Virtual-to-frame tables (the page tables ``change_prot_numa`` walks): region r's virtual
# page v sits in frame ``v2p[vspan[r, 0] + v]`` (state.Regions keeps the arena). An entry is
# written whenever a page is placed (allocation, migration) and never cleared: a reader
# accepts entry g only if that frame's ``gvp`` is still g, so a freed, swapped-out or reused
# frame is simply not found there.


@njit(cache=True, inline="always")
def gvp_owner(span_owner, g):
    """The region owning arena index ``g`` (-1 for g = -1, a free frame): ``folio->mapping``
    found from the block of the address (``span_owner[0]`` is the free frames' -1)."""
    return span_owner[(np.int64(g) >> SPAN_SHIFT) + 1]


@njit(cache=True, inline="always")
def page_owner(gvp, span_owner, pfn):
    """The region owning frame ``pfn`` (-1: free)."""
    return gvp_owner(span_owner, gvp[pfn])


def seed_rng(seed: int) -> np.ndarray:
    """The state of the kernel's per-page random draws (splitmix64), for bit-for-bit reruns.

    An explicit state array rather than numba's global generator: a draw is then a few
    integer operations inlined in the loop (numba's ``np.random`` in a conditional branch
    costs a thread-local lookup per call, ~20 ns, measured in docs/performance.md).
    """
    return np.array([(seed * 0x9E3779B97F4A7C15 + 0x632BE59BD9B4E019) % 2**64], dtype=np.uint64)


@njit(cache=True, inline="always")
def rand01(rs):
    """A uniform double in [0, 1) from the splitmix64 stream ``rs`` (advances it)."""
    x = rs[0] + np.uint64(0x9E3779B97F4A7C15)
    rs[0] = x
    z = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
    return np.float64(z >> np.uint64(11)) * (1.0 / 9007199254740992.0)


@njit(cache=True, inline="always")
def page_referenced_run(flags, t_look, gvp, span_owner, rate, pfn, now_ms, rs, last_x, last_p):
    """``folio_referenced()`` for one mapping: was the accessed bit set since the last look?

    The bit is set at fault time (YOUNG) or by the workload's touches, drawn here from the
    region's per-page touch rate over the time since the bit was last cleared. Clears it.
    Returns (young, x, p): a caller looking at a run of pages passes back the last
    (x, p) = (rate * dt, P(touched in dt)), so ``expm1`` runs only when x changes (pages of
    one region last looked at in the same ms share it; ~6 ns a call, most of a look).
    """
    f = flags[pfn]
    lam = rate[page_owner(gvp, span_owner, pfn)]
    young, x, p = referenced_draw(f, lam, t_look[pfn], now_ms, rand01(rs), last_x, last_p)
    flags[pfn] = f & ~F_YOUNG
    t_look[pfn] = now_ms
    return young, x, p


@njit(cache=True, inline="always")
def referenced_draw(f, lam, t_prev, now_ms, u, last_x, last_p):
    """The draw of :func:`page_referenced_run` on scalars: (young, x, p) for a page with
    flags ``f``, touch rate ``lam``, last looked at ``t_prev``, and the uniform draw ``u``.

    P(touched in dt) = 1 - exp(-x), x = lam * dt (1.0 in double precision from x >= 40).
    One draw per look, taken whether needed or not. A per-page loop that reads the arrays
    itself and calls this (check_references) keeps no array reference counting; an inlined
    helper that takes arrays and branches (the ``expm1`` cache) keeps an atomic
    incref/decref pair per array per page.
    """
    dt = np.float64(np.int64(now_ms) - np.int64(t_prev)) * 1e-3
    x = lam * dt
    p = last_p
    if x != last_x:
        p = -np.expm1(-min(x, 40.0))
    young = ((f & F_YOUNG) != 0) | ((lam > 0.0) & (dt > 0.0) & ((x >= 40.0) | (u < p)))
    return young, x, p


@njit(cache=True, inline="always")
def page_referenced(flags, t_look, gvp, span_owner, rate, pfn, now_ms, rs):
    """``folio_referenced()`` for one page on its own (see :func:`page_referenced_run`)."""
    young, _x, _p = page_referenced_run(
        flags, t_look, gvp, span_owner, rate, pfn, now_ms, rs, np.nan, 0.0
    )
    return young


@njit(cache=True)
def alloc_in_range(
    gvp,
    flags,
    t_look,
    lru_pos,
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
    v2p,
    vspan,
):
    """Take ``n`` free frames of one zone for ``region`` and add them to an LRU list.

    The buddy allocator's choice of frame does not matter to reclaim; a cursor that walks the
    zone for free frames is O(frames looked at), amortised O(1) per allocation. Virtual pages
    numbered past the region's table (more faults than its size) share the span's overflow
    slot (state.Regions): their owner is known, no table entry reaches them.
    """
    base = vspan[region, 0]
    size = vspan[region, 1]
    got = 0
    span = end - start
    c = cursor
    looked = 0
    while got < n and looked < span:
        if c >= end:
            c = start
        if gvp[c] < 0:
            flags[c] = np.uint8(lru_id) | F_ONLRU | F_YOUNG
            t_look[c] = now_ms
            v = vstart + got
            g = base + min(v, size)  # the table has room (always, for workloads)
            gvp[c] = g
            v2p[g] = c
            ring_push(ring_data, ring_meta, lru_pos, c)
            got += 1
        c += 1
        looked += 1
    cnt_node_region[region, node_col] += got
    lru_count[zidx, lru_id] += got
    return got, c


@njit(cache=True)
def free_region(gvp, flags, v2p, base, vn, z_start, z_end, zone_counts, lru_count):
    """``zap_pte_range()`` over a VMA at exit: free every present page of ``region`` found
    through its table (``v2p[base + v]`` for the ``vn`` pages faulted in), so the cost is the
    region's size, not the node's. ``zone_counts[z]`` (global zone index) receives the pages
    freed per zone. LRU entries become stale. Returns the pages freed.
    """
    nz = z_start.size
    npfn = gvp.size
    n = 0
    for v in range(vn):
        pfn = v2p[base + v]
        if pfn < 0 or pfn >= npfn:
            continue
        if gvp[pfn] != base + v:
            continue  # swapped out or already gone: the entry is stale
        z = 0
        while z + 1 < nz and not (z_start[z] <= pfn < z_end[z]):
            z += 1
        f = flags[pfn]
        if (f & F_ONLRU) != 0:
            lru_count[z, f & F_LRU_MASK] -= 1
        gvp[pfn] = -1
        flags[pfn] = 0
        zone_counts[z] += 1
        n += 1
    return n


@njit(cache=True)
def take_frames(gvp, flags, start, end, cursor, n, g):
    """Take ``n`` free frames of [start, end) off every LRU (flags 0) for the region whose
    span starts at ``g`` (no page table: every frame holds the base): hugetlb pool pages,
    unmovable kernel allocations. Returns (taken, new cursor)."""
    got = 0
    c = cursor
    looked = 0
    span = end - start
    while got < n and looked < span:
        if c >= end:
            c = start
        if gvp[c] < 0:
            gvp[c] = g
            flags[c] = 0
            got += 1
        c += 1
        looked += 1
    return got, c


@njit(cache=True)
def free_regions(
    gvp,
    span_owner,
    flags,
    start,
    end,
    dead,
    cnt_node_region,
    zone_starts,
    zone_counts,
    lru_count,
    zone_first,
):
    """Free every page in [start, end) whose owner is marked in ``dead``: the O(node) walk
    behind :func:`free_region`, for pages its table does not reach (a swap-in numbered at a
    virtual page still present elsewhere, memory.do_swap_page).

    ``zone_counts[z]`` (the node's zones) receives the pages freed per zone.
    """
    nz = zone_starts.size
    for pfn in range(start, end):
        o = page_owner(gvp, span_owner, pfn)
        if o >= 0 and dead[o]:
            z = 0
            while z + 1 < nz and pfn >= zone_starts[z + 1]:
                z += 1
            f = flags[pfn]
            if (f & F_ONLRU) != 0:
                lru_count[zone_first + z, f & F_LRU_MASK] -= 1
            gvp[pfn] = -1
            flags[pfn] = 0
            zone_counts[z] += 1
    return 0


@njit(cache=True)
def isolate_lru(
    data,
    meta,
    flags,
    lru_pos,
    gvp,
    t_look,
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
    scan budget and put back at the head (in the order met). Returns (taken, scanned incl.
    skipped, skipped). ``gvp`` and ``t_look`` are only prefetched (``folio_referenced`` reads
    them next).
    """
    cap = data.size
    mask = cap - 1
    q = meta[1]
    head = meta[0]
    taken = 0
    scan = 0
    total = 0
    nskip = 0
    while q < head and scan < nr_to_scan and taken < nr_to_scan:
        if q + LRU_PF_AHEAD < head:
            nxt = data[(q + LRU_PF_AHEAD) & mask]
            if nxt >= 0:
                prefetch(flags, nxt)
                prefetch(lru_pos, nxt)
                prefetch(gvp, nxt)
                prefetch(t_look, nxt)
        pfn = data[q & mask]
        if pfn >= 0 and _valid(flags, lru_pos, pfn, q, lru_id):
            total += 1
            if pfn >= limit_pfn:
                # back at the head now: its slot (consumed) is the one the push may reuse,
                # and positions >= head are not scanned in this call
                hq = meta[0]
                data[hq & mask] = pfn
                lru_pos[pfn] = hq & POS_MASK
                meta[0] = hq + 1
                nskip += 1
            else:
                scan += 1
                flags[pfn] = flags[pfn] & ~F_ONLRU
                lru_count[zone_index(pfn, zone_starts, zone_first), lru_id] -= 1
                out[taken] = pfn
                taken += 1
        q += 1
    meta[1] = q
    return taken, total, nskip


@njit(cache=True)
def check_references(pfns, n, flags, t_look, gvp, span_owner, rate, now_ms, refs, rs):
    """``folio_check_references()`` for each isolated page into ``refs``."""
    lx = np.nan
    lp = 0.0
    for i in range(n):
        pfn = pfns[i]
        # page_referenced_run() written out around its scalar draw (see referenced_draw);
        # the owner lookup is page_owner()'s, in place for the same reason
        f = flags[pfn]
        lam = rate[span_owner[(np.int64(gvp[pfn]) >> SPAN_SHIFT) + 1]]
        u = rand01(rs)
        referenced_ptes, lx, lp = referenced_draw(f, lam, t_look[pfn], now_ms, u, lx, lp)
        t_look[pfn] = now_ms
        f = f & ~F_YOUNG
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
def count_lru_by_zone(flags, gvp, span_owner, rmemcg, start, end, zone_starts, out):
    """Recount LRU pages per memcg and zone of one node (for checks; counts are kept live)."""
    nz = zone_starts.size
    for pfn in range(start, end):
        o = page_owner(gvp, span_owner, pfn)
        if o >= 0 and (flags[pfn] & F_ONLRU) != 0:
            z = 0
            while z + 1 < nz and pfn >= zone_starts[z + 1]:
                z += 1
            out[rmemcg[o], z, flags[pfn] & F_LRU_MASK] += 1


# ---------------------------------------------------------------------------------------------
# Shared pieces of the fused kernels (vmscan.shrink_lruvec, numa_balancing.handle_hint_faults)

# Event counters a fused kernel accumulates; the Python side adds them to /proc/vmstat under
# these names (``*_WHO`` become ``*_kswapd`` or ``*_direct``, ``PGALLOC_*`` follow zone types).
CNT_NAMES = (
    "pgscan_WHO",
    "pgsteal_WHO",
    "pgdemote_WHO",
    "pgscan_anon",
    "pgscan_file",
    "pgsteal_anon",
    "pgsteal_file",
    "pgrefill",
    "pgdeactivate",
    "pgactivate",
    "pgmigrate_success",
    "pgmigrate_fail",
    "pswpout",
    "pgfree",
    "numa_hit",
    "numa_local",
    "numa_other",
    "pgalloc_dma",
    "pgalloc_dma32",
    "pgalloc_normal",
    "pgalloc_movable",
    "numa_hint_faults",
    "numa_hint_faults_local",
    "pgpromote_candidate",
    "pgpromote_candidate_nrl",
    "numa_pages_migrated",
    "pgpromote_success",
)
C_PGSCAN, C_PGSTEAL, C_PGDEMOTE = 0, 1, 2
C_PGSCAN_ANON, C_PGSCAN_FILE, C_PGSTEAL_ANON, C_PGSTEAL_FILE = 3, 4, 5, 6
C_PGREFILL, C_PGDEACTIVATE, C_PGACTIVATE = 7, 8, 9
C_MIGRATE_OK, C_MIGRATE_FAIL, C_PSWPOUT, C_PGFREE = 10, 11, 12, 13
C_NUMA_HIT, C_NUMA_LOCAL, C_NUMA_OTHER, C_PGALLOC0 = 14, 15, 16, 17
C_HINT, C_HINT_LOCAL, C_CAND, C_CAND_NRL, C_NUMA_MIGRATED, C_PROMOTE_OK = 21, 22, 23, 24, 25, 26
NR_CNT = len(CNT_NAMES)


@njit(cache=True)
def ring_push_many(data, meta, lru_pos, pfns):
    """``list_add`` of each page in order (the deferred pushes of a fused kernel)."""
    for i in range(pfns.size):
        ring_push(data, meta, lru_pos, pfns[i])


@njit(cache=True, inline="always")
def migrate_one(
    s,
    c,
    gvp,
    span_owner,
    flags,
    t_look,
    keep_young,
    cnt_node_region,
    src_col,
    dst_col,
    lru_count,
    dst_zidx,
    v2p,
):
    """One page of ``migrate_pages_to`` into free frame ``c`` (the caller found it free).

    The new folio inherits LRU type, PG_active, PG_referenced and the young bit
    (``folio_migrate_flags``, ``remove_migration_pte``); the old frame is left free (gvp -1).
    Its LRU push is left to the caller.

    The access-time stamp (``folio_migrate_flags`` copies ``_last_cpupid``) is not copied:
    the new PTE is not PROT_NONE (``remove_migration_pte`` uses the VMA's protection), and
    the stamp is read only by a hint fault on a PROT_NONE page, whose ``change_pte_range``
    wrote it when it set PROT_NONE (``numa_balancing._protect``). So the copy is never read,
    and leaving it out keeps ``stamp`` untouched (not even paged in) outside the slow tier.
    """
    g = gvp[s]
    o = gvp_owner(span_owner, g)
    f = flags[s]
    nf = (f & (F_LRU_MASK | F_REFERENCED | F_YOUNG)) | F_ONLRU | (F_YOUNG * np.uint8(keep_young))
    gvp[c] = g
    flags[c] = nf
    t_look[c] = t_look[s]
    # the PTE now points at the new frame (remove_migration_pte)
    v2p[g] = c
    lru_count[dst_zidx, nf & F_LRU_MASK] += 1
    gvp[s] = -1
    flags[s] = 0
    cnt_node_region[o, src_col] -= 1
    cnt_node_region[o, dst_col] += 1
