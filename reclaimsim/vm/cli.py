"""``reclaimsim vm``: run a scenario on a real kernel in a QEMU VM (docs/vm.md).

reclaimsim vm run SCENARIO --kernel KERNEL --out DIR [--suite SUITE] [--modules DIR]
                  [--set key=value]... [--timeout S] [--dry-run]
reclaimsim vm setup        # apt-get install -y qemu-system-x86 busybox-static gcc ...
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from ..scenario import Scenario, ScenarioError, load_scenario
from .build import (
    APT_PACKAGES,
    INSTALL_CMD,
    ToolError,
    build_initramfs,
    missing_tools,
    missing_tools_message,
)
from .guest import render_init
from .kernel import (
    DEFAULT_KERNEL,
    GuestKernel,
    KernelError,
    fetch_debian_kernel,
    module_closure,
    user_kernel,
)
from .parse import parse_run
from .plan import VmPlan, VmPlanError, plan_vm, shell_join
from .summary import build_summary

KMEM_MODULES = ["device_dax", "kmem", "dax_hmem"]
SWAP_MODULES = ["virtio_blk"]
SWAP_DEV = "/dev/vda"


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _error(msg: str) -> int:
    _say(f"reclaimsim vm: error: {msg}")
    return 2


def get_kernel(spec: str, suite: str | None, modules: str | None) -> GuestKernel:
    """A path to a bzImage, or a Debian package name (``6.12`` = newest 6.12 in the archive)."""
    p = Path(spec).expanduser()
    if p.is_file() or "/" in spec:
        return user_kernel(p, Path(modules).expanduser() if modules else None)
    return fetch_debian_kernel(spec, suite, log=_say)


def guest_modules(plan: VmPlan, k: GuestKernel) -> tuple[list[tuple[str, bytes]], list[str]]:
    """Modules to load in the guest (name, .ko bytes) and notes."""
    wanted = (KMEM_MODULES if any(n.kmem for n in plan.nodes) else []) + (
        SWAP_MODULES if plan.swap_mb else []
    )
    if not wanted:
        return [], []
    if k.modules_dir is None:
        return [], [
            f"no modules directory for {k.image} (--modules): assuming {', '.join(wanted)} "
            "are built in"
        ]
    mods, builtin = module_closure(k.modules_dir, wanted)
    notes = [f"built in: {', '.join(builtin)}"] if builtin else []
    return mods, notes


def _progress(console: Path, pos: int) -> int:
    """Print new ``[rk ...]`` lines of the guest console; return the new offset."""
    try:
        with console.open("rb") as f:
            f.seek(pos)
            data = f.read()
    except OSError:
        return pos
    cut = data.rfind(b"\n") + 1
    for line in data[:cut].decode(errors="replace").splitlines():
        line = line.strip("\r")
        if line.startswith("[rk ") or "Kernel panic" in line:
            _say("  guest " + line)
    return pos + cut


def run_qemu(argv: list[str], raw: Path, timeout_s: int) -> tuple[int, float]:
    """Run QEMU, echoing the guest's progress lines; (return code, wall seconds)."""
    t0 = time.monotonic()
    console = raw / "console.log"
    with (raw / "qemu.stderr").open("w") as err:
        proc = subprocess.Popen(argv, stdout=err, stderr=subprocess.STDOUT)
        pos = 0
        try:
            while True:
                try:
                    rc = proc.wait(timeout=1.0)
                    break
                except subprocess.TimeoutExpired:
                    pos = _progress(console, pos)
                    if time.monotonic() - t0 > timeout_s:
                        proc.kill()
                        proc.wait()
                        rc = 124
                        _say(f"reclaimsim vm: QEMU timed out after {timeout_s} s, killed")
                        break
        except KeyboardInterrupt:
            proc.kill()
            proc.wait()
            raise
    _progress(console, pos)
    return rc, time.monotonic() - t0


def _managed_check(plan: VmPlan, zones_first: list[dict[str, Any]]) -> list[str]:
    """Scenario managed pages vs what the guest had, per node."""
    lines = []
    for n in plan.nodes:
        got = sum(int(z.get("managed") or 0) for z in zones_first if z["node"] == n.id)
        zs = "/".join(f"{z['zone']} {z.get('managed')}" for z in zones_first if z["node"] == n.id)
        if not got:
            continue
        d = 100.0 * (got - n.managed_pages) / n.managed_pages
        lines.append(
            f"node{n.id}: guest {got} managed pages ({zs}), scenario {n.managed_pages} ({d:+.1f}%)"
        )
    return lines


