/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Key and value layouts shared by the tc programs and the node agent.
 * nodeagent/datapath/ebpf/layout.ts declares the same structs; a test reads
 * this object's BTF and checks every size and offset. Bump
 * MESHPLANE_LAYOUT_VERSION (here and in layout.ts) whenever a struct, a map
 * type or a map's meaning changes: an agent meeting pins of another version
 * replaces them.
 */
#ifndef MESHPLANE_H
#define MESHPLANE_H

#include <linux/types.h>

#define MESHPLANE_LAYOUT_VERSION 4

#define FAMILY_IPV4 4
#define FAMILY_IPV6 6

#define DIR_INGRESS 1 /* proto Direction.DIRECTION_INGRESS */
#define DIR_EGRESS 2  /* proto Direction.DIRECTION_EGRESS */

#define VERDICT_ALLOW 1 /* proto Verdict.VERDICT_ALLOW */
#define VERDICT_DENY 2
#define VERDICT_AUDIT 3

/* Why a packet was forwarded or dropped (counters and events). */
enum meshplane_reason {
	REASON_POLICY_ALLOW = 1,  /* forwarded: a policy entry allows it */
	REASON_CT_REPLY = 2,      /* forwarded: reply of a flow allowed the other way */
	REASON_NOT_ENFORCED = 3,  /* forwarded: no entry, direction not enforced */
	REASON_AUDIT = 4,         /* forwarded: policy would deny (audit) */
	REASON_POLICY_DENY = 5,   /* dropped: a deny entry matches */
	REASON_DEFAULT_DENY = 6,  /* dropped: enforced and no entry allows */
	REASON_NOT_ENDPOINT = 7,  /* forwarded: the local address is no endpoint */
	REASON_NOT_IP = 8,        /* forwarded: not IPv4/IPv6 (ARP, ...) */
	REASON_CT_RELATED = 9,    /* forwarded: ICMP error about a packet of a tracked flow */
	REASON_EVENT_LIMITED = 15, /* an event was not sent: rate limit */
};
#define REASON_MAX 16
/* counters index: direction * REASON_MAX + reason */
#define COUNTER_SLOTS (3 * REASON_MAX)

#define EP_META_MAX 2036
#define SVC_NAME_MAX 128
#define SVC_DATA_MAX 4092

/* LPM key: prefixlen counts family+pad (32 bits) plus the address bits. */
struct ipcache_key {
	__u32 prefixlen;
	__u8 family;
	__u8 pad[3];
	__u8 addr[16];
};

struct ipcache_value {
	__u32 identity;
	__u32 flags;
};

/* A local endpoint's address -> what the programs need to judge its packets. */
struct ep_ip_key {
	__u8 family;
	__u8 pad[3];
	__u8 addr[16];
};

struct ep_ip_value {
	__u32 slot; /* index into endpoint_info and the policy outer maps */
	__u32 identity;
	__u8 ingress_enforced;
	__u8 egress_enforced;
	__u8 pad[2];
};

/* The endpoint record (array indexed by slot); meta is JSON written by the agent. */
struct ep_info {
	__u32 used;
	__u32 identity;
	__u8 ingress_enforced;
	__u8 egress_enforced;
	__u16 meta_len;
	__u8 meta[EP_META_MAX];
	__u8 pad[4];
};

/* One policy entry of one endpoint: the proto PolicyEntry minus the verdict. */
struct policy_key {
	__u32 identity; /* 0 = any */
	__u8 direction;
	__u8 protocol; /* 0 = any */
	__u16 port_low; /* 0..0 = any */
	__u16 port_high;
	__u16 pad;
};

struct policy_value {
	__u8 verdict;
	__u8 pad[3];
};

