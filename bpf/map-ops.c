// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
//
// User-space helpers of the node agent (not eBPF): loops of libbpf's element
// calls for map types the kernel has no batch operations for (the LPM tries:
// ipcache, policy_ranges). The agent calls them through koffi on a worker
// thread (nodeagent/datapath/ebpf/libbpf.ts), so a walk of 60,000 prefixes —
// two syscalls each — does not hold the event loop. Built by `make -C bpf`
// into libmeshplane-maps.so (build output, not committed).
#include <bpf/bpf.h>
#include <errno.h>
#include <stdint.h>

// Reads the entries of map `fd` after key `after` (from the first with NULL)
// into `keys` and `values` (`key_size` and `value_size` bytes each, packed),
// at most `max`; returns the count, or a negative errno. Fewer than `max`:
// the walk reached the end; `max`: call again after the last key read. An
// entry deleted between finding its key and reading its value is skipped.
// A key deleted under the walk makes the kernel restart it from the first
// key, so concurrent deletions may repeat entries, as a get_next_key walk
// from user space always could.
int meshplane_map_walk(int fd, uint32_t key_size, uint32_t value_size, const void *after,
		       void *keys, void *values, uint32_t max)
{
	uint8_t *k = keys;
	uint8_t *v = values;
	const void *prev = after;
	uint32_t n = 0;

	while (n < max) {
		// next may alias prev: the kernel copies prev in before it writes next.
		void *next = k + (uint64_t)n * key_size;
		int err = bpf_map_get_next_key(fd, prev, next);

		if (err == -ENOENT)
			break;
		if (err)
			return err;
		prev = next;
		err = bpf_map_lookup_elem(fd, next, v + (uint64_t)n * value_size);
		if (err == -ENOENT)
			continue; // deleted meanwhile; its key stays prev for the next step
		if (err)
			return err;
		n++;
	}
	return (int)n;
}

// Writes `count` entries (`keys` and `values` packed) with
// bpf_map_update_elem(`flags`), in order; returns `count`, or a negative
// errno (the entries before the failing one are written).
int meshplane_map_update_each(int fd, uint32_t key_size, uint32_t value_size, const void *keys,
			      const void *values, uint32_t count, uint64_t flags)
{
	const uint8_t *k = keys;
	const uint8_t *v = values;

	for (uint32_t i = 0; i < count; i++) {
		int err = bpf_map_update_elem(fd, k + (uint64_t)i * key_size,
					      v + (uint64_t)i * value_size, flags);
		if (err)
			return err;
	}
	return (int)count;
}

// Deletes `count` keys (packed); a key that is not there is not an error.
// Returns `count`, or a negative errno.
int meshplane_map_delete_each(int fd, uint32_t key_size, const void *keys, uint32_t count)
{
	const uint8_t *k = keys;

	for (uint32_t i = 0; i < count; i++) {
		int err = bpf_map_delete_elem(fd, k + (uint64_t)i * key_size);
		if (err && err != -ENOENT)
			return err;
	}
	return (int)count;
}

// Looks `count` keys (packed) up: record i of `values` gets key i's value and
// found[i] is 1, or found[i] is 0 when the map does not hold the key.
// Returns `count`, or a negative errno.
int meshplane_map_lookup_each(int fd, uint32_t key_size, uint32_t value_size, const void *keys,
			      void *values, uint8_t *found, uint32_t count)
{
	const uint8_t *k = keys;
	uint8_t *v = values;

	for (uint32_t i = 0; i < count; i++) {
		int err = bpf_map_lookup_elem(fd, k + (uint64_t)i * key_size,
					      v + (uint64_t)i * value_size);
		if (err && err != -ENOENT)
			return err;
		found[i] = err == 0;
	}
	return (int)count;
}
