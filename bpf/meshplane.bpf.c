// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * meshplane's tc programs, attached to each local endpoint's host-side veth:
 *   from_endpoint (tc ingress: packets the pod sends = its egress policy)
 *   to_endpoint   (tc egress: packets sent to the pod = its ingress policy)
 *
 * Revisioned maps (ipcache, endpoint addresses, endpoint info, policy, policy
 * port ranges, services)
 * exist twice; the low bit of config[0].active says which copy the programs read
 * (the value counts switches; see meshplane.h). The agent
 * writes the standby copy, flips `active`, waits for running programs to finish
 * (a map-in-map update does synchronize_rcu) and replays the change on the
 * other copy, so no packet is judged by a half-written revision.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/pkt_cls.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "meshplane.h"

/* Sizes the agent overrides at load time (bpf_map__set_max_entries). */
#define DEFAULT_IPCACHE 524288
#define DEFAULT_ENDPOINTS 1024
#define DEFAULT_POLICY 16384
#define DEFAULT_POLICY_RANGES 65536
#define DEFAULT_SERVICES 4096
#define DEFAULT_CT 262144

#define IPCACHE_MAP(n)                                      \
	struct {                                                \
		__uint(type, BPF_MAP_TYPE_LPM_TRIE);                \
		__type(key, struct ipcache_key);                    \
		__type(value, struct ipcache_value);                \
		__uint(max_entries, DEFAULT_IPCACHE);               \
		__uint(map_flags, BPF_F_NO_PREALLOC);               \
	} n SEC(".maps")

#define EP_IPS_MAP(n)                                       \
	struct {                                                \
		__uint(type, BPF_MAP_TYPE_HASH);                    \
		__type(key, struct ep_ip_key);                      \
		__type(value, struct ep_ip_value);                  \
		__uint(max_entries, DEFAULT_ENDPOINTS * 4);         \
	} n SEC(".maps")

#define EP_INFO_MAP(n)                                      \
	struct {                                                \
		__uint(type, BPF_MAP_TYPE_ARRAY);                   \
		__type(key, __u32);                                 \
		__type(value, struct ep_info);                      \
		__uint(max_entries, DEFAULT_ENDPOINTS);             \
	} n SEC(".maps")

/*
 * Inner policy maps are preallocated (layout 4): a batch write of a
 * preallocated hash map costs ~1/3 of one that allocates every element
 * (nodeagent/datapath/ebpf/README.md, "Policy map memory"). The agent creates
 * the inner maps with the same flags (maps.ts POLICY_INNER_FLAGS).
 */
struct policy_inner {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct policy_key);
	__type(value, struct policy_value);
	__uint(max_entries, DEFAULT_POLICY);
	__uint(map_flags, 0);
};

#define POLICY_MAP(n)                                       \
	struct {                                                \
		__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);           \
		__uint(max_entries, DEFAULT_ENDPOINTS);             \
		__type(key, __u32);                                 \
		__array(values, struct policy_inner);               \
	} n SEC(".maps")

#define SERVICES_MAP(n)                                     \
	struct {                                                \
		__uint(type, BPF_MAP_TYPE_HASH);                    \
		__type(key, struct svc_key);                        \
		__type(value, struct svc_value);                    \
		__uint(max_entries, DEFAULT_SERVICES);              \
		__uint(map_flags, BPF_F_NO_PREALLOC);               \
	} n SEC(".maps")

/* One trie per copy for every endpoint's port ranges (keyed by slot; see meshplane.h). */
#define POLICY_RANGES_MAP(n)                                \
	struct {                                                \
		__uint(type, BPF_MAP_TYPE_LPM_TRIE);                \
		__type(key, struct policy_range_key);               \
		__type(value, struct policy_value);                 \
		__uint(max_entries, DEFAULT_POLICY_RANGES);         \
		__uint(map_flags, BPF_F_NO_PREALLOC);               \
	} n SEC(".maps")

IPCACHE_MAP(ipcache_0);
IPCACHE_MAP(ipcache_1);
EP_IPS_MAP(ep_ips_0);
EP_IPS_MAP(ep_ips_1);
EP_INFO_MAP(ep_info_0);
EP_INFO_MAP(ep_info_1);
POLICY_MAP(policy_0);
POLICY_MAP(policy_1);
POLICY_RANGES_MAP(policy_ranges_0);
POLICY_RANGES_MAP(policy_ranges_1);
SERVICES_MAP(services_0);
SERVICES_MAP(services_1);

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct config_value);
	__uint(max_entries, 1);
} config SEC(".maps");

