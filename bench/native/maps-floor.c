// SPDX-License-Identifier: Apache-2.0
/*
 * The kernel's floor for bench/datapath-maps.ts: the same kernel calls the
 * eBPF datapath makes for one 100k-entry revision, from C with nothing else
 * around them. For each of E maps (hash, 12-byte key, 4-byte value, N/E
 * entries, map_flags F): create it, write its entries with one
 * BPF_MAP_UPDATE_BATCH, then read it back as the datapath does: its digest
 * computed in the kernel by the object's policy_digest program (one
 * BPF_PROG_TEST_RUN per map, the map set in policy_0 first, untimed as the
 * datapath overlaps that write with the others). Then, apart from the total,
 * one BPF_MAP_LOOKUP_BATCH of each (what the datapath does only when the
 * digest differs). The
 * keys are the bench's (bigRevision): identity 0x20100 + i/8, direction
 * alternating, TCP, ports 1000 + i%8. T threads share the work (T = 1: one
 * after the other): thread t creates and reads back maps t, t + T, ...,
 * and writes its 1/T slice of every map's entries (the datapath writes one
 * map's batches two at a time: `POLICY_WRITERS`); each phase starts when
 * every thread has finished the one before. Prints one JSON line of wall
 * times in ms (the median of R rounds) per phase: create, update, digest,
 * lookup, and total = create + update + digest.
 *
 * usage: maps-floor ENTRIES ENDPOINTS FLAGS THREADS ROUNDS OBJECT
 */
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct key {
	uint32_t identity;
	uint8_t direction, protocol;
	uint16_t port_low, port_high;
	uint16_t pad;
} __attribute__((packed));

/* bpf/meshplane.h struct policy_digest_ctx (the layout test checks the header's) */
struct digest_ctx {
	uint32_t slot, copy, prefix_hi, prefix_lo, pending, bytes;
	uint64_t sum, count;
};

static int n_entries, n_maps, flags, n_threads, per, outer_fd, digest_fd;
static struct key *keys;
static uint32_t *values;
static int *fds;
static double t_create[64], t_update[64], t_digest[64], t_lookup[64];
static pthread_barrier_t phase;

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void die(const char *what, int ret)
{
	fprintf(stderr, "%s: %s\n", what, strerror(ret < 0 ? -ret : errno));
	exit(1);
}

/* Thread t: create maps t, t + T, ...; write its slice of every map; read back maps t, t + T, .... */
static void *work(void *arg)
{
	int t = (int)(intptr_t)arg;
	LIBBPF_OPTS(bpf_map_create_opts, copts, .map_flags = flags);
	LIBBPF_OPTS(bpf_map_batch_opts, bopts);
	struct key *kout = malloc(sizeof(struct key) * per);
	uint32_t *vout = malloc(4 * per);
	uint64_t out_batch;
	double a = now_ms();
	for (int m = t; m < n_maps; m += n_threads) {
		fds[m] = bpf_map_create(BPF_MAP_TYPE_HASH, "mp_floor", sizeof(struct key), 4, per, &copts);
		if (fds[m] < 0)
			die("bpf_map_create", fds[m]);
	}
	pthread_barrier_wait(&phase);
	double b = now_ms();
	int from = (int)((long)per * t / n_threads), to = (int)((long)per * (t + 1) / n_threads);
	for (int m = 0; m < n_maps && to > from; m++) {
		__u32 count = to - from;
		int ret = bpf_map_update_batch(fds[m], keys + from, values + from, &count, &bopts);
		if (ret < 0 || count != (__u32)(to - from))
			die("bpf_map_update_batch", ret);
	}
	pthread_barrier_wait(&phase);
	double c = now_ms();
	if (t == 0)
		for (int m = 0; m < n_maps; m++) {
			__u32 slot = m;
			int ret = bpf_map_update_elem(outer_fd, &slot, &fds[m], BPF_ANY);
			if (ret < 0)
				die("bpf_map_update_elem(policy_0)", ret);
		}
	pthread_barrier_wait(&phase);
	double d = now_ms();
	for (int m = t; m < n_maps; m += n_threads) {
		struct digest_ctx ctx = { .slot = m, .pending = 0xffffffffU, .bytes = 48 };
		LIBBPF_OPTS(bpf_test_run_opts, ropts, .ctx_in = &ctx, .ctx_size_in = sizeof(ctx));
		int ret = bpf_prog_test_run_opts(digest_fd, &ropts);
		if (ret < 0 || ropts.retval != 0 || ctx.count != (uint64_t)per)
			die("bpf_prog_test_run_opts(policy_digest)", ret);
	}
	pthread_barrier_wait(&phase);
	double e = now_ms();
	for (int m = t; m < n_maps; m += n_threads) {
		__u32 count = per;
		int ret = bpf_map_lookup_batch(fds[m], NULL, &out_batch, kout, vout, &count, &bopts);
		if ((ret < 0 && errno != ENOENT) || count != (__u32)per)
			die("bpf_map_lookup_batch", ret);
	}
	double f = now_ms();
	t_create[t] = b - a;
	t_update[t] = c - b;
	t_digest[t] = e - d;
	t_lookup[t] = f - e;
	free(kout);
	free(vout);
	return NULL;
}

