"""Scenario files (TOML) -> a validated model.

A scenario describes a machine (nodes, zones, tiers, swap, sysctls, LRU flavour), workloads
(processes with hot and cold parts, memory policy, oom_score_adj), and a script of timed steps
(start, wait, kill, sysctl change, named phases), like the real-kernel harness's guest init.
Every field is checked with a message that names it and says how to fix it; ``--set a.b=v``
overrides any field from the command line.
"""

from __future__ import annotations

import copy
import re
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .units import ExprError, check_expr, parse_size

ZONE_TYPES = ("DMA", "DMA32", "Normal", "Movable")


class ScenarioError(Exception):
    """Bad scenario input: the message names the field and the fix."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


def _size(v: Any, what: str = "size") -> str | int:
    try:
        parse_size(v)
    except ExprError as exc:
        raise ValueError(str(exc)) from None
    return v


class ZoneSpec(_Strict):
    """One zone of a node (``struct zone``): type and managed size."""

    type: Literal["DMA", "DMA32", "Normal", "Movable"]
    size: str | int | None = None
    managed_pages: int | None = Field(default=None, ge=1)

    @field_validator("size")
    @classmethod
    def _chk(cls, v: Any) -> Any:
        return None if v is None else _size(v)

    @model_validator(mode="after")
    def _one(self) -> ZoneSpec:
        if (self.size is None) == (self.managed_pages is None):
            raise ValueError("give exactly one of size (e.g. '2GiB') or managed_pages")
        return self

    def pages(self) -> int:
        if self.managed_pages is not None:
            return self.managed_pages
        return parse_size(self.size or 0) // 4096


class HmatSpec(_Strict):
    """ACPI HMAT performance of a node as seen from its initiator (read = write here)."""

    latency_ns: float = Field(gt=0)
    bandwidth_MBps: float = Field(gt=0)


class NodeSpec(_Strict):
    """A NUMA node (``pglist_data``)."""

    id: int = Field(ge=0, le=1023)
    cpus: int = Field(default=0, ge=0)
    size: str | int | None = None
    zones: list[ZoneSpec] | None = None
    memory: Literal["ram", "kmem"] = "ram"
    #: all of the node's memory is ZONE_MOVABLE (hotplugged and onlined movable, movable_node)
    movable: bool = False
    hmat: HmatSpec | None = None
    adistance: int | None = Field(default=None, ge=0)

    @field_validator("size")
    @classmethod
    def _chk(cls, v: Any) -> Any:
        return None if v is None else _size(v)

    @model_validator(mode="after")
    def _one(self) -> NodeSpec:
        if (self.size is None) == (self.zones is None):
            raise ValueError("give exactly one of size (one Normal zone) or zones = [...]")
        if self.movable and self.zones is not None:
            raise ValueError(
                "movable = true goes with size (one Movable zone); with zones = [...] give "
                "{type = 'Movable', ...} instead"
            )
        if self.zones is not None:
            types = [z.type for z in self.zones]
            if len(set(types)) != len(types):
                raise ValueError(f"zone types repeat in {types}; each zone type at most once")
            if types != sorted(types, key=ZONE_TYPES.index):
                raise ValueError(
                    f"zones must be listed low to high (DMA, DMA32, Normal, Movable), got {types}"
                )
        if self.total_pages() <= 0:
            raise ValueError("node has no memory; give a size > 0")
        return self

    def zone_list(self) -> list[ZoneSpec]:
        if self.zones is not None:
            return self.zones
        return [ZoneSpec(type="Movable" if self.movable else "Normal", size=self.size)]

    def total_pages(self) -> int:
        return sum(z.pages() for z in self.zone_list())


class CostSpec(_Strict):
    """Simulated CPU cost of kernel work on a native machine, in microseconds per page.

    Only time moves with these: the order and count of kernel decisions do not depend on them,
    but the interleaving of kswapd with the workloads does. ``cpu_slowdown`` scales them all (a
    TCG-emulated VM is ~30x slower than native).
    """

    fault_us: float = Field(default=0.5, gt=0, description="first-touch anon fault incl. zeroing")
    scan_us: float = Field(default=0.15, gt=0, description="reclaim: per page scanned")
    migrate_us: float = Field(default=1.0, gt=0, description="per page migrated")
    hint_fault_us: float = Field(default=0.5, gt=0, description="per NUMA hint fault")
    free_us: float = Field(default=0.05, gt=0, description="per page freed at exit")
    pte_scan_us: float = Field(default=0.01, gt=0, description="per PTE in change_prot_numa")
    touch_us: float = Field(
        default=0.005, gt=0, description="a busy loop's write to one page (TLB miss + line)"
    )
    pass_us: float = Field(
        default=2.0, gt=0, description="fixed cost of one balance_pgdat priority pass"
    )
    read_us: float = Field(
        default=100.0, gt=0, description="a major fault's read of one file page (SSD)"
    )
    cpu_slowdown: float = Field(default=1.0, gt=0)


class MachineSpec(_Strict):
    """The machine: nodes, distances, swap, LRU flavour, THP."""

    nodes: list[NodeSpec]
    distance: list[list[int]] | None = None
    swap: str | int = 0
    lru: Literal["classic", "mglru"] = "classic"
    thp: bool = False
    hugepagesz: str | int = "2MiB"
    costs: CostSpec = CostSpec()
    kernel_allocs_per_s: float = Field(
        default=0.0,
        ge=0,
        description="short-lived GFP_KERNEL page allocations per second on each CPU node "
        "(slab, page tables, skbs); 0 = none. They matter when every zone GFP_KERNEL may use "
        "is below LOW: the slow path then wakes kswapd (page_alloc.kernel_alloc_churn)",
    )

    @field_validator("swap")
    @classmethod
    def _swap(cls, v: Any) -> Any:
        return _size(v)

    @field_validator("hugepagesz")
    @classmethod
    def _hugepagesz(cls, v: Any) -> Any:
        _size(v)
        pages = parse_size(v) // 4096
        if pages < 2 or pages & (pages - 1) or parse_size(v) % 4096:
            raise ValueError(
                f"hugepagesz {v!r} must be a power-of-two multiple of 4 KiB, e.g. '2MiB' (x86-64)"
                " or '16MiB' (ppc64 hash MMU)"
            )
        return v

    @field_validator("thp")
    @classmethod
    def _thp(cls, v: bool) -> bool:
        if v:
            raise ValueError("THP is not modelled yet (all folios are order 0); set thp = false")
        return v

    @model_validator(mode="after")
    def _nodes(self) -> MachineSpec:
        ids = [n.id for n in self.nodes]
        if not ids:
            raise ValueError("a machine needs at least one node")
        if ids != list(range(len(ids))):
            raise ValueError(f"node ids must be 0, 1, ... in order, got {ids}")
        if not any(n.cpus > 0 for n in self.nodes):
            raise ValueError("no node has CPUs; give node 0 cpus >= 1")
        if self.distance is not None:
            n = len(ids)
            if len(self.distance) != n or any(len(r) != n for r in self.distance):
                raise ValueError(f"distance must be a {n}x{n} matrix")
        return self


class SysctlSpec(_Strict):
    """Sysctls and sysfs knobs, kernel names without their prefix; None = kernel default."""

    min_free_kbytes: int | None = Field(default=None, ge=128)
    watermark_scale_factor: int = Field(default=10, ge=1, le=3000)
    watermark_boost_factor: int = Field(default=15000, ge=0)
    lowmem_reserve_ratio: list[int] = Field(default_factory=lambda: [256, 256, 32, 0])
    swappiness: int = Field(default=60, ge=0, le=200)
    zone_reclaim_mode: int = Field(default=0, ge=0, le=0)
    numa_balancing: int = Field(default=2, ge=0, le=3)
    numa_balancing_promote_rate_limit_MBps: int = Field(default=65536, ge=0)
    numa_balancing_hot_threshold_ms: int = Field(default=1000, ge=1)
    numa_balancing_scan_delay_ms: int = Field(default=1000, ge=0)
    numa_balancing_scan_period_min_ms: int = Field(default=1000, ge=1)
    numa_balancing_scan_period_max_ms: int = Field(default=60000, ge=1)
    numa_balancing_scan_size_mb: int = Field(default=256, ge=1)
    demotion_enabled: bool = False
    #: vm.nr_hugepages: persistent hugetlb pool (set_max_huge_pages); at boot like hugepages=N
    nr_hugepages: int = Field(default=0, ge=0)


def _limit(v: Any) -> Any:
    if v is None or v == "max":
        return v
    return _size(v)


class CgroupSpec(_Strict):
    """A cgroup v2 memory controller (a child of the root): limits as sizes or "max"."""

    memory_max: str | int | None = Field(default=None, description="memory.max (hard limit)")
    memory_high: str | int | None = Field(default=None, description="memory.high (throttle)")
    memory_low: str | int | None = Field(default=None, description="memory.low (protection)")

    @field_validator("memory_max", "memory_high", "memory_low")
    @classmethod
    def _chk(cls, v: Any) -> Any:
        return _limit(v)


class WorkloadSpec(_Strict):
    """A process template: an mmap of [hot][cold] anon memory, cold touched first, then hot.

    ``access``: "busy" rewrites every hot page in a loop (all hot pages referenced between any
    two kernel looks); a number is touches per page per second of the hot set.
    """

    hot: str | int = 0
    cold: str | int = 0
    kernel: str | int = Field(
        default=0,
        description="unmovable kernel memory the task makes the kernel allocate (GFP_KERNEL, "
        "on no LRU, never reclaimed: kmalloc/vmalloc buffers, page tables), before its user "
        "memory; freed at exit",
    )
    alloc_MBps: float | None = Field(
        default=None,
        gt=0,
        description="cap on how fast the task allocates (MB per second of its CPU time); "
        "default: as fast as faults cost",
    )
    access: Literal["busy"] | float = "busy"
    bind: list[int] | None = None
    oom_score_adj: int = Field(default=0, ge=-1000, le=1000)
    memcg: str | None = Field(default=None, description="a [cgroups.NAME] the task runs in")
    file: str | int = Field(default=0, description="a mapped file set, read after the anon")
    file_access: Literal["busy"] | float = Field(
        default="busy", description="reads per file page per second, or 'busy'"
    )
    stream_MBps: float = Field(default=0.0, ge=0, description="read-once file data per second")

    @field_validator("hot", "cold", "kernel", "file")
    @classmethod
    def _expr(cls, v: Any) -> Any:
        if isinstance(v, str):
            try:
                parse_size(v)
                return v
            except ExprError:
                pass
            try:
                check_expr(v)
            except ExprError as exc:
                raise ValueError(str(exc)) from None
        elif v < 0:
            raise ValueError(f"size {v} is negative; sizes must be >= 0")
        return v

    @field_validator("access", "file_access")
    @classmethod
    def _acc(cls, v: Any) -> Any:
        if not isinstance(v, str) and v < 0:
            raise ValueError("access rate must be >= 0 touches/s or 'busy'")
        return v


class StealSpec(_Strict):
    """Unmovable allocations on ``node`` that each claim a MOVABLE pageblock (fragmentation):
    every one boosts the zone's watermarks and wakes kswapd (``boost_watermark``)."""

    node: int = Field(ge=0)
    pageblocks: int = Field(default=1, ge=1)


