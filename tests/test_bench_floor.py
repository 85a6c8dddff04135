"""bench/bench_floor.py measures the engine's own per-page kernels (isolate_lru,
check_references) on a synthetic machine: the list it builds must be one the engine accepts
as valid LRU entries (PageLRU, the list's lru id, the entry's position), or a pass would take
nothing off it and the floor would be the cost of an empty loop."""

from __future__ import annotations

import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench"
sys.path.insert(0, str(BENCH))

from bench_floor import floors, layout  # noqa: E402


def test_floor_passes_take_every_page():
    # floors() raises unless each scan pass takes all n pages off the list and each fault
    # finds its page mapped and protected
    f = floors(1 << 14, repeat=1)
    assert all(v > 0 for v in f.values()), f


def test_layout_is_the_engine_per_page_state():
    kept = layout()
    # the rmap word, flags, LRU position, last look, the PTE and one LRU ring entry
    assert set(kept) == {"gvp", "flags", "lru_pos", "t_look", "PTE (v2p)", "LRU ring entry"}
    assert kept["flags"] == 1 and all(v >= 1 for v in kept.values())