/* Updated once per flip: a map-in-map update waits for running programs (synchronize_rcu). */
struct sync_inner {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u32);
	__uint(max_entries, 1);
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 1);
	__type(key, __u32);
	__array(values, struct sync_inner);
} sync SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct ct_key);
	__type(value, struct ct_value);
	__uint(max_entries, DEFAULT_CT);
} conntrack SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct counter_value);
	__uint(max_entries, COUNTER_SLOTS);
} counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct event_bucket);
	__uint(max_entries, 1);
} event_buckets SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

/* Keep the struct types in BTF even where no map names them (layout test). */
struct flow_event _flow_event_btf __attribute__((unused));
struct policy_key _policy_key_btf __attribute__((unused));
struct policy_value _policy_value_btf __attribute__((unused));

struct packet {
	__u8 family;
	__u8 proto;
	__u16 sport; /* host order */
	__u16 dport;
	__u8 saddr[16];
	__u8 daddr[16];
};

static __always_inline int parse(struct __sk_buff *skb, struct packet *p)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	void *l4;

	if ((void *)(eth + 1) > end)
		return -1;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);
		if ((void *)(ip + 1) > end)
			return -1;
		p->family = FAMILY_IPV4;
		p->proto = ip->protocol;
		__builtin_memcpy(p->saddr, &ip->saddr, 4);
		__builtin_memcpy(p->daddr, &ip->daddr, 4);
		if (ip->frag_off & bpf_htons(0x1fff))
			return 0; /* later fragments carry no ports */
		l4 = (void *)ip + ip->ihl * 4;
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);
		if ((void *)(ip6 + 1) > end)
			return -1;
		p->family = FAMILY_IPV6;
		p->proto = ip6->nexthdr;
		__builtin_memcpy(p->saddr, &ip6->saddr, 16);
		__builtin_memcpy(p->daddr, &ip6->daddr, 16);
		l4 = ip6 + 1;
	} else {
		return -1;
	}
	if (p->proto == IPPROTO_TCP || p->proto == IPPROTO_UDP || p->proto == IPPROTO_SCTP) {
		struct udphdr *uh = l4; /* ports sit at the same offsets in TCP and SCTP */
		if ((void *)(uh + 1) > end)
			return -1;
		p->sport = bpf_ntohs(uh->source);
		p->dport = bpf_ntohs(uh->dest);
	}
	return 0;
}

/* ICMP and ICMPv6 headers (linux/icmp.h and icmpv6.h pull in libc headers a BPF build has not). */
struct icmp_head {
	__u8 type;
	__u8 code;
	__u16 csum;
	__u32 rest;
};
#define ICMP_DEST_UNREACH 3
#define ICMP_TIME_EXCEEDED 11
#define ICMP_PARAMETERPROB 12
#define ICMP6_DEST_UNREACH 1 /* .. 4: packet too big, time exceeded, parameter problem */
#define ICMP6_PARAM_PROB 4

/*
 * An ICMP error (destination unreachable, time exceeded, parameter problem;
 * for IPv6 also packet too big) quotes the header of the packet it is about:
 * fills `inner` with that packet's addresses, protocol and ports. Returns -1
 * for any other packet.
 */
static __always_inline int parse_icmp_error(struct __sk_buff *skb, struct packet *p,
					    struct packet *inner)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	void *l4;

	if ((void *)(eth + 1) > end)
		return -1;
	if (p->family == FAMILY_IPV4 && p->proto == IPPROTO_ICMP) {
		struct iphdr *ip = (void *)(eth + 1);
		struct icmp_head *ic;
		struct iphdr *iip;

		if ((void *)(ip + 1) > end || (ip->frag_off & bpf_htons(0x1fff)))
			return -1;
		ic = (void *)ip + ip->ihl * 4;
		if ((void *)(ic + 1) > end)
			return -1;
		if (ic->type != ICMP_DEST_UNREACH && ic->type != ICMP_TIME_EXCEEDED &&
		    ic->type != ICMP_PARAMETERPROB)
			return -1;
		iip = (void *)(ic + 1);
		if ((void *)(iip + 1) > end)
			return -1;
		inner->family = FAMILY_IPV4;
		inner->proto = iip->protocol;
		__builtin_memcpy(inner->saddr, &iip->saddr, 4);
		__builtin_memcpy(inner->daddr, &iip->daddr, 4);
		l4 = (void *)iip + iip->ihl * 4;
	} else if (p->family == FAMILY_IPV6 && p->proto == IPPROTO_ICMPV6) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);
		struct icmp_head *ic6 = (void *)(ip6 + 1);
		struct ipv6hdr *iip6;

		if ((void *)(ic6 + 1) > end)
			return -1;
		if (ic6->type < ICMP6_DEST_UNREACH || ic6->type > ICMP6_PARAM_PROB)
			return -1;
		iip6 = (void *)(ic6 + 1);
		if ((void *)(iip6 + 1) > end)
			return -1;
		inner->family = FAMILY_IPV6;
		inner->proto = iip6->nexthdr;
		__builtin_memcpy(inner->saddr, &iip6->saddr, 16);
		__builtin_memcpy(inner->daddr, &iip6->daddr, 16);
		l4 = iip6 + 1;
	} else {
		return -1;
	}
	if (inner->proto == IPPROTO_TCP || inner->proto == IPPROTO_UDP) {
		struct udphdr *uh = l4; /* an ICMP error quotes at least 8 bytes of the L4 header */
		if ((void *)(uh + 1) > end)
			return -1;
		inner->sport = bpf_ntohs(uh->source);
		inner->dport = bpf_ntohs(uh->dest);
	}
	return 0;
}

