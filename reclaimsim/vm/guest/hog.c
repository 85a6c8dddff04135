/*
 * hog: anonymous-memory workload for the reclaim/tiering experiments.
 *
 *   hog [-n NAME] [-c COLD_MB] [-H HOT_MB] [-s SLEEP_MS] [-b NODES] [-a OOM_ADJ]
 *       [-r READY_FILE]
 *
 * (reclaimsim's copy of ../shared/realkernel/guest/hog.c: sizes may be fractional MiB and are
 * rounded up to whole pages, -b takes a node list such as "0:1", -s < 0 touches the hot set once and
 * then only pauses.)
 *
 * 1. optionally binds itself to NODES with set_mempolicy(MPOL_BIND)  (-b)
 * 2. mmaps a HOT and a COLD region (separate VMAs, hot one at the lower
 *    address, so NUMA balancing's scanner reaches it first),
 * 3. touches (writes) every 4 KiB page of COLD, then of HOT  -> the hot set is
 *    faulted in last, i.e. it lands wherever memory is left at that point,
 * 4. writes READY_FILE and prints a READY line,
 * 5. forever: writes one byte in every page of HOT, then sleeps SLEEP_MS
 *    (HOT_MB == 0: just pause() until killed).  SLEEP_MS 0 = busy loop.
 *    NUMA balancing's scanner is paced by the task's CPU time, so a task that
 *    mostly sleeps is scanned (and its pages promoted) rarely.
 *
 * Static, no libc extras (no libnuma), so it runs in a busybox initramfs.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define PG 4096UL
#define MPOL_BIND_ 2

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_BOOTTIME, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void touch(volatile char *p, size_t bytes, unsigned char v)
{
	size_t n = bytes / PG;
	for (size_t i = 0; i < n; i++)
		p[i * PG] = v;
}

/* fractional MiB -> bytes, rounded up to whole pages */
static size_t mib(const char *s)
{
	double v = strtod(s, NULL);
	if (v <= 0)
		return 0;
	size_t b = (size_t)(v * 1048576.0 + 0.5);
	return (b + PG - 1) / PG * PG;
}

int main(int argc, char **argv)
{
	const char *name = "hog", *ready = NULL;
	size_t cold = 0, hot = 0;
	long sleep_ms = 100, adj = 0;
	unsigned long mask = 0;
	const char *nodes = NULL;
	int have_adj = 0, opt;

	while ((opt = getopt(argc, argv, "n:c:H:s:b:a:r:")) != -1) {
		switch (opt) {
		case 'n': name = optarg; break;
		case 'c': cold = mib(optarg); break;
		case 'H': hot = mib(optarg); break;
		case 's': sleep_ms = strtol(optarg, NULL, 0); break;
		case 'b':
			nodes = optarg;
			for (char *q = optarg; *q;) {
				long n = strtol(q, &q, 10);
				if (n >= 0 && n < 64)
					mask |= 1UL << n;
				while (*q && (*q < '0' || *q > '9'))
					q++;
			}
			break;
		case 'a': adj = strtol(optarg, NULL, 0); have_adj = 1; break;
		case 'r': ready = optarg; break;
		default:
			fprintf(stderr, "usage: hog [-n name] [-c cold_mb] [-H hot_mb] [-s sleep_ms] [-b node] [-a oom_adj] [-r readyfile]\n");
			return 2;
		}
	}
	if (have_adj) {
		int fd = open("/proc/self/oom_score_adj", O_WRONLY);
		if (fd >= 0) {
			dprintf(fd, "%ld\n", adj);
			close(fd);
		}
	}
	if (mask) {
		if (syscall(SYS_set_mempolicy, MPOL_BIND_, &mask, 64) != 0)
			perror("set_mempolicy");
	}
	double t0 = now();
	/* one mapping laid out as [HOT][guard page][COLD]; the PROT_NONE guard
	 * splits it into separate VMAs, so numa_maps reports the hot set and the
	 * cold part separately, and the hot set has the lower address (NUMA
	 * balancing scans VMAs in address order) */
	size_t total = hot + PG + cold;
	char *base = mmap(NULL, total, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (base == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	madvise(base, total, MADV_NOHUGEPAGE);
	if (mprotect(base + hot, PG, PROT_NONE))
		perror("mprotect");
	char *h = hot ? base : NULL;
	char *c = cold ? base + hot + PG : NULL;
	printf("hog %s pid %d start t=%.3f cold=%zuKB@%p hot=%zuKB@%p bind=%s\n",
	       name, getpid(), t0, cold >> 10, (void *)c, hot >> 10, (void *)h,
	       nodes ? nodes : "-");
	fflush(stdout);
	if (c)
		touch(c, cold, 1);
	if (h)
		touch(h, hot, 1);
	double t1 = now();
	printf("hog %s pid %d READY t=%.3f (touch took %.2fs)\n", name, getpid(), t1, t1 - t0);
	fflush(stdout);
	if (ready) {
		int fd = open(ready, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fd >= 0) {
			dprintf(fd, "%d %.3f %.3f\n", getpid(), t0, t1);
			close(fd);
		}
	}
	if (!h || sleep_ms < 0) {
		for (;;)
			pause();
	}
	struct timespec ts = { sleep_ms / 1000, (sleep_ms % 1000) * 1000000L };
	for (unsigned v = 2;; v++) {
		touch(h, hot, (unsigned char)v);
		if (sleep_ms > 0)
			nanosleep(&ts, NULL);
	}
}
