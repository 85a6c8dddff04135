"""The OOM killer (mm/oom_kill.c): ``out_of_memory``, ``oom_badness``, victim selection."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .page_alloc import Gfp
    from .state import Kernel


def oom_badness(
    rss: int, swapents: int, pgtables: int, oom_score_adj: int, totalpages: int
) -> int | None:
    """``oom_badness()``: rss + swap entries + page-table pages + adj * totalpages / 1000;
    None (LONG_MIN) for unkillable tasks (oom_score_adj == -1000)."""
    if oom_score_adj == -1000:
        return None
    points = rss + swapents + pgtables
    return points + oom_score_adj * (totalpages // 1000)


def out_of_memory(k: Kernel, gfp: Gfp, nodemask: list[int] | None, current: Any) -> bool | None:
    """``out_of_memory()``: pick the task with the highest badness (global RSS) and kill it.

    Returns True if the allocating task itself was killed, False if another task was, None if
    there was nothing to kill. ``totalpages`` is RAM + swap, or the nodemask's RAM for a
    mempolicy-constrained (bind) allocation.
    """
    if not gfp.fs:
        return False
    if nodemask is not None:
        totalpages = sum(k.pgdats[n].managed_pages() for n in nodemask)
    else:
        totalpages = sum(pg.managed_pages() for pg in k.pgdats) + k.swap.total_pages
    best = None
    best_pts = None
    for task in k.oom_candidates():
        pts = oom_badness(
            task.rss(k), task.swapents(k), task.pgtables(), task.oom_score_adj, totalpages
        )
        if pts is None:
            continue
        if best_pts is None or pts > best_pts:
            best, best_pts = task, pts
    if best is None:
        return None
    k.vmstat.inc("oom_kill", 1)
    k.trace.emit("mark_victim", -1, f"pid={best.pid} comm={best.name}")
    k.oom_kill(best)
    return best is current
