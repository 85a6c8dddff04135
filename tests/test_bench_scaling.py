"""The full-scale seed scenario at 1/256 and 1/64 of its memory: the same per-phase
transitions of node0 (node_unreclaimable min/max, kswapd runs zero vs non-zero). The story
must not depend on the scale knob. (Whether the last hogs exhaust node1 and get OOM-killed
before node0 is declared hopeless is a race between the hogs' fill and kswapd0's 16 failed
runs; it differs between 1/64 and 1/256 and is not compared: docs/performance.md.)"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
sys.path.insert(0, str(BENCH))

from _common import FULLSCALE, run_once, scaled_scenario, transitions  # noqa: E402


@pytest.mark.skipif(not FULLSCALE.is_file(), reason="full-scale scenario file not present")
def test_transitions_do_not_depend_on_scale():
    got = {}
    for scale in (256, 64):
        s, _wall, _sim = run_once(scaled_scenario(scale), "v6.12")
        got[scale] = {
            ph: [n for n in nodes if n[0] == "0"] for ph, (nodes, _oom) in transitions(s).items()
        }
    assert got[256] == got[64], f"1/256: {got[256]}\n1/64: {got[64]}"
    assert [p for p in got[64]] == ["p1", "p1h", "p2", "p3", "p4"]
