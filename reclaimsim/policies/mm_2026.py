"""mm-2026: the 2026 mm tree (akpm's mm-everything, January 2026) as far as this model goes:
v6.18 + Jiayuan Chen's boosted-failure patch (jiayuan-boost) + his balanced-reset patches
(jiayuan-balanced)."""

from __future__ import annotations

from .jiayuan_balanced import JiayuanBalanced
from .jiayuan_boost import JiayuanBoost


class MM2026(JiayuanBoost, JiayuanBalanced):
    name = "mm-2026"
    description = "v6.18 + jiayuan-boost + jiayuan-balanced (the 2026 mm tree)"