static __always_inline void count(__u8 dir, __u8 reason, __u32 bytes)
{
	__u32 idx = (__u32)dir * REASON_MAX + reason;
	struct counter_value *c = bpf_map_lookup_elem(&counters, &idx);
	if (c) {
		c->packets += 1;
		c->bytes += bytes;
	}
}

static __always_inline __u32 lookup_identity(__u32 active, struct packet *p, const __u8 *addr)
{
	struct ipcache_key k = {};
	struct ipcache_value *v;

	k.family = p->family;
	k.prefixlen = 32 + (p->family == FAMILY_IPV4 ? 32 : 128);
	__builtin_memcpy(k.addr, addr, 16);
	v = active ? bpf_map_lookup_elem(&ipcache_1, &k) : bpf_map_lookup_elem(&ipcache_0, &k);
	return v ? v->identity : 2; /* world */
}

static __always_inline struct ep_ip_value *lookup_endpoint(__u32 active, struct packet *p,
							   const __u8 *addr)
{
	struct ep_ip_key k = {};

	k.family = p->family;
	__builtin_memcpy(k.addr, addr, 16);
	return active ? bpf_map_lookup_elem(&ep_ips_1, &k) : bpf_map_lookup_elem(&ep_ips_0, &k);
}

/*
 * Folds one matching entry (v may be NULL: no match) into the lookup's state.
 * Returns 1 for a deny, which decides at once.
 */
static __always_inline int fold(struct policy_value *v, __u8 level, __u8 *best, __u8 *audit)
{
	if (!v)
		return 0;
	if (v->verdict == VERDICT_DENY)
		return 1;
	if (v->verdict == VERDICT_AUDIT && level < 3)
		*audit = 1;
	if (!*best)
		*best = v->verdict;
	return 0;
}

static __always_inline struct policy_value *range_lookup(__u32 active, struct policy_range_key *k)
{
	return active ? bpf_map_lookup_elem(&policy_ranges_1, k)
		      : bpf_map_lookup_elem(&policy_ranges_0, k);
}

/*
 * The shared lookup order (common/policy-map.ts lookupPolicy): a deny at any
 * level wins; then an audit entry below the any-any level; otherwise the most
 * specific entry: exact (single port, then the port ranges holding the port),
 * any-port, any-identity (single port, then ranges), any-any. The range trie
 * holds one merged verdict per port (deny > audit > allow over the ranges
 * covering it), which is all the rules above need of a level's ranges.
 * Returns the verdict or 0 when no entry matches.
 */
