"""Kernel versions and patches as policies; ``get_policy`` also loads a user's Python file."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from .base import Policy
from .byungchul_v1 import ByungchulV1
from .byungchul_v2 import ByungchulV2
from .jiayuan_balanced import JiayuanBalanced
from .jiayuan_boost import JiayuanBoost
from .mm_2026 import MM2026
from .tiering_0_8 import Tiering08
from .v4_10 import V410
from .v6_1 import V61
from .v6_6 import V66
from .v6_12 import V612
from .v6_18 import V618
from .wei_xu_mglru import WeiXuMglru

POLICIES: dict[str, type[Policy]] = {
    p.name: p
    for p in (
        V410,
        V61,
        V66,
        WeiXuMglru,
        V612,
        V618,
        ByungchulV1,
        ByungchulV2,
        Tiering08,
        JiayuanBoost,
        JiayuanBalanced,
        MM2026,
    )
}


class PolicyError(ValueError):
    """Unknown policy name or a policy file without a Policy subclass."""


def get_policy(name: str) -> Policy:
    """A built-in policy by name, or ``path/to/file.py`` defining one Policy subclass."""
    if name in POLICIES:
        return POLICIES[name]()
    p = Path(name)
    if p.suffix == ".py":
        if not p.is_file():
            raise PolicyError(f"--policy {name}: no such file")
        spec = importlib.util.spec_from_file_location(f"reclaimsim_user_policy_{p.stem}", p)
        assert spec is not None and spec.loader is not None
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        found = [
            v
            for v in vars(mod).values()
            if isinstance(v, type) and issubclass(v, Policy) and v.__module__ == mod.__name__
        ]
        if len(found) != 1:
            raise PolicyError(
                f"--policy {name}: define exactly one Policy subclass (found {len(found)})"
            )
        return found[0]()
    known = ", ".join(POLICIES)
    raise PolicyError(f"unknown policy {name!r}; known: {known}, or a path to a .py file")


__all__ = ["POLICIES", "Policy", "PolicyError", "get_policy"]
