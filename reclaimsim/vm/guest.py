"""A scenario's script -> the guest's /init (busybox ash).

The template ``guest/init.sh.in`` (from ``../shared/realkernel/guest/init.sh``) holds the fixed
part: mounts, kmem and swap set-up, ``I`` lines, ftrace, the sampler, and the step helpers
(``rk_start``, ``rk_wait_ready``, ``rk_sleep``, ``rk_kill``, ``rk_phase`` ...). This module fills
in the machine configuration (``#@CONFIG@``) and one shell block per script step
(``#@SCRIPT@``), with the engine's semantics (``reclaimsim/engine.py``):

- ``start``: ``hog -c COLD -H HOT -s SLEEP [-b NODES] -a ADJ``; size expressions such as
  ``node0.free + 64MiB`` are evaluated in the guest when the step runs (``nodeN.free`` from
  ``/sys/devices/system/node/nodeN/meminfo``, ``nodeN.unreclaimable`` from ``/proc/zoneinfo``),
  in shell integer arithmetic (``/`` divides integers);
- ``wait_ready``: the workload's ready file, until it dies or ``timeout_s``;
- ``repeat`` / ``until`` / ``max_s``: checked before every inner step; the inner waits and sleeps
  end early when it holds, as the engine's ``with_until``;
- ``phase`` / ``end_phase``: ``E`` lines ``PHASE:<name>`` / ``PHASE_END:<name>`` (a new phase
  closes the open one; the end of the script closes the last one);
- ``event``: an ``E`` line with the event's name (``{i}`` is the repeat index);
- ``kill``: ``kill -9`` of the started workloads whose names match the fnmatch patterns, then
  ``wait`` for them (their memory is freed when the step ends);
- ``sysctl``: the same writes as the machine configuration.

``t`` in expressions is whole seconds since the script started (the BOOT_DONE event).
"""

from __future__ import annotations

import ast
import re
from importlib import resources
from typing import Any

from ..scenario import Scenario, StepSpec, WorkloadSpec
from ..units import ExprError, _dotted, _parse, eval_expr, parse_size
from .plan import NAME_RE, VmPlan, VmPlanError

#: scenario sysctl name -> (guest file, value formatter)
NUMAB = "/sys/kernel/debug/sched/numa_balancing"
SYSCTL_FILES: dict[str, str] = {
    "min_free_kbytes": "/proc/sys/vm/min_free_kbytes",
    "watermark_scale_factor": "/proc/sys/vm/watermark_scale_factor",
    "watermark_boost_factor": "/proc/sys/vm/watermark_boost_factor",
    "lowmem_reserve_ratio": "/proc/sys/vm/lowmem_reserve_ratio",
    "swappiness": "/proc/sys/vm/swappiness",
    "zone_reclaim_mode": "/proc/sys/vm/zone_reclaim_mode",
    "numa_balancing": "/proc/sys/kernel/numa_balancing",
    "numa_balancing_promote_rate_limit_MBps": (
        "/proc/sys/kernel/numa_balancing_promote_rate_limit_MBps"
    ),
    "numa_balancing_hot_threshold_ms": f"{NUMAB}/hot_threshold_ms",
    "numa_balancing_scan_delay_ms": f"{NUMAB}/scan_delay_ms",
    "numa_balancing_scan_period_min_ms": f"{NUMAB}/scan_period_min_ms",
    "numa_balancing_scan_period_max_ms": f"{NUMAB}/scan_period_max_ms",
    "numa_balancing_scan_size_mb": f"{NUMAB}/scan_size_mb",
    "demotion_enabled": "/sys/kernel/mm/numa/demotion_enabled",
    "nr_hugepages": "/proc/sys/vm/nr_hugepages",
}
_SHELL_FUNCS = {
    "free": "rk_free",
    "free_mb": "rk_free_mb",
    "managed": "rk_managed",
    "unreclaimable": "rk_unrecl",
}
_OPS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "/"}
_CMP = {ast.Gt: ">", ast.GtE: ">=", ast.Lt: "<", ast.LtE: "<=", ast.Eq: "==", ast.NotEq: "!="}


def sysctl_value(key: str, v: Any) -> str:
    """A scenario sysctl value as the kernel file takes it."""
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, list | tuple):
        return " ".join(str(int(x)) for x in v)
    return str(int(v)) if isinstance(v, float) and v.is_integer() else str(v)


def sysctl_lines(values: dict[str, Any], where: str) -> list[str]:
    """``wr FILE VALUE`` lines for sysctl writes; unknown keys are a VmPlanError."""
    out = []
    for key, v in values.items():
        if v is None:
            continue
        path = SYSCTL_FILES.get(key)
        if path is None:
            known = ", ".join(sorted(SYSCTL_FILES))
            raise VmPlanError(f"{where}: sysctl {key!r} is unknown; known: {known}")
        out.append(f"wr {path} {shq(sysctl_value(key, v))}")
    return out