static __always_inline __u8 policy_lookup(void *pmap, __u32 active, __u32 slot, __u32 peer,
					  __u8 dir, __u8 proto, __u16 port)
{
	struct policy_key keys[6] = {
		{ .identity = peer, .direction = dir, .protocol = proto, .port_low = port, .port_high = port },
		{ .identity = peer, .direction = dir, .protocol = proto },
		{ .identity = peer, .direction = dir },
		{ .identity = 0, .direction = dir, .protocol = proto, .port_low = port, .port_high = port },
		{ .identity = 0, .direction = dir, .protocol = proto },
		{ .identity = 0, .direction = dir },
	};
	struct policy_range_key rk = {
		.prefixlen = POLICY_RANGE_FIXED_BITS + 16,
		.slot = slot,
		.identity = peer,
		.direction = dir,
		.protocol = proto,
		.port = bpf_htons(port),
	};
	__u8 best = 0, audit = 0;

	/* Exact level. A packet without ports (port 0) matches no single-port entry. */
	if (port && fold(bpf_map_lookup_elem(pmap, &keys[0]), 0, &best, &audit))
		return VERDICT_DENY;
	if (fold(range_lookup(active, &rk), 0, &best, &audit))
		return VERDICT_DENY;
	/* Any-port level: the protocol, then any protocol. */
	if (fold(bpf_map_lookup_elem(pmap, &keys[1]), 1, &best, &audit))
		return VERDICT_DENY;
	if (fold(bpf_map_lookup_elem(pmap, &keys[2]), 1, &best, &audit))
		return VERDICT_DENY;
	/* Any-identity level. */
	if (port && fold(bpf_map_lookup_elem(pmap, &keys[3]), 2, &best, &audit))
		return VERDICT_DENY;
	rk.identity = 0;
	if (fold(range_lookup(active, &rk), 2, &best, &audit))
		return VERDICT_DENY;
	/* Any-any level. */
	if (fold(bpf_map_lookup_elem(pmap, &keys[4]), 3, &best, &audit))
		return VERDICT_DENY;
	if (fold(bpf_map_lookup_elem(pmap, &keys[5]), 3, &best, &audit))
		return VERDICT_DENY;
	if (audit)
		return VERDICT_AUDIT;
	return best;
}

static __always_inline void emit(struct packet *p, __u8 dir, __u8 verdict, __u8 reason,
				 __u32 src_id, __u32 dst_id, struct ep_ip_value *ep)
{
	__u32 zero = 0;
	struct config_value *cfg = bpf_map_lookup_elem(&config, &zero);
	struct event_bucket *b = bpf_map_lookup_elem(&event_buckets, &zero);
	struct flow_event *e;
	__u64 now = bpf_ktime_get_ns();

	if (!cfg || !b || cfg->events_per_sec == 0)
		return;
	/* Per-CPU token bucket: a flood of drops cannot flood the agent. */
	if (now > b->last_ns) {
		__u64 add = (now - b->last_ns) * cfg->events_per_sec / 1000000000ULL;
		if (add > 0) {
			b->tokens += add;
			if (b->tokens > cfg->events_burst)
				b->tokens = cfg->events_burst;
			b->last_ns = now;
		}
	}
	if (b->last_ns == 0) {
		b->tokens = cfg->events_burst;
		b->last_ns = now;
	}
	if (b->tokens == 0) {
		count(dir, REASON_EVENT_LIMITED, 0);
		return;
	}
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count(dir, REASON_EVENT_LIMITED, 0);
		return;
	}
	b->tokens -= 1;
	__builtin_memset(e, 0, sizeof(*e));
	e->ts_ns = now;
	e->src_identity = src_id;
	e->dst_identity = dst_id;
	e->ep_slot = ep ? ep->slot : 0xffffffff;
	e->ep_identity = ep ? ep->identity : 0;
	e->sport = p->sport;
	e->dport = p->dport;
	e->family = p->family;
	e->proto = p->proto;
	e->direction = dir;
	e->verdict = verdict;
	e->reason = reason;
	__builtin_memcpy(e->saddr, p->saddr, 16);
	__builtin_memcpy(e->daddr, p->daddr, 16);
	bpf_ringbuf_submit(e, 0);
}

static __always_inline void ct_key_of(struct ct_key *k, const __u8 *saddr, const __u8 *daddr,
				      __u16 sport, __u16 dport, struct packet *p, __u8 dir)
{
	__builtin_memcpy(k->saddr, saddr, 16);
	__builtin_memcpy(k->daddr, daddr, 16);
	k->sport = sport;
	k->dport = dport;
	k->proto = p->proto;
	k->family = p->family;
	k->direction = dir;
	k->pad = 0;
}

/*
 * Judges one packet for the local endpoint at `local` (its source on egress,
 * its destination on ingress) talking to `remote`.
 */
