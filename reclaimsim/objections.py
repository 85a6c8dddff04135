"""Reviewers' objections to the hopeless-node patches, each as a number on the scoreboard.

Every patch in the kswapd_failures family (kernel-spec.md part 2) drew an objection that is a
claim about behaviour: "waking kswapd does not help when CXL is full", "it costs work on the
allocation hot path", "a periodic wake makes no sense for a really hopeless node". Each entry
below names the reviewer, the mail, the scenario where the claim can be seen, the policy it is
about, the baseline it is compared with and the metric that answers it. The scoreboard prints
the metric for both cells; a reader sees whether the objection holds in the simulation.

Metrics come from ``metrics.compute`` and ``trace_metrics`` (kswapd runs that reclaimed nothing
and resets of ``kswapd_failures`` by reason, from the ``mm_vmscan_kswapd_reclaim_fail`` and
``mm_vmscan_kswapd_clear_hopeless`` events).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Objection:
    """One reviewer's claim about one patch, and where the simulation shows it."""

    reviewer: str
    mail: str
    claim: str
    policy: str
    baseline: str
    scenario: str
    metric: str
    reads: str  # how to read the number: which direction supports the objection


OBJECTIONS: tuple[Objection, ...] = (
    Objection(
        "Karim Manaouil",
        "Zk88UTrNIAMWdLMs@localhost.localdomain",
        "if CXL is full, waking kswapd does not help: the revived kswapd fails again",
        "byungchul-v1",
        "v6.12",
        "vm-2g1g-hopeless",
        "kswapd_fail_runs_node0",
        "more failed kswapd0 runs than the baseline = the revival was wasted",
    ),
    Objection(
        "Ying Huang",
        "87bk4hcf7h.fsf@yhuang6-desk2.ccr.corp.intel.com",
        "nr_may_reclaimable adds work to the allocation hot path (a shared counter per node)",
        "byungchul-v1",
        "v6.12",
        "vm-2g1g-hopeless",
        "hot_path_ops_per_alloc",
        "counter updates per allocated page; the baseline adds none",
    ),
    Objection(
        "Ying Huang",
        "87bk4hcf7h.fsf@yhuang6-desk2.ccr.corp.intel.com",
        "too limited: in tiering nothing allocates on the hopeless node after the kill "
        "(promotion never direct-reclaims), so nothing revives it",
        "byungchul-v2",
        "v6.18",
        "vm-2g1g-hopeless",
        "hot_node0_share_p3_W",
        "share of W's hot set on the top tier at the end of p3; lower than v6.18 = "
        "tiering stays broken",
    ),
    Objection(
        "Byungchul Park",
        "20240605015021 (reply to Ying Huang)",
        "waking kswapd every 10 s makes no sense for a node that really is hopeless",
        "tiering-0.8",
        "v6.12",
        "weiner-2017-kswapd-spin-vm",
        "kswapd_fail_runs_node0",
        "kswapd0 runs that reclaimed nothing on a node with nothing reclaimable",
    ),
    Objection(
        "Jiayuan Chen",
        "mitigate spurious kswapd_failures reset from direct reclaim (v4, 2026-01-20)",
        "a reclaimer that frees a few pages on an unbalanced node resets kswapd_failures, so a "
        "failing kswapd never stops (the report blames direct/memcg reclaim; the patch also "
        "requires balance for kswapd's own resets)",
        "v6.18",
        "jiayuan-balanced",
        "jiayuan-2026-memcg-high-reset-vm",
        "hopeless_clears_node0",
        "resets of a non-zero kswapd_failures on node0, any reason (by reason: "
        "hopeless_clears_<reason>_node0)",
    ),
)


def trace_metrics(events: list[tuple[float, str, int, str]]) -> dict[str, float]:
    """Per node: kswapd runs that reclaimed nothing (``kswapd_fail_runs_node<N>``) and resets
    of ``kswapd_failures`` in all (``hopeless_clears_node<N>``) and by reason
    (``hopeless_clears_<reason>_node<N>``), from the trace.

    ``balance_pgdat`` emits ``mm_vmscan_kswapd_reclaim_fail`` for every run that ends with
    ``sc.nr_reclaimed == 0``; ``kswapd_clear_hopeless`` emits ``mm_vmscan_kswapd_clear_hopeless``
    with the reason of H7's enum (KSWAPD, DIRECT, PCP, OTHER).
    """
    m: dict[str, float] = {}
    for _t, name, nid, detail in events:
        if nid < 0:
            continue
        if name == "mm_vmscan_kswapd_reclaim_fail":
            key = f"kswapd_fail_runs_node{nid}"
            m[key] = m.get(key, 0) + 1
        elif name == "mm_vmscan_kswapd_clear_hopeless":
            reason = (
                detail.rsplit("reason=", 1)[-1].split()[0].lower()
                if "reason=" in detail
                else "other"
            )
            for key in (f"hopeless_clears_{reason}_node{nid}", f"hopeless_clears_node{nid}"):
                m[key] = m.get(key, 0) + 1
    return m


def objection_rows(cells: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per objection whose two cells are both on the scoreboard."""
    by = {(c["scenario"], c["policy"]): c for c in cells if c.get("status") == "ok"}
    rows = []
    for o in OBJECTIONS:
        a = by.get((o.scenario, o.policy))
        b = by.get((o.scenario, o.baseline))
        if a is None or b is None:
            continue
        rows.append(
            {
                "reviewer": o.reviewer,
                "claim": o.claim,
                "scenario": o.scenario,
                "policy": o.policy,
                "baseline": o.baseline,
                "metric": o.metric,
                "value": a["metrics"].get(o.metric, 0),
                "baseline_value": b["metrics"].get(o.metric, 0),
                "reads": o.reads,
            }
        )
    return rows