def shq(s: str) -> str:
    """Single-quote for the shell."""
    return "'" + s.replace("'", "'\\''") + "'"


def shq_i(template: str) -> str:
    """A double-quoted shell word for a name/event template; ``{i}`` -> the repeat index."""
    parts = template.split("{i}")
    esc = [re.sub(r'([\\"$`])', r"\\\1", p) for p in parts]
    return '"' + "${i}".join(esc) + '"'


def shell_arith(src: str | int | float) -> str:
    """A scenario expression as a shell arithmetic expression (inside ``$(( ))``).

    Names become command substitutions (``node0.free`` -> ``$(rk_free 0)``, ``t`` ->
    ``$(rk_t)``, ``i`` -> ``$i``); sub-expressions without names are folded in Python (so
    ``1.5GiB`` works); the result is integer arithmetic.
    """
    if isinstance(src, int | float):
        return str(int(src))
    tree = _parse(src)

    def has_names(node: ast.AST) -> bool:
        return any(isinstance(n, ast.Name) for n in ast.walk(node))

    def tr(node: ast.AST) -> str:
        if isinstance(node, ast.Expression):
            return tr(node.body)
        if not has_names(node):
            v = eval_expr(ast.unparse(node), {})
            return str(int(v)) if not isinstance(v, bool) else str(int(v))
        if isinstance(node, ast.Name | ast.Attribute):
            key = _dotted(node)
            if key == "i":
                return "$i"
            if key == "t":
                return "$(rk_t)"
            m = re.fullmatch(r"node(\d+)\.(\w+)", key or "")
            if not m or m.group(2) not in _SHELL_FUNCS:
                raise ExprError(f"unknown name {key!r} in {src!r}")
            return f"$({_SHELL_FUNCS[m.group(2)]} {m.group(1)})"
        if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
            return f"({tr(node.left)} {_OPS[type(node.op)]} {tr(node.right)})"
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return f"(-{tr(node.operand)})"
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            return f"(!{tr(node.operand)})"
        if isinstance(node, ast.BoolOp):
            op = " && " if isinstance(node.op, ast.And) else " || "
            return "(" + op.join(tr(v) for v in node.values) + ")"
        if isinstance(node, ast.Compare) and all(type(o) in _CMP for o in node.ops):
            terms, left = [], tr(node.left)
            for op, right_node in zip(node.ops, node.comparators, strict=True):
                right = tr(right_node)
                terms.append(f"({left} {_CMP[type(op)]} {right})")
                left = right
            return "(" + " && ".join(terms) + ")"
        raise ExprError(f"unsupported syntax in {src!r} for the guest shell")

    return tr(tree)


def _size_arith(v: str | int) -> str:
    """A workload size (bytes, '256MiB' or an expression) as shell arithmetic (bytes)."""
    if isinstance(v, int):
        return str(v)
    try:
        return str(parse_size(v))
    except ExprError:
        return shell_arith(v)


def _cs(seconds: float) -> int:
    return max(0, int(round(seconds * 100)))


def _access_sleep_ms(w: WorkloadSpec) -> int:
    if w.access == "busy":
        return 0
    rate = float(w.access)
    return -1 if rate <= 0 else max(1, int(round(1000 / rate)))