static __always_inline int judge(struct __sk_buff *skb, __u8 dir)
{
	struct packet p = {};
	struct ct_key fwd = {}, rev = {};
	struct ct_value *ct;
	struct ep_ip_value *ep;
	struct config_value *cfg;
	__u32 zero = 0, revision, active, peer, local_id, src_id, dst_id;
	const __u8 *local, *remote;
	__u8 verdict, reason, enforced, other = dir == DIR_EGRESS ? DIR_INGRESS : DIR_EGRESS;
	void *outer, *pmap;
	__u64 now;

	if (parse(skb, &p) < 0) {
		count(dir, REASON_NOT_IP, skb->len);
		return TC_ACT_OK;
	}
	local = dir == DIR_EGRESS ? p.saddr : p.daddr;
	remote = dir == DIR_EGRESS ? p.daddr : p.saddr;

	/* A reply of a flow the other direction admitted passes: that flow's key is this packet's, reversed. */
	ct_key_of(&rev, p.daddr, p.saddr, p.dport, p.sport, &p, other);
	ct = bpf_map_lookup_elem(&conntrack, &rev);
	if (ct) {
		ct->last_ns = bpf_ktime_get_ns();
		count(dir, REASON_CT_REPLY, skb->len);
		return TC_ACT_OK;
	}

	/*
	 * An ICMP error about a packet of a tracked flow is related to it and passes:
	 * about a forward packet (the flow was admitted by the other direction's
	 * policy, as for a reply) or about a reply (admitted by this direction's).
	 */
	if (p.proto == IPPROTO_ICMP || p.proto == IPPROTO_ICMPV6) {
		struct packet in = {};
		if (parse_icmp_error(skb, &p, &in) == 0) {
			ct_key_of(&rev, in.saddr, in.daddr, in.sport, in.dport, &in, other);
			ct = bpf_map_lookup_elem(&conntrack, &rev);
			if (!ct) {
				ct_key_of(&rev, in.daddr, in.saddr, in.dport, in.sport, &in, dir);
				ct = bpf_map_lookup_elem(&conntrack, &rev);
			}
			if (ct) {
				count(dir, REASON_CT_RELATED, skb->len);
				return TC_ACT_OK;
			}
		}
	}

	/* Read once: the copy to judge with and the revision a verdict is remembered under. */
	cfg = bpf_map_lookup_elem(&config, &zero);
	revision = cfg ? *(volatile __u32 *)&cfg->active : 0;
	active = revision & 1;

	/*
	 * Forward packets of established flows are judged again when the
	 * revision changed since their verdict: a revoked allow cuts them. Under
	 * the same revision the remembered verdict stands (same maps, same
	 * answer) and the policy lookups are skipped.
	 */
	ct_key_of(&fwd, p.saddr, p.daddr, p.sport, p.dport, &p, dir);
	ct = bpf_map_lookup_elem(&conntrack, &fwd);
	if (ct && ct->revision == revision && ct->reason) {
		ct->last_ns = bpf_ktime_get_ns();
		ct->packets += 1;
		count(dir, ct->reason, skb->len);
		return TC_ACT_OK;
	}

	ep = lookup_endpoint(active, &p, local);
	if (!ep) {
		count(dir, REASON_NOT_ENDPOINT, skb->len);
		return TC_ACT_OK;
	}
	peer = lookup_identity(active, &p, remote);
	local_id = ep->identity;
	enforced = dir == DIR_EGRESS ? ep->egress_enforced : ep->ingress_enforced;
	outer = active ? (void *)&policy_1 : (void *)&policy_0;
	pmap = bpf_map_lookup_elem(outer, &ep->slot);
	verdict = pmap ? policy_lookup(pmap, active, ep->slot, peer, dir, p.proto, p.dport) : 0;
	if (verdict == VERDICT_DENY)
		reason = REASON_POLICY_DENY;
	else if (verdict == VERDICT_AUDIT)
		reason = REASON_AUDIT;
	else if (verdict == VERDICT_ALLOW)
		reason = REASON_POLICY_ALLOW;
	else if (enforced) {
		verdict = VERDICT_DENY;
		reason = REASON_DEFAULT_DENY;
	} else {
		verdict = VERDICT_ALLOW;
		reason = REASON_NOT_ENFORCED;
	}

	src_id = dir == DIR_EGRESS ? local_id : peer;
	dst_id = dir == DIR_EGRESS ? peer : local_id;
	if (verdict == VERDICT_DENY) {
		if (ct)
			bpf_map_delete_elem(&conntrack, &fwd);
		count(dir, reason, skb->len);
		emit(&p, dir, verdict, reason, src_id, dst_id, ep);
		return TC_ACT_SHOT;
	}
	now = bpf_ktime_get_ns();
	if (ct) {
		ct->last_ns = now;
		ct->packets += 1;
		ct->revision = revision;
		ct->verdict = verdict;
		ct->reason = reason;
	} else {
		struct ct_value v = { .created_ns = now, .last_ns = now, .packets = 1,
				      .revision = revision, .verdict = verdict, .reason = reason };
		bpf_map_update_elem(&conntrack, &fwd, &v, BPF_ANY);
		emit(&p, dir, verdict, reason, src_id, dst_id, ep);
	}
	count(dir, reason, skb->len);
	return TC_ACT_OK;
}

