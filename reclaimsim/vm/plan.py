"""A scenario's machine -> a QEMU VM: node sizes, zones, CPUs, HMAT, kmem, swap, command lines.

The VM follows the shared real-kernel harness (``../shared/realkernel/run_vm.sh``): QEMU TCG,
``-machine pc,hmat=on,max-ram-below-4g=...``, one ``memory-backend-ram`` per node, CPU-less
lower nodes with ``initiator=`` the first CPU node, ``-numa dist`` and ``-numa hmat-lb`` from the
scenario, three serial ports (console, sampler records, ftrace).

Node sizes come from the scenario's managed pages. The kernel does not manage all of a node's
RAM: ``struct page`` takes 1/64 of it, and the boot node also holds the kernel image, swiotlb
(64 MiB in DMA32) and early allocations. :data:`BOOT_NODE_RESERVE_MB` and
:data:`NODE_RESERVE_MB` are calibrated on the recordings (2048 MiB node0 -> 489690 managed pages,
1024 MiB node1 -> 257295), so the 2 GiB + 1 GiB scenarios give exactly that VM; other sizes land
within a few MiB, and ``reclaimsim vm run`` prints the managed pages the guest really had.
"""

from __future__ import annotations

import math
import os
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from ..scenario import Scenario
from ..units import parse_size

#: Refusal limits for this kind of host (2 cores, 24 GiB): QEMU TCG, one VM at a time.
MAX_GUEST_RAM_MB = 16 * 1024
MAX_NODES = 4
MAX_VCPUS = 8
#: RAM the kernel keeps from the boot node besides struct pages (image, swiotlb, memblock).
BOOT_NODE_RESERVE_MB = 104.0
#: the same for other nodes (a few early allocations).
NODE_RESERVE_MB = 3.0
#: node sizes are rounded to this (QEMU memory backends; memory blocks are 128 MiB).
NODE_ROUND_MB = 32
KMEM_ROUND_MB = 128
#: default RAM below 4 GiB when node0 has no DMA32 zone in the scenario (the harness's value).
DEFAULT_LOW4G_MB = 512
MAX_LOW4G_MB = 3072
#: base kernel command line (the harness's).
BASE_APPEND = "console=ttyS0,115200 loglevel=6 panic=-1 mitigations=off nokaslr random.trust_cpu=on"
NAME_RE = re.compile(r"^[A-Za-z0-9_.+-]+$")


class VmPlanError(ValueError):
    """A scenario this machine cannot run as a VM; the message names the reason."""


@dataclass
class NodePlan:
    id: int
    mb: int
    cpus: list[int]
    kmem: bool
    managed_pages: int
    zones: list[str]
    latency_ns: int | None = None
    bandwidth_mbps: int | None = None
    start_mb: int = 0  # guest-physical start (only meaningful above 4 GiB, for kmem)


@dataclass
class VmPlan:
    """Everything needed to boot the scenario's machine."""

    nodes: list[NodePlan]
    low4g_mb: int
    distance: list[list[int]]
    hmat: bool
    swap_mb: int
    vcpus: int
    timeout_s: int
    accel: str = "tcg,thread=multi"
    warnings: list[str] = field(default_factory=list)

    @property
    def ram_mb(self) -> int:
        return sum(n.mb for n in self.nodes)

    def append(self, extra: str = "") -> str:
        """The guest kernel command line."""
        parts = [BASE_APPEND]
        for n in self.nodes:
            if n.kmem:
                start = n.start_mb * 1024 * 1024
                parts.append(f"memmap={n.mb}M%{start:#x}-1+0xefffffff")
        if any(n.kmem for n in self.nodes):
            # /init onlines the kmem blocks itself, into the scenario's zone
            parts.append("memhp_default_state=offline")
        if extra:
            parts.append(extra)
        return " ".join(parts)

    def qemu_argv(
        self,
        kernel: Path | str,
        initrd: Path | str,
        raw_dir: Path | str,
        append: str,
        swap_image: Path | str | None = None,
        qemu: str = "qemu-system-x86_64",
    ) -> list[str]:
        """The QEMU command line (as run_vm.sh builds it)."""
        raw = Path(raw_dir)
        machine = f"pc,max-ram-below-4g={self.low4g_mb}M"
        if self.hmat:
            machine = f"pc,hmat=on,max-ram-below-4g={self.low4g_mb}M"
        argv = [
            qemu,
            "-accel",
            self.accel,
            "-cpu",
            "max",
            "-smp",
            f"{self.vcpus},sockets=1,cores={self.vcpus},threads=1",
            "-machine",
            machine,
            "-m",
            f"{self.ram_mb}M",
        ]
        initiator = next(n.id for n in self.nodes if n.cpus)
        for n in self.nodes:
            argv += ["-object", f"memory-backend-ram,id=m{n.id},size={n.mb}M"]
        for n in self.nodes:
            spec = f"node,nodeid={n.id}"
            if n.cpus:
                spec += f",cpus={n.cpus[0]}-{n.cpus[-1]}"
            spec += f",memdev=m{n.id}"
            if not n.cpus and self.hmat:
                spec += f",initiator={initiator}"
            argv += ["-numa", spec]
        for i, row in enumerate(self.distance):
            for j, d in enumerate(row):
                if i < j:
                    argv += ["-numa", f"dist,src={i},dst={j},val={d}"]
                elif i > j and d != self.distance[j][i]:
                    argv += ["-numa", f"dist,src={i},dst={j},val={d}"]
        if self.hmat:
            for ini in (n for n in self.nodes if n.cpus):
                for t in self.nodes:
                    base = f"hmat-lb,initiator={ini.id},target={t.id},hierarchy=memory"
                    argv += ["-numa", f"{base},data-type=access-latency,latency={t.latency_ns}"]
                    argv += [
                        "-numa",
                        f"{base},data-type=access-bandwidth,bandwidth={t.bandwidth_mbps}M",
                    ]
        argv += ["-kernel", str(kernel), "-initrd", str(initrd), "-append", append]
        if swap_image is not None:
            argv += ["-drive", f"file={swap_image},format=raw,if=virtio,cache=unsafe"]
        argv += ["-display", "none", "-monitor", "none", "-net", "none", "-no-reboot"]
        for f in ("console.log", "samples.log", "trace.log"):
            argv += ["-serial", f"file:{raw / f}"]
        return argv

    def describe(self) -> str:
        """One line per node, for the console."""
        lines = []
        for n in self.nodes:
            cpus = f"cpus {n.cpus[0]}-{n.cpus[-1]}" if n.cpus else "no CPUs"
            perf = f", HMAT {n.latency_ns} ns {n.bandwidth_mbps} MB/s" if self.hmat else ""
            how = " via dax/kmem" if n.kmem else ""
            lines.append(
                f"node{n.id}: {n.mb} MiB{how}, {cpus}{perf} "
                f"(scenario: {n.managed_pages} managed pages, zones {'/'.join(n.zones)})"
            )
        lines.append(
            f"RAM below 4 GiB: {self.low4g_mb} MiB; swap: "
            + (f"{self.swap_mb} MiB virtio disk" if self.swap_mb else "off")
        )
        return "\n".join(lines)