/*
 * The in-kernel digest of one endpoint's policy map: the context of program
 * policy_digest (a syscall program, run on demand with BPF_PROG_TEST_RUN;
 * the kernel copies the context back). The agent fills slot, copy and the
 * digest prefix `policy|<endpoint>|` hashed (MurmurHash3 x86_32 lanes, see
 * common/digest.ts PolicyEntryHasher); the program walks that copy's policy
 * map of the slot and fills sum and count: the digest the agent computes
 * from the same entries.
 */
#define POLICY_DIGEST_NO_PENDING 0xffffffffU
#define POLICY_DIGEST_NO_MAP 1 /* policy_digest's return: the slot has no policy map */

struct policy_digest_ctx {
	__u32 slot;
	__u32 copy;       /* 0 or 1: policy_0 or policy_1 */
	__u32 prefix_hi;  /* lane "hi" after the prefix's whole 4-byte blocks */
	__u32 prefix_lo;  /* lane "lo" after the same blocks */
	__u32 pending;    /* the prefix's last UTF-16 unit if its length is odd, else POLICY_DIGEST_NO_PENDING */
	__u32 bytes;      /* an entry's length in bytes (its UTF-16 form) */
	__u64 sum;        /* out: sum of entry hashes (hi << 32 | lo) mod 2^64 */
	__u64 count;      /* out: entries hashed */
};

/*
 * The port ranges of every endpoint's policy map, as an LPM trie the agent
 * derives from the range entries (port_low < port_high): per (endpoint,
 * direction, protocol, identity) the ranges are cut into disjoint intervals,
 * each with the merged verdict (deny > audit > allow) of the ranges covering
 * it, and each interval is stored as aligned port prefixes. prefixlen counts
 * the fixed fields (POLICY_RANGE_FIXED_BITS) plus the port bits that matter;
 * the port is big-endian so that its high bits come first. The value is a
 * struct policy_value.
 */
struct policy_range_key {
	__u32 prefixlen;
	__u32 slot; /* the endpoint's slot */
	__u32 identity; /* peer identity; 0 = any */
	__u8 direction;
	__u8 protocol;
	__u16 port; /* network byte order */
};
#define POLICY_RANGE_FIXED_BITS 80 /* slot, identity, direction, protocol */

struct svc_key {
	__u8 name[SVC_NAME_MAX]; /* namespace/name, NUL padded */
};

struct svc_value {
	__u32 len;
	__u8 data[SVC_DATA_MAX]; /* JSON written by the agent */
};

/*
 * config[0]. `active` counts revision switches: its low bit is the copy of the
 * revisioned maps the programs read, and every switch changes the whole value
 * (conntrack entries remember the value their verdict was judged under).
 */
struct config_value {
	__u32 active;
	__u32 layout_version;
	__u32 events_per_sec; /* per CPU; 0 = no events */
	__u32 events_burst;
};

struct ct_key {
	__u8 saddr[16];
	__u8 daddr[16];
	__u16 sport;
	__u16 dport;
	__u8 proto;
	__u8 family;
	__u8 direction; /* the direction whose policy admitted the flow */
	__u8 pad;
};

struct ct_value {
	__u64 created_ns;
	__u64 last_ns;
	__u64 packets;
	__u32 revision; /* config.active when the verdict below was judged */
	__u8 verdict;   /* VERDICT_ALLOW or VERDICT_AUDIT */
	__u8 reason;    /* counted for forward packets judged by this entry */
	__u8 pad[2];
};

struct counter_value {
	__u64 packets;
	__u64 bytes;
};

struct event_bucket {
	__u64 tokens;
	__u64 last_ns;
};

/* A flow verdict or drop, sent on the ring buffer. */
struct flow_event {
	__u64 ts_ns;
	__u32 src_identity;
	__u32 dst_identity;
	__u32 ep_slot;
	__u32 ep_identity;
	__u16 sport;
	__u16 dport;
	__u8 family;
	__u8 proto;
	__u8 direction;
	__u8 verdict; /* VERDICT_* actually applied (audit = forwarded) */
	__u8 reason;
	__u8 pad[7];
	__u8 saddr[16];
	__u8 daddr[16];
};

#endif