def cmd_run(ns: argparse.Namespace) -> int:
    try:
        sc: Scenario = load_scenario(ns.scenario, ns.set)
    except ScenarioError as e:
        return _error(str(e))
    try:
        plan = plan_vm(sc, timeout_s=ns.timeout, host_avail_mb=None if ns.dry_run else -1)
        init_preview = render_init(sc, plan, [], SWAP_DEV if plan.swap_mb else None)
    except VmPlanError as e:
        return _error(str(e))
    out = Path(ns.out)
    raw = out / "raw"
    _say(f"reclaimsim vm: {sc.name}: VM\n" + plan.describe())
    for w in plan.warnings:
        _say(f"  warning: {w}")
    if ns.dry_run:
        raw.mkdir(parents=True, exist_ok=True)
        (raw / "init.sh").write_text(init_preview)
        argv = plan.qemu_argv("KERNEL", raw / "initramfs.cpio.gz", raw, plan.append())
        (raw / "qemu.sh").write_text(shell_join(argv) + "\n")
        print(shell_join(argv))
        _say(f"dry run: guest /init in {raw / 'init.sh'}")
        return 0
    miss = missing_tools()
    if miss:
        _say(missing_tools_message(miss))
        return 2
    try:
        k = get_kernel(ns.kernel, ns.suite, ns.modules)
        mods, notes = guest_modules(plan, k)
    except KernelError as e:
        return _error(str(e))
    _say(f"reclaimsim vm: kernel {k.package or k.image} ({k.release or 'release unknown'})")
    for n in notes:
        _say(f"  note: {n}")
    init = render_init(sc, plan, [m[0] for m in mods], SWAP_DEV if plan.swap_mb else None)
    raw.mkdir(parents=True, exist_ok=True)
    for f in ("console.log", "samples.log", "trace.log"):
        (raw / f).unlink(missing_ok=True)
    (raw / "init.sh").write_text(init)
    try:
        initrd = build_initramfs(init, mods, raw / "initramfs.cpio.gz")
    except ToolError as e:
        return _error(str(e))
    swap_img = None
    if plan.swap_mb:
        swap_img = raw / "swap.img"
        with swap_img.open("wb") as f:
            f.truncate(plan.swap_mb * 2**20)
    append = plan.append()
    argv = plan.qemu_argv(k.image, initrd, raw, append, swap_image=swap_img)
    (raw / "append.txt").write_text(append + "\n")
    (raw / "qemu.sh").write_text(shell_join(argv) + "\n")
    _say(f"reclaimsim vm: booting under QEMU ({plan.accel}), timeout {plan.timeout_s} s")
    try:
        rc, wall = run_qemu(argv, raw, plan.timeout_s)
    finally:
        if swap_img is not None:
            swap_img.unlink(missing_ok=True)
    (raw / "qemu_rc.txt").write_text(f"qemu rc={rc} wall={wall:.0f}s\n")
    _say(f"reclaimsim vm: QEMU exited rc={rc} after {wall:.0f} s wall")
    res = parse_run(raw, out)
    ev_names = {e for e in _event_names(out)}
    if "BOOT_DONE" not in ev_names:
        return _error(
            f"the guest never started the scenario (rc={rc}); see {raw / 'console.log'} "
            f"and {raw / 'qemu.stderr'}"
        )
    extra = {
        "wall_seconds": round(wall, 1),
        "vm": {
            "kernel_package": k.package,
            "kernel_image": str(k.image),
            "suite": ns.suite,
            "qemu_rc": rc,
            "accel": plan.accel,
            "append": append,
            "nodes_mb": {str(n.id): n.mb for n in plan.nodes},
            "low4g_mb": plan.low4g_mb,
            "swap_mb": plan.swap_mb,
            "completed": "END" in ev_names,
            "duration_capped": "DURATION_CAP" in ev_names,
        },
    }
    try:
        s = build_summary(out, extra)
    except (OSError, ValueError, KeyError) as e:
        return _error(f"cannot summarise {out}: {e}")
    s["scenario"] = sc.name
    (out / "summary.json").write_text(json.dumps(s, indent=1) + "\n")
    for line in _managed_check(plan, res["zones_first"]):
        _say("  " + line)
    _print_phases(s)
    status = "completed" if "END" in ev_names else "stopped early"
    _say(
        f"reclaimsim vm: {status}; {res['samples']} samples, {res['trace_events']} trace "
        f"events; wrote {out}/summary.json and the CSVs (raw captures in {raw})"
    )
    return 0 if "END" in ev_names else 1