def _round(x: float, step: int) -> int:
    return max(step, int(round(x / step)) * step)


def node_mb_for(managed_pages: int, boot_node: bool, kmem: bool = False) -> int:
    """Guest RAM of a node (MiB) whose kernel manages ``managed_pages``."""
    managed_mb = managed_pages * 4096 / 2**20
    reserve = BOOT_NODE_RESERVE_MB if boot_node else NODE_RESERVE_MB
    return _round(managed_mb * 64 / 63 + reserve, KMEM_ROUND_MB if kmem else NODE_ROUND_MB)


def host_mem_available_mb() -> int | None:
    """MemAvailable of the host, MiB (None if unknown)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) // 1024
    except OSError:
        return None
    return None


def plan_vm(
    sc: Scenario,
    timeout_s: int | None = None,
    host_avail_mb: int | None = -1,
    accel: str | None = None,
) -> VmPlan:
    """Derive the VM for ``sc``; raise VmPlanError (one clear reason) if it cannot run here.

    ``host_avail_mb=-1`` reads the host's MemAvailable; None skips that check.
    """
    m = sc.machine
    nn = len(m.nodes)
    if nn > MAX_NODES:
        raise VmPlanError(
            f"{sc.name}: {nn} NUMA nodes; a VM on this host runs at most {MAX_NODES} "
            "(QEMU TCG on 2 cores)"
        )
    warnings: list[str] = []
    vcpus = sum(n.cpus for n in m.nodes)
    if vcpus > MAX_VCPUS:
        raise VmPlanError(
            f"{sc.name}: {vcpus} CPUs in machine.nodes; a TCG VM here runs at most {MAX_VCPUS} "
            "vCPUs (set cpus on the nodes lower)"
        )
    if m.nodes[0].cpus == 0:
        raise VmPlanError(
            f"{sc.name}: node0 has no CPUs; the VM boots on node0, give machine.nodes[0].cpus >= 1"
        )
    if parse_size(m.hugepagesz) != 2 << 20:
        raise VmPlanError(
            f"{sc.name}: machine.hugepagesz = {m.hugepagesz!r}; the x86-64 guest's default huge"
            " page is 2 MiB (set machine.hugepagesz = '2MiB' for a VM run)"
        )
    with_hmat = [n.hmat is not None for n in m.nodes]
    if any(with_hmat) and not all(with_hmat):
        missing = ", ".join(f"machine.nodes[{n.id}]" for n in m.nodes if n.hmat is None)
        raise VmPlanError(
            f"{sc.name}: {missing} has no hmat; give hmat for every node or for none "
            "(QEMU's HMAT table needs every target)"
        )
    for n in m.nodes:
        if n.memory == "kmem" and (n.id == 0 or n.cpus):
            raise VmPlanError(
                f"{sc.name}: machine.nodes[{n.id}] has memory = 'kmem' but "
                + ("is node0" if n.id == 0 else "has CPUs")
                + "; only a CPU-less node other than node0 can be hot-plugged with dax/kmem"
            )
        if n.memory == "kmem":
            zt = [z.type for z in n.zone_list()]
            if any(t not in ("Normal", "Movable") for t in zt) or len(zt) != 1:
                raise VmPlanError(
                    f"{sc.name}: machine.nodes[{n.id}] (kmem) must have one Normal or Movable "
                    f"zone, got {zt}"
                )
    for name in sc.workloads:
        if not NAME_RE.match(name):
            raise VmPlanError(
                f"{sc.name}: workload name {name!r}: use letters, digits and _ . + - only "
                "(it becomes a process name in the guest)"
            )

    nodes: list[NodePlan] = []
    cpu = 0
    for n in m.nodes:
        pages = n.total_pages()
        mb = node_mb_for(pages, boot_node=n.id == 0, kmem=n.memory == "kmem")
        cpus = list(range(cpu, cpu + n.cpus))
        cpu += n.cpus
        np_ = NodePlan(
            id=n.id,
            mb=mb,
            cpus=cpus,
            kmem=n.memory == "kmem",
            managed_pages=pages,
            zones=[z.type for z in n.zone_list()],
        )
        if n.hmat is not None:
            np_.latency_ns = max(1, int(round(n.hmat.latency_ns)))
            np_.bandwidth_mbps = max(1, int(round(n.hmat.bandwidth_MBps)))
        nodes.append(np_)
        if any(z.type == "Movable" for z in n.zone_list()) and not np_.kmem:
            warnings.append(
                f"node{n.id}: a Movable zone exists in the VM only for kmem nodes "
                "(memory = 'kmem'); the VM gives this node's RAM to Normal"
            )

    # RAM below 4 GiB: node0's DMA + DMA32 (+ the boot reserve), as the recordings' 512 MiB
    n0 = m.nodes[0]
    z0 = {z.type: z.pages() for z in n0.zone_list()}
    if "DMA32" in z0 and "Normal" in z0:
        low_pages = z0.get("DMA", 0) + z0["DMA32"]
        low4g = _round(low_pages * 4096 / 2**20 * 64 / 63 + BOOT_NODE_RESERVE_MB, NODE_ROUND_MB)
        low4g = min(low4g, nodes[0].mb - NODE_ROUND_MB)
    elif "Normal" not in z0:
        low4g = nodes[0].mb
    else:
        low4g = min(DEFAULT_LOW4G_MB, nodes[0].mb)
        warnings.append(
            f"node0 has only a Normal zone in the scenario; the VM's node0 also has DMA and "
            f"DMA32 zones (the first {low4g} MiB), as every x86 machine"
        )
    low4g = max(128, min(low4g, MAX_LOW4G_MB))
    if low4g >= nodes[0].mb and nn > 1:
        # node0 entirely below 4 GiB: the next node starts below 4 GiB too (DMA32 on node1)
        if any(n.kmem for n in nodes):
            raise VmPlanError(
                f"{sc.name}: node0 ({nodes[0].mb} MiB) lies entirely below 4 GiB, so a kmem "
                "node would start below 4 GiB; give node0 a Normal zone"
            )
        warnings.append("node0 lies entirely below 4 GiB; node1 then begins with DMA32")
    cum = 0  # RAM is laid out in node order: the first low4g MiB below 4 GiB, the rest above
    for np_ in nodes:
        np_.start_mb = cum if cum < low4g else cum - low4g + 4096
        cum += np_.mb

    total = sum(n.mb for n in nodes)
    if total > MAX_GUEST_RAM_MB:
        raise VmPlanError(
            f"{sc.name}: the VM would need {total} MiB of guest RAM "
            f"({', '.join(f'node{n.id} {n.mb} MiB' for n in nodes)}); this host runs at most "
            f"{MAX_GUEST_RAM_MB} MiB (QEMU TCG on a 24 GiB host); scale the scenario down"
        )
    swap_mb = int(math.ceil(parse_size(m.swap) / 2**20))
    if host_avail_mb == -1:
        host_avail_mb = host_mem_available_mb()
    if host_avail_mb is not None and total + 512 > host_avail_mb:
        raise VmPlanError(
            f"{sc.name}: the VM needs {total} MiB of guest RAM + ~512 MiB for QEMU, the host has "
            f"{host_avail_mb} MiB available"
        )
    if m.distance is not None:
        dist = [list(r) for r in m.distance]
    else:
        dist = [[10 if i == j else 20 for j in range(nn)] for i in range(nn)]
    if timeout_s is None:
        timeout_s = int(sc.duration_s) + 300
    return VmPlan(
        nodes=nodes,
        low4g_mb=low4g,
        distance=dist,
        hmat=all(with_hmat),
        swap_mb=swap_mb,
        vcpus=vcpus,
        timeout_s=timeout_s,
        accel=accel or os.environ.get("RECLAIMSIM_VM_ACCEL", "tcg,thread=multi"),
        warnings=warnings,
    )


def shell_join(argv: list[str]) -> str:
    """A copy-pasteable command line."""
    return " ".join(shlex.quote(a) for a in argv)
