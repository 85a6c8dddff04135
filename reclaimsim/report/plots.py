"""Timeline plot of one run directory (see docs/outputs.md).

`timeline(run_dir)` reads `summary.json` and the parquet files of a run and writes
`timeline.png`: one column of panels sharing the time axis. A panel whose inputs are missing,
empty or lack the needed columns is left out; the phases of the run are shaded on every panel.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import polars as pl  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
from matplotlib.transforms import blended_transform_factory  # noqa: E402

__all__ = ["phase_spans", "timeline"]

PAGES_PER_MIB = 256.0  # 4 KiB base pages
MAX_RECLAIM_RETRIES = 16
ZONE_ORDER = {"DMA": 0, "DMA32": 1, "Normal": 2, "HighMem": 3, "Movable": 4, "Device": 5}
MARKS = (("min", ":"), ("low", "--"), ("high", "-."), ("promo", (0, (1, 1, 4, 1))))
PHASE_COLOURS = ("#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3")
STATE_COLOURS = {"run": "#d62728", "nap": "#ffbf00"}
PROMO_DEMO = (
    ("pgpromote_success", "#2ca02c", "-"),
    ("pgpromote_candidate", "#98df8a", "-"),
    ("numa_hint_faults", "#7f7f7f", ":"),
    ("pgdemote_kswapd", "#d62728", "-"),
    ("pgdemote_direct", "#9467bd", "-"),
)
PANEL_HEIGHT_IN = 2.4
FIG_WIDTH_IN = 12.0
DPI = 90


def _node_colour(node: int) -> str:
    return f"C{node % 10}"


def _read(path: Path) -> pl.DataFrame | None:
    """A parquet file with at least a `t` column and one row, else None."""
    if not path.is_file():
        return None
    try:
        df = pl.read_parquet(path)
    except Exception:  # a torn or foreign file must not kill the whole plot
        return None
    if "t" not in df.columns or df.is_empty():
        return None
    return df.sort("t")


def _has(df: pl.DataFrame | None, *cols: str) -> bool:
    return df is not None and all(c in df.columns for c in cols)


def _f(s: pl.Series) -> np.ndarray:
    return s.cast(pl.Float64).fill_null(np.nan).to_numpy()


def phase_spans(t: Any, phase: Any) -> list[tuple[str, float, float]]:
    """Contiguous runs of the same non-empty phase as `(name, first t, last t)`."""
    ts = [float(x) for x in t]
    ps = ["" if p is None else str(p) for p in phase]
    spans: list[tuple[str, float, float]] = []
    i = 0
    while i < len(ps):
        j = i
        while j + 1 < len(ps) and ps[j + 1] == ps[i]:
            j += 1
        if ps[i]:
            spans.append((ps[i], ts[i], ts[j]))
        i = j + 1
    return spans


def _runs(labels: list[str], t: np.ndarray, ends: np.ndarray) -> list[tuple[str, float, float]]:
    """Merge consecutive samples with the same label into (label, start, end) spans."""
    out: list[tuple[str, float, float]] = []
    for lab, a, b in zip(labels, t, ends, strict=True):
        if out and out[-1][0] == lab and out[-1][2] >= a:
            out[-1] = (lab, out[-1][1], float(b))
        else:
            out.append((lab, float(a), float(b)))
    return out


def _rate(t: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-second rate of a cumulative series, value at the end of each interval."""
    if len(t) < 2:
        return t[:0], v[:0]
    dt = np.diff(t)
    dv = np.diff(v)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(dt > 0, dv / dt, np.nan)
    return t[1:], r


def _legend(ax: Axes, extra: list[Any] | None = None, axes2: Axes | None = None) -> None:
    """Legend outside the plot on the right, merging a twin axis and proxy handles."""
    handles, labels = ax.get_legend_handles_labels()
    if axes2 is not None:
        h2, l2 = axes2.get_legend_handles_labels()
        handles, labels = handles + h2, labels + l2
    for h in extra or []:
        handles.append(h)
        labels.append(h.get_label())
    if handles:
        x = 1.01 if axes2 is None else 1.08  # clear the twin axis' ticks and label
        ax.legend(handles, labels, fontsize=7, loc="upper left", bbox_to_anchor=(x, 1.0))


def _symlog_if_wide(ax: Axes, values: list[np.ndarray]) -> None:
    """Symlog y axis when positive values span more than ~1.5 decades."""
    vals = np.concatenate([v[np.isfinite(v)] for v in values]) if values else np.array([])
    pos = vals[vals > 0]
    if pos.size and pos.max() / pos.min() > 30:
        linthresh = max(1.0 / PAGES_PER_MIB, 10.0 ** np.floor(np.log10(pos.min())))
        ax.set_yscale("symlog", linthresh=linthresh, linscale=0.3)


