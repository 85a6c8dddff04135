"""``reclaimsim vm``: scenario -> VM plan, QEMU and kernel command lines, guest /init, parsing,
summary, refusals and the missing-tool message, without a VM; plus one test that boots a real
kernel (``-m vm``)."""

from __future__ import annotations

import copy
import json
import lzma
import os
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
from conftest import REPO, SCENARIOS

from reclaimsim.realkernel import load_recording
from reclaimsim.scenario import load_scenario, scenario_from_dict
from reclaimsim.units import eval_expr
from reclaimsim.vm import cli as vmcli
from reclaimsim.vm.build import INSTALL_CMD, missing_tools, missing_tools_message
from reclaimsim.vm.guest import render_init, script_block, shell_arith
from reclaimsim.vm.kernel import KernelError, module_closure, user_kernel
from reclaimsim.vm.parse import parse_run
from reclaimsim.vm.plan import VmPlanError, node_mb_for, plan_vm
from reclaimsim.vm.summary import build_summary

SHORT = REPO / "tests" / "data" / "vm-short-control.toml"
SH = shutil.which("sh")


def scen(name: str) -> dict:
    return tomllib.loads((SCENARIOS / f"{name}.toml").read_text())


def plan_of(data: dict):
    return plan_vm(scenario_from_dict(data), host_avail_mb=None)


# ---------------------------------------------------------------------------- plan / QEMU


def test_control_scenario_gives_the_recordings_vm():
    sc = load_scenario(SCENARIOS / "vm-2g1g-control.toml")
    p = plan_vm(sc, host_avail_mb=None)
    assert [n.mb for n in p.nodes] == [2048, 1024]
    assert p.low4g_mb == 512 and p.vcpus == 2 and p.swap_mb == 0 and p.hmat
    argv = p.qemu_argv("bzImage", "initrd.gz", "/r", p.append())
    cmd = " ".join(argv)
    for piece in (
        "-accel tcg,thread=multi",
        "-smp 2,sockets=1,cores=2,threads=1",
        "-machine pc,hmat=on,max-ram-below-4g=512M",
        "-m 3072M",
        "memory-backend-ram,id=m0,size=2048M",
        "node,nodeid=0,cpus=0-1,memdev=m0",
        "node,nodeid=1,memdev=m1,initiator=0",
        "dist,src=0,dst=1,val=20",
        "initiator=0,target=0,hierarchy=memory,data-type=access-latency,latency=100",
        "initiator=0,target=1,hierarchy=memory,data-type=access-latency,latency=300",
        "initiator=0,target=1,hierarchy=memory,data-type=access-bandwidth,bandwidth=5120M",
        "-serial file:/r/samples.log",
    ):
        assert piece in cmd, piece
    assert "memmap=" not in p.append()
    assert p.append().startswith("console=ttyS0,115200")


def test_node_size_calibration_round_trips_the_recordings():
    assert node_mb_for(489690, boot_node=True) == 2048
    assert node_mb_for(257295, boot_node=False) == 1024
    assert node_mb_for(257295, boot_node=False, kmem=True) == 1024


def test_kmem_node_gets_soft_reserved_range_and_modules():
    d = scen("vm-2g1g-control")
    d["machine"]["nodes"][1]["memory"] = "kmem"
    sc = scenario_from_dict(d)
    p = plan_vm(sc, host_avail_mb=None)
    assert "memmap=1024M%0x160000000-1+0xefffffff" in p.append()
    assert "memhp_default_state=offline" in p.append()
    init = render_init(sc, p, ["device_dax", "kmem", "dax_hmem"])
    assert "RK_KMEM='1:online_kernel'" in init
    assert "RK_MODULES='device_dax kmem dax_hmem'" in init
    assert "RK_NODE1_MODE=kmem" in init


def test_swap_thp_lru_and_sysctls_reach_the_guest():
    d = scen("vm-2g1g-control")
    d["machine"]["swap"] = "512MiB"
    d["machine"]["lru"] = "mglru"
    d["sysctl"]["watermark_scale_factor"] = 200
    sc = scenario_from_dict(d)
    p = plan_vm(sc, host_avail_mb=None)
    assert p.swap_mb == 512
    init = render_init(sc, p, ["virtio_blk"], "/dev/vda")
    assert "RK_SWAP_DEV='/dev/vda'" in init and "RK_LRUGEN=y" in init
    assert "RK_THP=never" in init
    assert "wr /proc/sys/vm/watermark_scale_factor '200'" in init
    assert "wr /proc/sys/vm/min_free_kbytes '6756'" in init
    assert "wr /proc/sys/kernel/numa_balancing '2'" in init
    assert "wr /sys/kernel/mm/numa/demotion_enabled '1'" in init
    argv = p.qemu_argv("K", "I", "/r", p.append(), swap_image="/r/swap.img")
    assert "file=/r/swap.img,format=raw,if=virtio,cache=unsafe" in argv


