"""A VM run's CSVs -> ``summary.json`` (docs/outputs.md), with the scenario's phases.

``reclaimsim.realkernel.load_recording`` does all the per-phase arithmetic (the same windows,
samples and hot-set rule as for the shared recordings), here with the scenario's own phases
(``PHASE:<name>`` -> ``PHASE_END:<name>``; a phase name used twice counts once, the first
time). A kernel release without a simulator policy (say a 6.6 bzImage) gets ``policy = None``
instead of an error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .. import realkernel
from .parse import phase_windows


def scenario_windows(events: list[tuple[float, str, str]]) -> list[tuple[str, tuple, tuple]]:
    seen: list[str] = []
    for name, _, _ in phase_windows(events):
        if name not in seen:
            seen.append(name)
    return [(n, (f"PHASE:{n}",), (f"PHASE_END:{n}",)) for n in seen]


def _policy(release: str) -> str | None:
    try:
        return realkernel.policy_for_kernel(release)
    except ValueError:
        return None


def build_summary(run_dir: Path, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """summary.json dict for a VM run folder written by :func:`reclaimsim.vm.parse.parse_run`."""
    import csv

    with (Path(run_dir) / "events.csv").open(newline="") as f:
        events = [(float(r["t"]), r["event"], r["detail"]) for r in csv.DictReader(f)]
    windows = scenario_windows(events)
    s = realkernel.load_recording(Path(run_dir), windows=windows, policy=_policy)
    boot = next((t for t, name, _ in events if name == "BOOT_DONE"), None)
    s["script_t0_s"] = boot
    s.update(extra or {})
    return s