class _Gen:
    def __init__(self, sc: Scenario) -> None:
        self.sc = sc
        self.nfunc = 0
        self.nrep = 0

    def steps(self, steps: list[StepSpec], depth: int, in_repeat: str | None) -> list[str]:
        out: list[str] = []
        ind = "\t" * depth
        for s in steps:
            if in_repeat:
                out.append(f"{ind}{in_repeat} && break")
            out += [ind + line for line in self.step(s, depth, in_repeat)]
        return out

    def step(self, s: StepSpec, depth: int, in_repeat: str | None) -> list[str]:
        sc = self.sc
        if s.phase is not None:
            if not NAME_RE.match(s.phase):
                raise VmPlanError(
                    f"{sc.name}: phase name {s.phase!r}: use letters, digits and _ . + - only"
                )
            return [f"rk_phase {s.phase}"]
        if s.end_phase:
            return ["rk_end_phase"]
        if s.event is not None:
            return [f'ev {shq_i(s.event)} "$(state)"']
        if s.start is not None:
            w = sc.workloads[s.start]
            name = s.name or s.start
            if not NAME_RE.match(name.replace("{i}", "0")):
                raise VmPlanError(
                    f"{sc.name}: workload instance name {name!r}: use letters, digits, {{i}} "
                    "and _ . + - only"
                )
            if w.kernel or w.alloc_MBps is not None:
                raise VmPlanError(
                    f"{sc.name}: workloads.{s.start}: the guest's hog makes no kernel "
                    "allocations and has no rate cap; remove kernel / alloc_MBps for a VM run"
                )
            bind = ":".join(str(n) for n in w.bind) if w.bind else '""'
            return [
                f"rk_start {shq_i(name)} $(( {_size_arith(w.cold)} )) "
                f"$(( {_size_arith(w.hot)} )) {_access_sleep_ms(w)} {bind} {w.oom_score_adj}"
            ]
        if s.wait_ready is not None:
            return [f"rk_wait_ready {shq_i(s.wait_ready)} {_cs(s.timeout_s or 0)}"]
        if s.sleep_s is not None:
            return [f"rk_sleep {_cs(s.sleep_s)}"]
        if s.kill is not None:
            pats = [s.kill] if isinstance(s.kill, str) else s.kill
            return ["rk_kill " + " ".join(shq_i(p) for p in pats)]
        if s.sysctl is not None:
            lines = sysctl_lines(s.sysctl, f"{sc.name}: script sysctl")
            for k, v in s.sysctl.items():
                lines.append(f"ev {shq('SYSCTL ' + k + '=' + sysctl_value(k, v))}")
            return lines
        if s.wait_until is not None:
            self.nfunc += 1
            fn = f"rk_x{self.nfunc}"
            return [
                f"{fn}() {{ [ $(( {shell_arith(s.wait_until)} )) -ne 0 ]; }}",
                f"rk_wait_until {fn} {_cs(s.timeout_s or 0)}",
            ]
        if s.repeat is not None:
            self.nrep += 1
            r = self.nrep
            fn = f"rk_u{r}"
            cond = []
            if s.max_s is not None:
                cond.append(f"[ $(upc) -ge $_r{r}_end ] && return 0")
            if s.until is not None:
                cond.append(f"[ $(( {shell_arith(s.until)} )) -ne 0 ]")
            else:
                cond.append("false")
            lines = [
                f"_r{r}_i=$i; _r{r}_u=$RK_UNTIL; _r{r}_end=$(( $(upc) + {_cs(s.max_s or 0)} ))",
                f"{fn}() {{ " + "; ".join(cond) + "; }",
                f"RK_UNTIL={fn}; i=0",
                f"while ! {fn}; do",
            ]
            lines += self.steps(s.repeat, 1, fn)
            lines += ["\ti=$((i + 1))", "done", f"i=$_r{r}_i; RK_UNTIL=$_r{r}_u"]
            return lines
        raise VmPlanError(f"{sc.name}: script step {s!r} has no action")


def config_block(sc: Scenario, plan: VmPlan, modules: list[str], swap_dev: str | None) -> str:
    """The ``#@CONFIG@`` block: RK_* variables and ``rk_config``."""
    kmem = " ".join(
        f"{n.id}:{'online_movable' if n.zones == ['Movable'] else 'online_kernel'}"
        for n in plan.nodes
        if n.kmem
    )
    mode = "kmem" if kmem else ("hmat" if plan.hmat else "none")
    values = sc.sysctl.model_dump()
    lines = [
        f"RK_SCENARIO={shq(sc.name)}",
        f"RK_NODES={shq(' '.join(str(n.id) for n in plan.nodes))}",
        f"RK_MODULES={shq(' '.join(modules))}",
        f"RK_KMEM={shq(kmem)}",
        f"RK_NODE1_MODE={mode}",
        f"RK_SWAP_DEV={shq(swap_dev or '')}",
        f"RK_THP={'always' if sc.machine.thp else 'never'}",
        f"RK_LRUGEN={'y' if sc.machine.lru == 'mglru' else 'n'}",
        f"RK_TRACE={1 if sc.output.trace else 0}",
        f"RK_INTERVAL_MS={max(10, int(round(sc.output.sample_interval_s * 1000)))}",
        f"RK_DURATION_S={int(round(sc.duration_s))}",
        "rk_config() {",
    ]
    lines += ["\t" + ln for ln in sysctl_lines(values, f"{sc.name}: sysctl")]
    lines.append("}")
    return "\n".join(lines)


def script_block(sc: Scenario) -> str:
    """The ``#@SCRIPT@`` block: one shell block per script step."""
    return "\n".join(_Gen(sc).steps(sc.script, 0, None))


def template() -> str:
    return (resources.files("reclaimsim.vm") / "guest" / "init.sh.in").read_text()


def render_init(
    sc: Scenario, plan: VmPlan, modules: list[str] | None = None, swap_dev: str | None = None
) -> str:
    """The guest's /init for ``sc`` on ``plan``."""
    t = template()
    t = t.replace("#@CONFIG@", config_block(sc, plan, modules or [], swap_dev))
    return t.replace("#@SCRIPT@", script_block(sc))