class StepSpec(_Strict):
    """One step of the scenario script; exactly one action key."""

    phase: str | None = None
    end_phase: bool | None = None
    event: str | None = None
    start: str | None = None
    name: str | None = None
    wait_ready: str | None = None
    timeout_s: float | None = Field(default=None, gt=0)
    sleep_s: float | None = Field(default=None, ge=0)
    kill: str | list[str] | None = None
    sysctl: dict[str, Any] | None = None
    repeat: list[StepSpec] | None = None
    until: str | None = None
    max_s: float | None = Field(default=None, gt=0)
    wait_until: str | None = None
    steal: StealSpec | None = None

    @model_validator(mode="after")
    def _one_action(self) -> StepSpec:
        actions = [
            k
            for k in (
                "phase",
                "end_phase",
                "event",
                "start",
                "wait_ready",
                "sleep_s",
                "kill",
                "sysctl",
                "repeat",
                "wait_until",
                "steal",
            )
            if getattr(self, k) is not None
        ]
        if len(actions) != 1:
            raise ValueError(
                f"a step needs exactly one action (phase, end_phase, event, start, wait_ready, "
                f"sleep_s, kill, sysctl, repeat, wait_until, steal); got {actions or 'none'}"
            )
        if self.name is not None and self.start is None:
            raise ValueError("'name' goes with 'start'")
        if self.until is not None and self.repeat is None:
            raise ValueError("'until' goes with 'repeat'")
        for expr in (self.until, self.wait_until):
            if expr is not None:
                try:
                    check_expr(expr)
                except ExprError as exc:
                    raise ValueError(str(exc)) from None
        return self