# --- panels -------------------------------------------------------------------------------------
# Each panel is (available(d), draw(ax, d)); a panel is drawn only when available.

Frames = dict[str, pl.DataFrame | None]


def _free_ok(d: Frames) -> bool:
    return _has(d["nodes"], "node", "free") or _has(d["zoneinfo"], "node", "free")


def _draw_free(ax: Axes, d: Frames) -> None:
    nodes, zones, vm = d["nodes"], d["zoneinfo"], d["vmstat"]
    if _has(nodes, "node", "free"):
        assert nodes is not None
        per_node = nodes.unique(["t", "node"], keep="first")
    else:
        assert zones is not None
        per_node = zones.group_by("t", "node").agg(pl.col("free").sum())
    free = {
        int(n): (_f(g.sort("t")["t"]), _f(g.sort("t")["free"]) / PAGES_PER_MIB)
        for (n,), g in per_node.group_by("node")
    }
    plotted: list[np.ndarray] = []
    for n in sorted(free):
        ax.plot(*free[n], color=_node_colour(n), lw=1.4, label=f"node{n} free")
        plotted.append(free[n][1])
    if len(free) > 1:
        if _has(vm, "nr_free_pages"):
            assert vm is not None
            tot_t, tot = _f(vm["t"]), _f(vm["nr_free_pages"]) / PAGES_PER_MIB
        else:
            tot_t = np.unique(np.concatenate([free[n][0] for n in free]))
            tot = np.sum([np.interp(tot_t, *free[n]) for n in free], axis=0)
        ax.plot(tot_t, tot, color="black", lw=0.8, alpha=0.6, label="total free")
        plotted.append(tot)
    if _has(zones, "node", "zone"):
        assert zones is not None
        for (n,), g in sorted(zones.group_by("node"), key=lambda kv: int(kv[0][0])):
            top = max(g["zone"].unique().to_list(), key=lambda z: ZONE_ORDER.get(str(z), -1))
            gz = g.filter(pl.col("zone") == top).unique("t", keep="first").sort("t")
            for mark, ls in MARKS:
                if mark in gz.columns:
                    y = _f(gz[mark]) / PAGES_PER_MIB
                    ax.plot(
                        _f(gz["t"]),
                        y,
                        color=_node_colour(int(n)),
                        ls=ls,
                        lw=0.9,
                        label=f"node{n} {top} {mark}",
                    )
                    plotted.append(y)
    _symlog_if_wide(ax, plotted)
    ax.set_ylabel("free (MiB)")
    _legend(ax)


def _per_node_max(zones: pl.DataFrame, col: str) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    agg = zones.group_by("t", "node").agg(pl.col(col).max()).sort("t")
    return {int(n): (_f(g["t"]), _f(g[col])) for (n,), g in agg.group_by("node")}


def _unrecl_ok(d: Frames) -> bool:
    z = d["zoneinfo"]
    return _has(z, "node", "node_unreclaimable") or _has(z, "node", "kswapd_failures")


