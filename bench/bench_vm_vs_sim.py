"""The same scenario on a real kernel in a QEMU VM and in the simulator, side by side, in one
run: wall seconds of each, their ratio, and the fidelity checks of the simulated run against
the real one (``reclaimsim validate``'s phase-by-phase table).

    python bench/bench_vm_vs_sim.py [SCENARIO] [--kernel 6.12] [--policy v6.12]
                                   [--vm-dir DIR] [--out DIR]

SCENARIO defaults to the VM-size seed storyboard (scenarios/vm-2g1g-hopeless.toml). Without
``--vm-dir`` the real side is ``reclaimsim vm run SCENARIO --kernel K --out DIR/vm`` (needs
QEMU and KVM, docs/vm.md; ~2.5-4.5 min); with ``--vm-dir`` an earlier ``vm run`` folder is
read instead (its ``summary.json`` has QEMU's wall time). The simulator's wall time is that of
``Simulation.run`` in this process after a warm-up (numba's JIT cache loaded), and, as a user
sees it, that of a fresh ``reclaimsim run`` command (interpreter start, JIT cache load, outputs
and report).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from _common import REPO, warm_up

from reclaimsim.engine import Simulation
from reclaimsim.output import summary
from reclaimsim.scenario import ScenarioError, load_scenario
from reclaimsim.validate import RunLoadError, compare_runs, load_run

# the policy that models each kernel the harness boots (docs/policies.md)
KERNEL_POLICY = {"6.1": "v6.1", "6.6": "v6.6", "6.12": "v6.12", "7.3": "v6.18"}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument(
        "scenario", nargs="?", default=str(REPO / "scenarios" / "vm-2g1g-hopeless.toml")
    )
    ap.add_argument("--kernel", default="6.12", help="Debian kernel for `vm run` (default 6.12)")
    ap.add_argument("--policy", default=None, help="simulator policy (default: the kernel's)")
    ap.add_argument("--vm-dir", default=None, help="read this `vm run` folder instead of booting")
    ap.add_argument("--out", default="runs/vm-vs-sim", help="output folder")
    args = ap.parse_args()
    policy = args.policy or KERNEL_POLICY.get(args.kernel)
    if policy is None:
        print(
            f"error: no default policy for kernel {args.kernel!r}; pass --policy", file=sys.stderr
        )
        return 2
    try:
        sc = load_scenario(args.scenario)
    except ScenarioError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    if args.vm_dir:
        vm_dir = Path(args.vm_dir)
    else:
        vm_dir = out / "vm"
        cmd = [sys.executable, "-m", "reclaimsim.cli", "vm", "run", args.scenario,
               "--kernel", args.kernel, "--out", str(vm_dir)]  # fmt: skip
        print("real kernel: " + " ".join(cmd), flush=True)
        rc = subprocess.call(cmd)
        if rc not in (0, 1):  # 1 = the guest stopped early; the partial run is still written
            print(f"error: `vm run` failed (exit {rc}); see {vm_dir}/raw", file=sys.stderr)
            return 2
    try:
        real = load_run(vm_dir)
    except RunLoadError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    real_wall = float(real.get("wall_seconds", 0.0))

    warm_up()
    t0 = time.perf_counter()
    sim = Simulation(sc, policy).run()
    sim_wall = time.perf_counter() - t0
    s = summary(sim)
    (out / "sim-summary.json").write_text(json.dumps(s, indent=1, default=str) + "\n")
    t0 = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "reclaimsim.cli",
            "run",
            args.scenario,
            "--policy",
            policy,
            "--out",
            str(out / "sim"),
        ],  # fmt: skip
        check=True,
        stdout=subprocess.DEVNULL,
    )
    cmd_wall = time.perf_counter() - t0
    report = compare_runs(s, real)
    n_ok = sum(r.ok for r in report.rows)

    kern = real.get("vm", {}).get("kernel_package") or real.get("kernel") or args.kernel
    print(f"scenario {sc.name}: {s['sim_seconds']:.0f} simulated s")
    print(f"  real kernel {kern} in QEMU: {real_wall:.1f} s wall")
    print(f"  simulator ({policy}): Simulation.run {sim_wall:.2f} s wall, "
          f"`reclaimsim run` command {cmd_wall:.1f} s")  # fmt: skip
    if sim_wall > 0 and real_wall > 0:
        print(f"  ratio real/simulated: {real_wall / sim_wall:.0f}x (run), "
              f"{real_wall / cmd_wall:.0f}x (command)")  # fmt: skip
    print(f"  fidelity checks (reclaimsim validate): {n_ok}/{len(report.rows)} pass")
    for r in report.failures:
        print(f"    {r.phase} {r.check}: sim {r.sim} real {r.real} ({r.kind})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