class VerdictSpec(_Strict):
    """A checkable expectation: ``expr`` over run metrics and helper functions (metrics.py)."""

    name: str
    expr: str

    @field_validator("expr")
    @classmethod
    def _parse(cls, v: str) -> str:
        import ast

        try:
            ast.parse(v, mode="eval")
        except SyntaxError as exc:
            raise ValueError(f"cannot read verdict expression {v!r}: {exc.msg}") from None
        return v


class OutputSpec(_Strict):
    sample_interval_s: float = Field(default=0.5, gt=0)
    trace: bool = True


class Scenario(_Strict):
    """A whole scenario file."""

    name: str
    description: str = ""
    seed: int = 1
    duration_s: float = Field(gt=0, description="hard cap on simulated time")
    tick_s: float = Field(default=0.01, gt=0, le=1.0)
    policies: list[str] = Field(default_factory=lambda: ["v6.12", "v6.18"])
    machine: MachineSpec
    sysctl: SysctlSpec = SysctlSpec()
    cgroups: dict[str, CgroupSpec] = Field(default_factory=dict)
    workloads: dict[str, WorkloadSpec] = Field(default_factory=dict)
    script: list[StepSpec]
    output: OutputSpec = OutputSpec()
    verdicts: list[VerdictSpec] = Field(default_factory=list)

    @model_validator(mode="after")
    def _refs(self) -> Scenario:
        nn = len(self.machine.nodes)
        for w, spec in self.workloads.items():
            for n in spec.bind or []:
                if not 0 <= n < nn:
                    raise ValueError(f"workloads.{w}.bind: node {n} does not exist (0..{nn - 1})")
            if spec.memcg is not None and spec.memcg not in self.cgroups:
                known = ", ".join(sorted(self.cgroups)) or "none"
                raise ValueError(
                    f"workloads.{w}.memcg: no [cgroups.{spec.memcg}] table; defined: {known}"
                )
        if len(self.cgroups) > 254:
            raise ValueError("cgroups: at most 254 cgroups are supported")

        def walk(steps: list[StepSpec]) -> None:
            for s in steps:
                if s.start is not None and s.start not in self.workloads:
                    known = ", ".join(sorted(self.workloads)) or "none"
                    raise ValueError(
                        f"script: start = {s.start!r} names no workload; defined: {known}"
                    )
                if s.steal is not None and s.steal.node >= nn:
                    raise ValueError(
                        f"script: steal.node = {s.steal.node} does not exist (0..{nn - 1})"
                    )
                if s.repeat is not None:
                    walk(s.repeat)

        walk(self.script)
        return self


