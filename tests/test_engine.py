"""The engine's step loop (the CPU share of runnable tasks, the script's expression names) and
the lookups every step relies on (zonelists)."""

from __future__ import annotations

from reclaimsim.engine import Simulation
from reclaimsim.kernel.constants import MAX_RECLAIM_RETRIES
from reclaimsim.kernel.page_alloc import GFP_HIGHUSER_MOVABLE, GFP_KERNEL, GFP_PROMOTE, zonelist
from reclaimsim.scenario import scenario_from_dict
from reclaimsim.units import ExprError, eval_expr
from reclaimsim.workloads import Process


def one_cpu(script: list[dict], duration_s: float = 3.0) -> dict:
    return {
        "name": "engine-tiny",
        "duration_s": duration_s,
        "machine": {"nodes": [{"id": 0, "cpus": 1, "size": "64MiB"}]},
        "sysctl": {"numa_balancing": 0},
        "workloads": {
            "busy": {"hot": "1MiB", "access": "busy"},
            "idle": {"cold": "1MiB"},  # touches its memory, then pause()s: off the CPU
        },
        "script": script,
    }


def test_cpu_share_follows_task_start_ready_and_exit(monkeypatch):
    """CFS with equal weights: n runnable tasks on c CPUs each get min(1, c/n) of a CPU. A
    task leaves the runqueue when it exits or sleeps for good (pause() after its memory is
    touched), and the others' share of CPU (and so their hot sets' touch rate) grows from that
    step on."""
    shares: list[tuple[float, str, float]] = []
    orig = Process.set_cpu_share

    def record(self: Process, k, share: float) -> None:
        shares.append((round(k.now, 6), self.name, share))
        orig(self, k, share)

    monkeypatch.setattr(Process, "set_cpu_share", record)
    script = [
        {"start": "busy", "name": "a"},
        {"start": "busy", "name": "b"},
        {"start": "idle", "name": "c"},
        {"wait_ready": "c", "timeout_s": 1},
        {"sleep_s": 0.5},
        {"kill": "b"},
        {"sleep_s": 0.5},
    ]
    sim = Simulation(scenario_from_dict(one_cpu(script)), "v6.18").run()
    a, b, c = (sim.by_name[n] for n in "abc")
    assert c.state == "running" and not c.runnable()  # paused, not on the CPU
    assert b.state == "dead"
    # three runnable while c faults in, then two (a, b), then a alone
    assert ("a", 1 / 3) in [(n, s) for _, n, s in shares]
    t_ready = c.ready_t
    assert t_ready is not None
    after_ready = [s for t, n, s in shares if n == "a" and t > t_ready]
    assert after_ready[0] == 0.5
    t_kill = b.exit_t
    assert t_kill is not None and t_kill > t_ready
    assert a.cpu_share == 1.0 and a.alive
    last = [(t, s) for t, n, s in shares if n == "a"][-1]
    assert last == (round(t_kill, 6), 1.0)  # the kill is in the step's script: same step
    # the busy loop runs at full speed again: its touch rate is the whole pass rate
    assert sim.k.regions.rate[a.hot_region] == a.full_rate


def test_script_names_are_read_when_evaluated():
    """Script expressions see the state when they are evaluated: node<N>.free in bytes,
    .free_mb, .managed, .unreclaimable (kswapd_failures >= MAX_RECLAIM_RETRIES), t, i; an
    unknown name is an error naming it."""
    sim = Simulation(scenario_from_dict(one_cpu([{"sleep_s": 1}])), "v6.18")
    k = sim.k
    env = sim.env(7)
    pg = k.pgdats[0]
    assert env["node0.free"] == pg.free_pages() * 4096
    assert env["node0.managed"] == pg.managed_pages() * 4096
    assert eval_expr("i == 7 and t == 0", env)
    assert eval_expr("node0.unreclaimable", env) == 0
    pg.kswapd_failures = MAX_RECLAIM_RETRIES
    k.now = 2.5
    assert eval_expr("node0.unreclaimable", env) == 1  # the same env, read again
    assert eval_expr("t", env) == 2.5
    assert set(env) >= {"t", "i", "node0.free", "node0.free_mb", "node0.hugepages_total"}
    assert all(name in env for name in env) and len(list(env)) == len(env)
    for bad in ("node1.free", "node0.bogus", "node00.free", "nodes"):
        assert bad not in env
    try:
        eval_expr("node1.free > 0", env)
    except ExprError as exc:
        assert "node1.free" in str(exc)
    else:
        raise AssertionError("an unknown name must be rejected")


def test_zonelists_follow_distance_and_are_the_callers_own():
    """build_zonelists(): the preferred node first, then the others by distance; zones high
    to low within a node, none above the gfp's highest zone; __GFP_THISNODE keeps only the
    preferred node; a nodemask filters. Built once like the kernel's, but each caller gets a
    list it may change without changing the next caller's."""
    d = {
        "name": "three-nodes",
        "duration_s": 1,
        "machine": {
            "nodes": [
                {"id": 0, "cpus": 1, "size": "64MiB"},
                {"id": 1, "cpus": 1, "size": "64MiB"},
                {"id": 2, "cpus": 0, "size": "64MiB"},
            ],
            "distance": [[10, 30, 20], [30, 10, 20], [20, 20, 10]],
        },
        "script": [{"sleep_s": 1}],
    }
    k = Simulation(scenario_from_dict(d), "v6.18").k

    def nodes(zl: list) -> list[int]:
        return [z.node_id for z in zl]

    zl = zonelist(k, 0, GFP_HIGHUSER_MOVABLE, None)
    assert list(dict.fromkeys(nodes(zl))) == [0, 2, 1]
    for n in (0, 1, 2):
        types = [z.zone_type for z in zl if z.node_id == n]
        assert types == sorted(types, reverse=True)
    assert all(z.zone_type <= GFP_KERNEL.highest_zoneidx for z in zonelist(k, 1, GFP_KERNEL, None))
    assert set(nodes(zonelist(k, 1, GFP_PROMOTE, None))) == {1}
    assert set(nodes(zonelist(k, 1, GFP_HIGHUSER_MOVABLE, [0, 2]))) == {0, 2}
    assert nodes(zonelist(k, 1, GFP_HIGHUSER_MOVABLE, None))[0] == 1
    zl.clear()
    assert zonelist(k, 0, GFP_HIGHUSER_MOVABLE, None) != []


def test_expressions_compiled_once_read_their_names_each_time():
    """An expression's text is compiled once but every evaluation reads the names again; a
    chained comparison stops at its first false link and a boolean operator evaluates every
    operand, so an unknown name fails exactly when the evaluation reaches it."""
    env = {"t": 1.0, "i": 0}
    assert eval_expr("t >= 2 and i == 0", env) is False
    env["t"] = 2.5
    assert eval_expr("t >= 2 and i == 0", env) is True
    assert eval_expr("3 < t < nowhere", env) is False  # stops before the unknown name
    for src in ("1 < t < nowhere", "t > 0 or nowhere"):
        try:
            eval_expr(src, env)
        except ExprError as exc:
            assert "nowhere" in str(exc)
        else:
            raise AssertionError(f"{src!r} must fail on its unknown name")