def _draw_unrecl(ax: Axes, d: Frames) -> None:
    zones = d["zoneinfo"]
    assert zones is not None
    ax2 = None
    if "node_unreclaimable" in zones.columns:
        series = _per_node_max(zones, "node_unreclaimable")
        for i, n in enumerate(sorted(series)):
            t, y = series[n]
            ax.step(
                t,
                y + 0.03 * i,
                where="post",
                color=_node_colour(n),
                lw=1.4,
                label=f"node{n} node_unreclaimable",
            )
    ax.set_ylim(-0.1, 1.25)
    ax.set_yticks([0, 1])
    ax.set_ylabel("node_unreclaimable")
    if "kswapd_failures" in zones.columns:
        ax2 = ax.twinx()
        series = _per_node_max(zones, "kswapd_failures")
        for n in sorted(series):
            t, y = series[n]
            ax2.step(
                t,
                y,
                where="post",
                color=_node_colour(n),
                lw=1.0,
                ls="--",
                alpha=0.8,
                label=f"node{n} kswapd_failures (right)",
            )
        ax2.axhline(MAX_RECLAIM_RETRIES, color="grey", lw=0.6, ls=":", label="MAX_RECLAIM_RETRIES")
        ax2.set_ylim(-MAX_RECLAIM_RETRIES * 0.1, MAX_RECLAIM_RETRIES * 1.25)
        ax2.set_yticks([0, MAX_RECLAIM_RETRIES // 2, MAX_RECLAIM_RETRIES])
        ax2.set_ylabel("kswapd_failures")
    _legend(ax, axes2=ax2)


def _kswapd_ok(d: Frames) -> bool:
    n = d["nodes"]
    return _has(n, "node", "kswapd_state") or _has(n, "node", "kswapd_cpu_s")


def _draw_kswapd(ax: Axes, d: Frames) -> None:
    nodes = d["nodes"]
    assert nodes is not None
    groups = {int(n): g.unique("t", keep="first").sort("t") for (n,), g in nodes.group_by("node")}
    has_state = "kswapd_state" in nodes.columns
    lane_h = 0.14
    ticks: list[tuple[float, str]] = [(0.0, "0"), (0.5, "0.5"), (1.0, "1")]
    if "kswapd_cpu_s" in nodes.columns:
        for n in sorted(groups):
            t, share = _rate(_f(groups[n]["t"]), _f(groups[n]["kswapd_cpu_s"]))
            ax.plot(
                t,
                share,
                drawstyle="steps-pre",
                color=_node_colour(n),
                lw=1.2,
                label=f"kswapd{n} CPU share",
            )
    proxies: list[Any] = []
    if has_state:
        for i, n in enumerate(sorted(groups)):
            t = _f(groups[n]["t"])
            states = ["" if s is None else str(s) for s in groups[n]["kswapd_state"].to_list()]
            step = float(np.median(np.diff(t))) if len(t) > 1 else 1.0
            ends = np.append(t[1:], t[-1] + step)
            y0 = -lane_h * (i + 1)
            for state, colour in STATE_COLOURS.items():
                bars = [(a, b - a) for st, a, b in _runs(states, t, ends) if st == state]
                if bars:
                    ax.broken_barh(bars, (y0 + 0.015, lane_h - 0.03), color=colour, lw=0)
            ticks.append((y0 + lane_h / 2, f"kswapd{n}"))
        proxies = [Patch(color=c, label=f"state {s}") for s, c in STATE_COLOURS.items()]
    bottom = -lane_h * len(groups) if has_state else -0.05
    ax.set_ylim(bottom - 0.02, 1.1)
    ax.set_yticks([p for p, _ in ticks], [lab for _, lab in ticks])
    ax.set_ylabel("kswapd CPU share\n/ state (sleep blank)")
    _legend(ax, extra=proxies)


def _promo_ok(d: Frames) -> bool:
    return any(_has(d["vmstat"], k) for k, _, _ in PROMO_DEMO)


def _draw_promo(ax: Axes, d: Frames) -> None:
    vm = d["vmstat"]
    assert vm is not None
    vm = vm.unique("t", keep="first").sort("t")
    t = _f(vm["t"])
    for name, colour, ls in PROMO_DEMO:
        if name in vm.columns:
            tr, r = _rate(t, _f(vm[name]))
            ax.plot(tr, r, drawstyle="steps-pre", color=colour, ls=ls, lw=1.1, label=name)
    ax.set_yscale("symlog", linthresh=10, linscale=0.5)
    ax.set_ylim(bottom=0)
    ax.set_ylabel("pages / s")
    _legend(ax)


def _placement_ok(d: Frames) -> bool:
    return _has(d["placement"], "workload", "node", "pages")


def _draw_placement(ax: Axes, d: Frames) -> None:
    pm = d["placement"]
    assert pm is not None
    what = "hot"
    if "hot" in pm.columns and pm.filter(pl.col("hot").fill_null(False)).height:
        pm = pm.filter(pl.col("hot").fill_null(False))
    else:
        what = "all"  # no hot region: show every region rather than nothing
    agg = pm.group_by("t", "workload", "node").agg(pl.col("pages").sum()).sort("t")
    styles = ("-", "--", ":", "-.")
    workloads = sorted(str(w) for w in agg["workload"].unique().to_list())
    for wi, w in enumerate(workloads):
        gw = agg.filter(pl.col("workload") == w)
        for (n,), g in sorted(gw.group_by("node"), key=lambda kv: int(kv[0][0])):
            ax.plot(
                _f(g["t"]),
                _f(g["pages"]),
                color=_node_colour(int(n)),
                ls=styles[wi % len(styles)],
                lw=1.3,
                label=f"{w} {what} on node{n}",
            )
    ax.set_ylabel(f"{what} pages")
    ax.set_ylim(bottom=0)
    _legend(ax)


Panel = tuple[Callable[[Frames], bool], Callable[[Axes, Frames], None]]
PANELS: tuple[Panel, ...] = (
    (_free_ok, _draw_free),
    (_unrecl_ok, _draw_unrecl),
    (_kswapd_ok, _draw_kswapd),
    (_promo_ok, _draw_promo),
    (_placement_ok, _draw_placement),
)


# --- figure -------------------------------------------------------------------------------------


def _spans(d: Frames, summary: dict[str, Any]) -> list[tuple[str, float, float]]:
    for key in ("vmstat", "nodes", "zoneinfo", "placement"):
        df = d[key]
        if _has(df, "phase"):
            assert df is not None
            first = df.unique("t", keep="first", maintain_order=True)
            return phase_spans(first["t"].to_list(), first["phase"].to_list())
    return [
        (str(p.get("name", "")), float(p["start_s"]), float(p["end_s"]))
        for p in summary.get("phases", [])
        if p.get("start_s") is not None and p.get("end_s") is not None
    ]


def _shade(ax: Axes, spans: list[tuple[str, float, float]], colours: dict[str, str]) -> None:
    trans = blended_transform_factory(ax.transData, ax.transAxes)
    for name, t0, t1 in spans:
        ax.axvspan(t0, t1, color=colours[name], alpha=0.10, lw=0, zorder=0)
        ax.text(
            (t0 + t1) / 2,
            0.98,
            name,
            transform=trans,
            ha="center",
            va="top",
            fontsize=8,
            color=colours[name],
            fontweight="bold",
            clip_on=True,
        )


def _title(run_dir: Path, summary: dict[str, Any]) -> str:
    scenario = summary.get("scenario") or run_dir.parent.name
    policy = summary.get("policy") or run_dir.name
    title = f"{scenario} — policy {policy}"
    kernel = summary.get("kernel")
    if summary.get("source") == "realkernel" and kernel:
        title += f" (real kernel {kernel})"
    if summary.get("seed") is not None:
        title += f", seed {summary['seed']}"
    return title


def timeline(run_dir: Path, out: Path | None = None) -> Path:
    """Write the timeline plot of `run_dir`; `out` is a file or a directory (default run_dir)."""
    run_dir = Path(run_dir)
    if out is None:
        out = run_dir / "timeline.png"
    else:
        out = Path(out)
        if out.is_dir() or out.suffix == "":
            out = out / "timeline.png"
    summary: dict[str, Any] = {}
    sp = run_dir / "summary.json"
    if sp.is_file():
        try:
            summary = json.loads(sp.read_text())
        except (OSError, ValueError):
            summary = {}
    d = {k: _read(run_dir / f"{k}.parquet") for k in ("vmstat", "zoneinfo", "nodes", "placement")}

    present = [draw for ok, draw in PANELS if ok(d)]

    n = max(1, len(present))
    fig, axes = plt.subplots(
        n,
        1,
        figsize=(FIG_WIDTH_IN, 1.0 + PANEL_HEIGHT_IN * n),
        sharex=True,
        squeeze=False,
        layout="constrained",
    )
    axs = [a for row in axes for a in row]
    spans = _spans(d, summary)
    names = list(dict.fromkeys(name for name, _, _ in spans))
    colours = {nm: PHASE_COLOURS[i % len(PHASE_COLOURS)] for i, nm in enumerate(names)}
    events = [
        (float(e["t"]), str(e.get("name", "")))
        for e in summary.get("events", [])
        if isinstance(e, dict) and e.get("t") is not None
    ]
    if not present:
        axs[0].text(
            0.5,
            0.5,
            f"no samples in {run_dir}",
            ha="center",
            va="center",
            transform=axs[0].transAxes,
        )
        axs[0].set_yticks([])
    for ax, draw in zip(axs, present, strict=False):
        draw(ax, d)
        _shade(ax, spans, colours)
        for te, _ in events:
            ax.axvline(te, color="grey", lw=0.5, ls="-", alpha=0.6, zorder=1)
        ax.grid(True, axis="y", lw=0.3, alpha=0.5)
    if present and events:
        trans = blended_transform_factory(axs[0].transData, axs[0].transAxes)
        for te, name in events:
            axs[0].text(
                te,
                0.02,
                f" {name}",
                transform=trans,
                rotation=90,
                fontsize=6,
                va="bottom",
                ha="right",
                color="dimgrey",
                clip_on=True,
                bbox={"facecolor": "white", "alpha": 0.7, "lw": 0, "pad": 0.5},
            )
    if spans or events:
        lo = min([s[1] for s in spans] + [e[0] for e in events])
        hi = max([s[2] for s in spans] + [e[0] for e in events])
        cur = axs[-1].get_xlim()
        axs[-1].set_xlim(min(cur[0], lo), max(cur[1], hi))
    axs[-1].set_xlabel("t (s)")
    fig.suptitle(_title(run_dir, summary), fontsize=12)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=DPI)
    plt.close(fig)
    return out