def _set_path(data: dict[str, Any], dotted: str, raw: str) -> None:
    """Apply ``--set machine.swap=8GiB`` to the raw TOML dict (value parsed as TOML)."""
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    cur: Any = data
    parts = dotted.split(".")
    for i, part in enumerate(parts[:-1]):
        m = re.fullmatch(r"(\w+)\[(\d+)\]", part)
        if m:
            cur = cur.setdefault(m.group(1), [])
            idx = int(m.group(2))
            if idx >= len(cur):
                raise ScenarioError(f"--set {dotted}: {m.group(1)} has no element {idx}")
            cur = cur[idx]
        else:
            if not isinstance(cur, dict):
                raise ScenarioError(f"--set {dotted}: {'.'.join(parts[:i])} is not a table")
            cur = cur.setdefault(part, {})
    cur[parts[-1]] = value


def format_validation_error(exc: ValidationError, source: str) -> str:
    """One line per problem: ``file: field.path: message``."""
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"] if not str(p).startswith("function-"))
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown field (typo?); remove it or check the spelling in docs/scenarios.md"
        elif err["type"] == "missing":
            msg = "required field is missing; add it"
        lines.append(f"{source}: {loc or '(top level)'}: {msg}")
    return "\n".join(lines)


def load_scenario(path: str | Path, overrides: list[str] | None = None) -> Scenario:
    """Read, override and validate a scenario file; raise ScenarioError with a clear message."""
    p = Path(path)
    if not p.is_file():
        raise ScenarioError(f"{p}: no such scenario file")
    try:
        data = tomllib.loads(p.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{p}: not valid TOML: {exc}") from None
    return scenario_from_dict(data, overrides, source=str(p))


def scenario_from_dict(
    data: dict[str, Any], overrides: list[str] | None = None, source: str = "<scenario>"
) -> Scenario:
    """Validate an already-parsed scenario dict (after applying ``key=value`` overrides)."""
    data = copy.deepcopy(data)
    for ov in overrides or []:
        if "=" not in ov:
            raise ScenarioError(f"--set {ov!r}: write key=value, e.g. --set machine.swap=8GiB")
        key, raw = ov.split("=", 1)
        _set_path(data, key.strip(), raw.strip())
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError(format_validation_error(exc, source)) from None