static int cmp(const void *x, const void *y)
{
	double a = *(const double *)x, b = *(const double *)y;
	return a < b ? -1 : a > b;
}

int main(int argc, char **argv)
{
	if (argc != 7) {
		fprintf(stderr, "usage: %s ENTRIES ENDPOINTS FLAGS THREADS ROUNDS OBJECT\n", argv[0]);
		return 2;
	}
	n_entries = atoi(argv[1]);
	n_maps = atoi(argv[2]);
	flags = atoi(argv[3]);
	n_threads = atoi(argv[4]);
	int rounds = atoi(argv[5]);
	if (n_maps < 1 || n_threads < 1 || n_threads > 64 || rounds < 1 || rounds > 64)
		return 2;
	per = (n_entries + n_maps - 1) / n_maps;
	struct bpf_object *obj = bpf_object__open_file(argv[6], NULL);
	if (!obj || bpf_object__load(obj))
		die("loading the eBPF object", -errno);
	outer_fd = bpf_object__find_map_fd_by_name(obj, "policy_0");
	digest_fd = bpf_program__fd(bpf_object__find_program_by_name(obj, "policy_digest"));
	if (outer_fd < 0 || digest_fd < 0)
		die("policy_0 / policy_digest in the object", -ENOENT);
	keys = calloc(per, sizeof(struct key));
	values = calloc(per, 4);
	fds = calloc(n_maps, sizeof(int));
	for (int i = 0; i < per; i++) {
		keys[i].identity = 0x20100 + (i >> 3);
		keys[i].direction = i % 2 == 0 ? 1 : 2;
		keys[i].protocol = 6;
		keys[i].port_low = keys[i].port_high = 1000 + (i & 7);
		values[i] = i % 97 == 0 ? 2 : 1;
	}
	double create[64], update[64], digest[64], lookup[64], total[64];
	pthread_barrier_init(&phase, NULL, n_threads);
	for (int r = 0; r < rounds; r++) {
		pthread_t th[64];
		for (int t = 0; t < n_threads; t++)
			pthread_create(&th[t], NULL, work, (void *)(intptr_t)t);
		for (int t = 0; t < n_threads; t++)
			pthread_join(th[t], NULL);
		create[r] = update[r] = digest[r] = lookup[r] = 0;
		for (int t = 0; t < n_threads; t++) {
			if (t_create[t] > create[r]) create[r] = t_create[t];
			if (t_update[t] > update[r]) update[r] = t_update[t];
			if (t_digest[t] > digest[r]) digest[r] = t_digest[t];
			if (t_lookup[t] > lookup[r]) lookup[r] = t_lookup[t];
		}
		total[r] = create[r] + update[r] + digest[r];
		for (int m = 0; m < n_maps; m++) {
			__u32 slot = m;
			bpf_map_delete_elem(outer_fd, &slot);
			close(fds[m]);
		}
	}
	qsort(create, rounds, sizeof(double), cmp);
	qsort(update, rounds, sizeof(double), cmp);
	qsort(digest, rounds, sizeof(double), cmp);
	qsort(lookup, rounds, sizeof(double), cmp);
	qsort(total, rounds, sizeof(double), cmp);
	printf("{\"create_ms\":%.1f,\"update_ms\":%.1f,\"digest_ms\":%.1f,\"lookup_ms\":%.1f,"
	       "\"total_ms\":%.1f}\n",
	       create[rounds / 2], update[rounds / 2], digest[rounds / 2], lookup[rounds / 2],
	       total[rounds / 2]);
	bpf_object__close(obj);
	return 0;
}
