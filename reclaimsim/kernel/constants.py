"""Kernel constants (include/linux/mmzone.h, include/linux/swap.h, mm/internal.h)."""

MAX_RECLAIM_RETRIES = 16  # mm/internal.h
DEF_PRIORITY = 12  # include/linux/mmzone.h
SWAP_CLUSTER_MAX = 32  # include/linux/swap.h
PAGE_ALLOC_COSTLY_ORDER = 3
MAX_COMPACT_RETRIES = 16
PAGE_SIZE = 4096
PAGE_SHIFT = 12

# enum zone_type (x86-64)
ZONE_DMA, ZONE_DMA32, ZONE_NORMAL, ZONE_MOVABLE = 0, 1, 2, 3
MAX_NR_ZONES = 4
ZONE_NAMES = ("DMA", "DMA32", "Normal", "Movable")

# enum zone_watermarks
WMARK_MIN, WMARK_LOW, WMARK_HIGH, WMARK_PROMO = 0, 1, 2, 3

# enum lru_list
LRU_INACTIVE_ANON, LRU_ACTIVE_ANON, LRU_INACTIVE_FILE, LRU_ACTIVE_FILE = 0, 1, 2, 3
NR_LRU_LISTS = 4
LRU_NAMES = ("inactive_anon", "active_anon", "inactive_file", "active_file")

# kernel.numa_balancing bits
NUMA_BALANCING_NORMAL = 1
NUMA_BALANCING_MEMORY_TIERING = 2

# mm/memory-tiers.c
MEMTIER_CHUNK_BITS = 7
MEMTIER_ADISTANCE_DRAM = (4 << MEMTIER_CHUNK_BITS) + (1 << (MEMTIER_CHUNK_BITS - 1))  # 576
MEMTIER_DEFAULT_DAX_ADISTANCE = MEMTIER_ADISTANCE_DRAM * 5  # 2880

# kernel/sched/fair.c
NUMA_MIGRATION_ADJUST_STEPS = 16
MAX_SCAN_WINDOW = 2560  # MB
# update_task_scan_period(): the period moves in tenths; 7 of 10 local/private is neutral
NUMA_PERIOD_SLOTS = 10
NUMA_PERIOD_THRESHOLD = 7

# kswapd_try_to_sleep's short nap: HZ/10
KSWAPD_NAP_S = 0.1

NUMA_NO_NODE = -1
