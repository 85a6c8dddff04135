"""A patch idea as a reclaimsim policy: revive a hopeless node once frees bring any of its zones
above HIGH, whatever node id it has (unlike v6.18, whose check needs a higher-numbered memory
node). Run: reclaimsim run scenarios/vm-2g1g-hopeless.toml --policy examples/kswapd_retry_on_free.py
"""

from reclaimsim.kernel.vmscan import kswapd_clear_hopeless, kswapd_hopeless
from reclaimsim.policies.v6_12 import V612


class RetryOnFree(V612):
    name = "retry-on-free"
    description = "v6.12 + reset kswapd_failures when a freed zone climbs above HIGH"

    def zone_above_high_on_free(self, k, pgdat, zone):
        if kswapd_hopeless(pgdat):
            kswapd_clear_hopeless(k, pgdat, "PCP")