def test_cpu_less_node_without_hmat_gets_no_hmat_table():
    d = scen("vm-2g1g-control")
    for n in d["machine"]["nodes"]:
        n.pop("hmat")
    p = plan_of(d)
    assert not p.hmat
    cmd = " ".join(p.qemu_argv("K", "I", "/r", p.append()))
    assert "hmat" not in cmd and "initiator" not in cmd


def _big_node0(d: dict) -> None:
    n0 = d["machine"]["nodes"][0]
    n0.pop("zones")
    n0["size"] = "20GiB"


def _five_nodes(d: dict) -> None:
    hmat = {"latency_ns": 300, "bandwidth_MBps": 5120}
    d["machine"]["nodes"] += [{"id": i, "size": "256MiB", "hmat": hmat} for i in range(2, 5)]


@pytest.mark.parametrize(
    "change, needle",
    [
        (_big_node0, "16384 MiB"),
        (_five_nodes, "5 NUMA nodes"),
        (lambda d: d["machine"]["nodes"][1].pop("hmat"), "hmat for every node"),
        (lambda d: d["machine"]["nodes"][0].update(cpus=12), "vCPUs"),
        (lambda d: d["machine"]["nodes"][0].update(memory="kmem"), "kmem"),
    ],
)
def test_oversized_or_unsupported_scenarios_are_refused(change, needle):
    d = scen("vm-2g1g-control")
    change(d)
    with pytest.raises(VmPlanError, match=needle):
        plan_of(d)


def test_host_memory_is_checked():
    sc = load_scenario(SCENARIOS / "vm-2g1g-control.toml")
    with pytest.raises(VmPlanError, match="available"):
        plan_vm(sc, host_avail_mb=2000)


def test_refusal_via_cli_is_one_clear_line(tmp_path, capsys):
    rc = vmcli.vm_main(
        [
            "run",
            str(SCENARIOS / "vm-2g1g-control.toml"),
            "--out",
            str(tmp_path / "o"),
            "--set",
            "machine.nodes[0].zones[2].managed_pages=5000000",
        ]
    )
    err = capsys.readouterr().err
    assert rc == 2
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.startswith("reclaimsim vm: error:")]
    assert len(lines) == 1 and "guest RAM" in lines[0] and "16384 MiB" in lines[0]


# ---------------------------------------------------------------------------- tools


def test_missing_tools_message_names_the_install_command(monkeypatch, tmp_path, capsys):
    miss = missing_tools(which=lambda name: None)
    assert {"qemu-system-x86_64", "gcc", "cpio", "dpkg-deb", "apt-get"} <= set(miss)
    msg = missing_tools_message(miss)
    assert INSTALL_CMD in msg
    assert INSTALL_CMD == "apt-get install -y qemu-system-x86 busybox-static gcc libc6-dev cpio"
    monkeypatch.setattr(vmcli, "missing_tools", lambda: ["qemu-system-x86_64", "cpio"])
    rc = vmcli.vm_main(["run", str(SHORT), "--out", str(tmp_path / "o"), "--kernel", "6.12"])
    err = capsys.readouterr().err
    assert rc == 2 and INSTALL_CMD in err and "Traceback" not in err