def _event_names(out: Path) -> list[str]:
    import csv

    with (out / "events.csv").open(newline="") as f:
        return [r["event"] for r in csv.DictReader(f)]


def _print_phases(s: dict[str, Any]) -> None:
    keys = ("pgdemote_kswapd", "pgpromote_success", "pgscan_kswapd", "oom_kill")
    print(f"{s.get('kernel')} {s.get('scenario')}")
    hdr = ["phase", "start_s", "end_s", "n0_unrecl", "n0_kswapd_runs", "W_hot_n0%", *keys]
    print("  ".join(hdr))
    for p in s["phases"]:
        n0 = p["nodes"].get("0", {})
        w = p.get("workloads", {}).get("W", {}).get("hot_pages_by_node") or {}
        tot = sum(w.values())
        share = f"{100 * w.get('0', 0) / tot:.0f}" if tot else "-"
        ur = f"{n0.get('unreclaimable_min')}-{n0.get('unreclaimable_max')}"
        row = [p["name"], f"{p['start_s']:.1f}", f"{p['end_s']:.1f}", ur]
        row += [str(n0.get("kswapd_runs")), share]
        row += [str(p["vmstat_delta"].get(k, "-")) for k in keys]
        print("  ".join(row))


def cmd_setup(ns: argparse.Namespace) -> int:
    miss = missing_tools()
    if not miss:
        _say("reclaimsim vm setup: all tools present")
        return 0
    if os.geteuid() != 0:
        _say(f"reclaimsim vm setup: not root; run:\n    sudo apt-get update && sudo {INSTALL_CMD}")
        return 2
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for argv in (["apt-get", "update"], ["apt-get", "install", "-y", *APT_PACKAGES]):
        _say("reclaimsim vm setup: " + " ".join(argv))
        try:
            r = subprocess.run(argv, env=env)
        except FileNotFoundError:
            return _error(
                "apt-get not found: install the tools with your distribution's "
                f"package manager ({', '.join(APT_PACKAGES)})"
            )
        if r.returncode != 0:
            return _error(f"{' '.join(argv)} failed ({r.returncode})")
    miss = missing_tools()
    if miss:
        _say(missing_tools_message(miss))
        return 2
    return 0


def vm_main(argv: list[str]) -> int:
    """Entry point of ``reclaimsim vm ...``; returns the exit code."""
    ap = argparse.ArgumentParser(
        prog="reclaimsim vm",
        description="Run a scenario on a real Linux kernel in a QEMU VM (TCG), and write the "
        "same summary.json as the simulator, plus the real-kernel harness's CSVs.",
    )
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="boot a kernel on the scenario's machine and run its script")
    r.add_argument("scenario")
    r.add_argument(
        "--kernel",
        default=DEFAULT_KERNEL,
        help="Debian package (linux-image-6.12.117+deb12-amd64), a version (6.12: the newest "
        "in the archive) or a path to a bzImage (default %(default)s)",
    )
    r.add_argument("--suite", help="take the Debian kernel from this suite (trixie-backports)")
    r.add_argument("--modules", help="with a bzImage: its modules dir (lib/modules/<release>)")
    r.add_argument("--out", required=True, help="output directory")
    r.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a field")
    r.add_argument("--timeout", type=int, help="QEMU wall-clock limit, s (duration_s + 300)")
    r.add_argument(
        "--dry-run", action="store_true", help="print the QEMU command and write the guest /init"
    )
    sub.add_parser("setup", help=f"install the host tools ({INSTALL_CMD})")
    try:
        ns = ap.parse_args(argv)
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else 2
    try:
        if ns.cmd == "run":
            return cmd_run(ns)
        if ns.cmd == "setup":
            return cmd_setup(ns)
    except KeyboardInterrupt:
        return _error("interrupted")
    return 2


if __name__ == "__main__":
    sys.exit(vm_main(sys.argv[1:]))