SEC("tc")
int from_endpoint(struct __sk_buff *skb)
{
	return judge(skb, DIR_EGRESS);
}

SEC("tc")
int to_endpoint(struct __sk_buff *skb)
{
	return judge(skb, DIR_INGRESS);
}

/*
 * In-kernel digest of one endpoint's policy map, for the agent's read-back of
 * a large write: policy_digest, a syscall program run on demand
 * (BPF_PROG_TEST_RUN, never attached; preemptible), walks the policy map of
 * the slot and copy its context names (bpf_for_each_map_elem), hashes each
 * entry as the agent's digest does (MurmurHash3 x86_32, two lanes, from the
 * prefix state in the context) and returns the sum and count in the context.
 * No entry is copied to user space. Returns 0, or POLICY_DIGEST_NO_MAP.
 */
static __always_inline __u32 rotl32(__u32 x, int r)
{
	return (x << r) | (x >> (32 - r));
}

static __always_inline __u32 murmur_k(__u32 k)
{
	k *= 0xcc9e2d51;
	k = rotl32(k, 15);
	return k * 0x1b873593;
}

static __always_inline __u32 murmur_mix(__u32 h, __u32 k)
{
	h ^= murmur_k(k);
	h = rotl32(h, 13);
	return h * 5 + 0xe6546b64;
}

static __always_inline __u32 murmur_final(__u32 h)
{
	h ^= h >> 16;
	h *= 0x85ebca6b;
	h ^= h >> 13;
	h *= 0xc2b2ae35;
	return h ^ (h >> 16);
}

/* bpf_for_each_map_elem callback: one entry into the running state (on the stack). */
static long digest_entry(void *map, struct policy_key *k, struct policy_value *v,
			 struct policy_digest_ctx *s)
{
	__u32 a = s->prefix_hi;
	__u32 b = s->prefix_lo;
	__u32 mid = k->direction | ((__u32)k->protocol << 8);

	if (s->pending == POLICY_DIGEST_NO_PENDING) {
		/* UTF-16 units: identity (2), direction|protocol, port_low, port_high, verdict */
		__u32 w0 = k->identity;
		__u32 w1 = mid | ((__u32)k->port_low << 16);
		__u32 w2 = k->port_high | ((__u32)v->verdict << 16);

		a = murmur_mix(murmur_mix(murmur_mix(a, w0), w1), w2);
		b = murmur_mix(murmur_mix(murmur_mix(b, w0), w1), w2);
	} else {
		/* the prefix's last unit pairs with the identity's low half; the verdict is the tail */
		__u32 w0 = s->pending | (k->identity << 16);
		__u32 w1 = (k->identity >> 16) | (mid << 16);
		__u32 w2 = k->port_low | ((__u32)k->port_high << 16);
		__u32 tail = murmur_k(v->verdict);

		a = murmur_mix(murmur_mix(murmur_mix(a, w0), w1), w2) ^ tail;
		b = murmur_mix(murmur_mix(murmur_mix(b, w0), w1), w2) ^ tail;
	}
	a = murmur_final(a ^ s->bytes);
	b = murmur_final(b ^ s->bytes);
	s->sum += ((__u64)a << 32) | b;
	s->count++;
	return 0;
}

SEC("syscall")
int policy_digest(struct policy_digest_ctx *ctx)
{
	struct policy_digest_ctx s = *ctx;
	__u32 slot = s.slot;
	void *inner;

	s.sum = 0;
	s.count = 0;
	if (s.copy) {
		inner = bpf_map_lookup_elem(&policy_1, &slot);
		if (!inner)
			return POLICY_DIGEST_NO_MAP;
		bpf_for_each_map_elem(inner, digest_entry, &s, 0);
	} else {
		inner = bpf_map_lookup_elem(&policy_0, &slot);
		if (!inner)
			return POLICY_DIGEST_NO_MAP;
		bpf_for_each_map_elem(inner, digest_entry, &s, 0);
	}
	ctx->sum = s.sum;
	ctx->count = s.count;
	return 0;
}

char _license[] SEC("license") = "Dual BSD/GPL";