def test_bad_kernel_path_is_a_clear_error(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(vmcli, "missing_tools", lambda: [])
    junk = tmp_path / "bzImage"
    junk.write_bytes(b"\0" * 1024)
    rc = vmcli.vm_main(["run", str(SHORT), "--out", str(tmp_path / "o"), "--kernel", str(junk)])
    err = capsys.readouterr().err
    assert rc == 2 and "not an x86 bzImage" in err
    with pytest.raises(KernelError, match="no such kernel image"):
        user_kernel(tmp_path / "nope")


def test_dry_run_writes_init_and_prints_qemu(tmp_path, capsys):
    rc = vmcli.vm_main(["run", str(SHORT), "--out", str(tmp_path / "o"), "--dry-run"])
    out = capsys.readouterr().out
    assert rc == 0 and out.startswith("qemu-system-x86_64 ")
    assert (tmp_path / "o" / "raw" / "init.sh").is_file()


# ---------------------------------------------------------------------------- guest /init


@pytest.mark.parametrize(
    "expr",
    [
        "node0.free + 64MiB",
        "node0.free_mb > 100 and node1.unreclaimable",
        "1.5GiB - node1.free // 2",
        "not node0.unreclaimable",
        "node0.managed * 3 / 4 - i * 256MiB",
    ],
)
@pytest.mark.skipif(SH is None, reason="no sh")
def test_shell_arithmetic_matches_the_engine(expr):
    env = {
        "node0.free": 123 << 20,
        "node0.free_mb": 123,
        "node0.managed": 2000 << 20,
        "node0.unreclaimable": 1,
        "node1.free": 901 << 20,
        "node1.free_mb": 901,
        "node1.managed": 1000 << 20,
        "node1.unreclaimable": 0,
        "i": 3,
        "t": 0,
    }
    f0, f1, m0, m1 = (
        env[k] for k in ("node0.free", "node1.free", "node0.managed", "node1.managed")
    )
    stubs = (
        f"rk_free() {{ [ $1 = 0 ] && echo {f0} || echo {f1}; }}\n"
        "rk_free_mb() { [ $1 = 0 ] && echo 123 || echo 901; }\n"
        f"rk_managed() {{ [ $1 = 0 ] && echo {m0} || echo {m1}; }}\n"
        "rk_unrecl() { [ $1 = 0 ] && echo 1 || echo 0; }\n"
        "rk_t() { echo 0; }\ni=3\n"
    )
    r = subprocess.run(
        [SH, "-c", stubs + f"echo $(( {shell_arith(expr)} ))"], capture_output=True, text=True
    )
    assert r.returncode == 0, r.stderr
    assert int(r.stdout) == int(eval_expr(expr, env))


def _run_script_with_stubs(sc, hopeless_after: int) -> list[str]:
    """The generated script steps under the host sh, helpers replaced by loggers."""
    stubs = f"""
N=0
ev() {{ echo "ev $1"; }}
state() {{ :; }}
upc() {{ echo 100; }}
rk_start() {{ N=$((N + 1)); echo "start $1 cold=$2 hot=$3 sleep=$4 bind=$5 adj=$6"; }}
rk_wait_ready() {{ echo "wait $1"; }}
rk_sleep() {{ :; }}
rk_kill() {{ echo "kill $*"; }}
rk_phase() {{ echo "phase $1"; }}
rk_end_phase() {{ echo "end_phase"; }}
rk_unrecl() {{ [ $N -ge {hopeless_after} ] && echo 1 || echo 0; }}
rk_free() {{ echo 1000000; }}
i=0
"""
    r = subprocess.run(
        [SH, "-c", stubs + script_block(sc)], capture_output=True, text=True, timeout=20
    )
    assert r.returncode == 0, r.stderr
    return r.stdout.splitlines()


@pytest.mark.skipif(SH is None, reason="no sh")
def test_hopeless_storyboard_script_runs_in_order():
    sc = load_scenario(SCENARIOS / "vm-2g1g-hopeless.toml")
    out = _run_script_with_stubs(sc, hopeless_after=3)
    hogs = [ln for ln in out if ln.startswith("start hog")]
    assert [h.split()[1] for h in hogs] == ["hog0", "hog1", "hog2"]
    assert hogs[0] == "start hog0 cold=0 hot=268435456 sleep=0 bind= adj=500"
    seq = [ln for ln in out if ln.startswith(("phase", "ev", "kill", "end_phase"))]
    assert seq == [
        "ev PHASE1_START",
        "phase p1",
        "ev NODE0_HOPELESS",
        "phase p1h",
        "kill hog*",
        "ev PHASE2_KILLED",
        "phase p2",
        "ev PHASE2_END",
        "end_phase",
        "ev W_READY",
        "phase p3",
        "ev PHASE3_END",
        "end_phase",
        "ev R_READY",
        "phase p4",
        "ev PHASE4_END",
        "end_phase",
    ]
    w = next(ln for ln in out if ln.startswith("start W"))
    assert w == f"start W cold={1000000 + (64 << 20)} hot={128 << 20} sleep=0 bind= adj=0"
    r = next(ln for ln in out if ln.startswith("start R"))
    assert r == f"start R cold={128 << 20} hot=0 sleep=0 bind=0 adj=0"


@pytest.mark.skipif(SH is None, reason="no sh")
def test_generated_init_is_valid_shell():
    for name in ("vm-2g1g-control", "vm-2g1g-hopeless"):
        sc = load_scenario(SCENARIOS / f"{name}.toml")
        init = render_init(sc, plan_vm(sc, host_avail_mb=None))
        r = subprocess.run([SH, "-n"], input=init, capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        assert "#@" not in init


def test_rate_access_sysctl_and_wait_until_steps():
    d = copy.deepcopy(scen("vm-2g1g-control"))
    d["workloads"]["W"]["access"] = 4.0
    d["workloads"]["R"]["bind"] = [0, 1]
    d["script"] = [
        {"start": "W"},
        {"sysctl": {"numa_balancing": 0}},
        {"wait_until": "node0.free_mb < 100", "timeout_s": 30},
        {"start": "R"},
        {"phase": "a"},
        {"phase": "b"},
    ]
    s = script_block(scenario_from_dict(d))
    assert " 250 " in s.splitlines()[0]  # 4 touches/s -> 250 ms between passes
    assert "wr /proc/sys/kernel/numa_balancing '0'" in s
    assert "ev 'SYSCTL numa_balancing=0'" in s
    assert "rk_wait_until rk_x1 3000" in s and "$(rk_free_mb 0)" in s
    assert " 0:1 " in s
    with pytest.raises(VmPlanError, match="phase name"):
        d["script"] = [{"phase": "bad name"}]
        script_block(scenario_from_dict(d))


# ---------------------------------------------------------------------------- parse / summary


def _raw_run(tmp: Path, kernel: str = "6.12.117+deb12-amd64", close_p4: bool = False) -> Path:
    raw = tmp / "raw"
    raw.mkdir()
    lines = [f"I kernel {kernel}", "I scenario tiny", "I lru_gen_enabled 0x0000"]
    ev = {
        1.0: "E 1.0 BOOT_DONE node0_free=1MB",
        2.0: "E 2.0 START W pid=42 args=-c,1.5,-H,0.5,-s,0,-a,0",
        3.0: "E 3.0 PHASE:p3",
        5.0: "E 5.0 PHASE_END:p3",
        5.5: "E 5.5 PHASE:p4",
    }
    for t in range(0, 8):
        lines.append(f"T {t}.000 seq={t}")
        lines.append(f"V {t}.000 pgpromote_success={10 * t} oom_kill=0 nr_free_pages={1000 - t}")
        for n in (0, 1):
            lines.append(
                f"Z {t}.000 {n} Normal free=100 min=1 low=2 high=3 promo=4 spanned=9 "
                f"present=9 managed=8 unreclaimable={1 if (n == 0 and t == 4) else 0}"
            )
            lines.append(f"N {t}.000 {n} MemTotal=32 MemFree={1024 * (t + 1)}")
            lines.append(f"NV {t}.000 {n} pgpromote_success={5 * t}")
        lines.append(f"K {t}.000 kswapd0 pid=50 state=S utime={t} stime={t}")
        if t % 2 == 0:
            lines.append(f"P {t}.000 42 W 7f00 anon=128 N0=100 N1=28")
            lines.append(f"P {t}.000 42 W 7f80 anon=384 N0=384")
        if float(t) in ev:
            lines.append(ev[float(t)])
        if t + 0.5 in ev:
            lines.append(ev[t + 0.5])
    if close_p4:
        lines.append("E 7.0 PHASE_END:p4")
    lines.append("E 7.2 END")
    (raw / "samples.log").write_text("\n".join(lines) + "\n")
    (raw / "trace.log").write_text(
        "         kswapd0-50      [000] .....     4.500000: mm_vmscan_kswapd_wake: nid=0 order=0\n"
    )
    return raw


def test_parse_and_summary_use_the_scenario_phases(tmp_path):
    raw = _raw_run(tmp_path)
    out = tmp_path / "out"
    res = parse_run(raw, out)
    assert res["phases"] == ["p3", "p4"]
    for f in ("events.csv", "vmstat.csv", "zones.csv", "nodes.csv", "kthreads.csv"):
        assert (out / f).is_file()
    vm = (out / "vmstat.csv").read_text().splitlines()
    assert vm[0].startswith("t,phase,")
    assert [ln.split(",")[1] for ln in vm[1:]] == ["", "", "", "p3", "p3", "", "p4", "p4"]
    s = build_summary(out)
    assert [p["name"] for p in s["phases"]] == ["p3", "p4"]
    p3 = s["phases"][0]
    assert (p3["start_s"], p3["end_s"]) == (3.0, 5.0)
    assert p3["vmstat_delta"]["pgpromote_success"] == 20
    assert p3["nodes"]["0"]["unreclaimable_max"] == 1
    assert p3["nodes"]["0"]["kswapd_runs"] == 1
    assert p3["workloads"]["W"]["hot_pages_by_node"] == {"0": 100, "1": 28}
    p4 = s["phases"][1]  # left open: closed at the last sample
    assert p4["end_s"] == 7.2
    assert s["policy"] == "v6.12" and s["source"] == "realkernel"
    assert s["script_t0_s"] == 1.0


def test_summary_for_a_kernel_without_policy(tmp_path):
    out = tmp_path / "out"
    parse_run(_raw_run(tmp_path, kernel="6.6.0-custom"), out)
    s = build_summary(out)
    assert s["policy"] is None and [p["name"] for p in s["phases"]] == ["p3", "p4"]
    with pytest.raises(ValueError):
        load_recording(out)  # the shared loader still refuses; vm's summary does not


# ---------------------------------------------------------------------------- modules


def test_module_closure_orders_dependencies(tmp_path):
    m = tmp_path / "lib/modules/6.12.0"
    (m / "kernel/drivers/dax/hmem").mkdir(parents=True)
    (m / "kernel/drivers/dax/device_dax.ko").write_bytes(b"\0depends=\0vermagic=x\0")
    (m / "kernel/drivers/dax/kmem.ko.xz").write_bytes(
        lzma.compress(b"x\0depends=device_dax\0name=kmem\0")
    )
    (m / "modules.builtin").write_text("kernel/drivers/dax/hmem/dax_hmem.ko\n")
    mods, builtin = module_closure(m, ["kmem", "dax_hmem"])
    assert [n for n, _ in mods] == ["device_dax", "kmem"]
    assert builtin == ["dax_hmem"]
    assert mods[1][1].startswith(b"x\0depends=")
    with pytest.raises(KernelError, match="virtio_blk"):
        module_closure(m, ["virtio_blk"])


# ---------------------------------------------------------------------------- a real kernel


@pytest.mark.vm
def test_short_control_on_a_real_kernel(tmp_path):
    """Boots the 6.12 Debian kernel ($RECLAIMSIM_VM_KERNEL, default: the newest 6.12 in the
    archive) on tests/data/vm-short-control.toml (~1.5 min under TCG)."""
    if vmcli.missing_tools():
        pytest.skip(missing_tools_message(vmcli.missing_tools()))
    kernel = os.environ.get("RECLAIMSIM_VM_KERNEL", "6.12")
    out = tmp_path / "vm"
    argv = ["run", str(SHORT), "--kernel", kernel, "--out", str(out)]
    if os.environ.get("RECLAIMSIM_VM_SUITE"):
        argv += ["--suite", os.environ["RECLAIMSIM_VM_SUITE"]]
    assert vmcli.vm_main(argv) == 0
    s = json.loads((out / "summary.json").read_text())
    assert s["source"] == "realkernel" and s["scenario"] == "vm-short-control"
    assert [p["name"] for p in s["phases"]] == ["p3", "p4"]
    names = [e["name"] for e in s["events"]]
    for e in ("BOOT_DONE", "W_READY", "PHASE3_END", "R_READY", "PHASE4_END", "END"):
        assert e in names
    p3, p4 = s["phases"]
    for p in (p3, p4):
        assert 15 <= p["end_s"] - p["start_s"] <= 30
        assert set(p["nodes"]) == {"0", "1"}
        assert p["vmstat_delta"]["oom_kill"] == 0
        assert p["nodes"]["1"]["unreclaimable_max"] == 0
    # W's 64 MiB hot set (16384 pages) is resident, mostly on node1 first (faulted in last)
    hot3 = p3["workloads"]["W"]["hot_pages_by_node"]
    assert 16000 <= sum(hot3.values()) <= 16400
    # node0 was filled to about its low watermark: kswapd0 ran and demoted W's cold pages
    assert p3["nodes"]["0"]["kswapd_runs"] > 0
    assert p3["vmstat_delta"]["pgdemote_kswapd"] > 0
    assert p3["vmstat_delta"]["numa_hint_faults"] > 0
    # R is bound to node0: all 128 MiB there
    assert p4["workloads"]["R"]["resident_pages_by_node"]["0"] >= 32768 - 16
    # the CSVs are a recording the shared loader reads (the scenario's events are the
    # recordings' W_READY/PHASE3_END/R_READY/PHASE4_END)
    rec = load_recording(out)
    assert [p["name"] for p in rec["phases"]] == ["p3", "p4"]
