"""v6.12: the pre-fix kernel of the seed report (Debian 6.12.117 in the recordings).

Only a successful reclaim (``shrink_node`` with progress) resets ``kswapd_failures``; nothing
else revives a hopeless node. MGLRU resets on progress (Wei Xu's fix, backported to stable).
"""

from .base import Policy


class V612(Policy):
    name = "v6.12"
    description = "pre-fix mainline: only reclaim progress resets kswapd_failures"
