/* UDP flow map shared by bpf/udp_flow.bpf.c and userspace/udp_flow/: the one place its layout
 * is declared. Fixed-width kernel types only, sizes checked on both sides.
 *
 * A routed flow (a QUIC connection once its SNI has picked a backend) is two entries, one per
 * direction, each keyed by the addresses a datagram of that direction arrives with:
 *   client   -> listener  rewritten to  upstream -> backend
 *   backend  -> upstream  rewritten to  listener -> client
 * which is what snigated's userspace forwarding does with its listener socket and the flow's
 * upstream socket. Each entry counts what it moved, so the flow's figures are the two
 * entries' counters (dir "in" is the client's entry, "out" the backend's).
 *
 * The map is not pinned: it lives as long as the program, which a clean exit detaches; a
 * start after a crash replaces the program that was left attached, and with it its flows. */
#ifndef SNIGATE_BPF_UDP_FLOW_ABI_H
#define SNIGATE_BPF_UDP_FLOW_ABI_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

/* Flows the map holds (two entries each). Entries are allocated as flows are added
 * (BPF_F_NO_PREALLOC), so capacity costs nothing until used. */
#define SNIGATE_UDP_FLOW_MAX_FLOWS 65536

#define SNIGATE_UDP_FLOW_V4 4
#define SNIGATE_UDP_FLOW_V6 6

/* A datagram's addresses as it arrives. IPv4 addresses take the first 4 bytes, the rest are
 * zero. Network byte order throughout. */
struct snigate_udp_flow_key {
	__u8 saddr[16];
	__u8 daddr[16];
	__be16 sport;
	__be16 dport;
	__u8 family; /* SNIGATE_UDP_FLOW_V4 / _V6 */
	__u8 pad[3]; /* zero */
};

/* The destination is a local address: deliver it up the stack. */
#define SNIGATE_UDP_FLOW_LOCAL 1u

/* One direction: the addresses to write, where the datagram goes, what moved. */
struct snigate_udp_flow_value {
	__u8 saddr[16];
	__u8 daddr[16];
	__be16 sport;
	__be16 dport;
	/* Interface the new destination is routed through (userspace asks the routing table at
	 * add time); a local destination's is the loopback. */
	__u32 oif;
	__u32 flags; /* SNIGATE_UDP_FLOW_* */
	__u32 pad;   /* zero */
	/* Program: datagrams and UDP payload bytes moved, atomic adds from every CPU. */
	__u64 packets;
	__u64 bytes;
	/* Program: CLOCK_BOOTTIME (bpf_ktime_get_boot_ns) of the last datagram; 0 = none yet. */
	__u64 last_seen_ns;
};

#ifdef __cplusplus
static_assert(sizeof(struct snigate_udp_flow_key) == 40, "udp flow key layout");
static_assert(__builtin_offsetof(struct snigate_udp_flow_key, family) == 36, "udp flow key layout");
static_assert(sizeof(struct snigate_udp_flow_value) == 72, "udp flow value layout");
static_assert(__builtin_offsetof(struct snigate_udp_flow_value, oif) == 36, "udp flow value layout");
static_assert(__builtin_offsetof(struct snigate_udp_flow_value, packets) == 48, "udp flow value layout");
#else
_Static_assert(sizeof(struct snigate_udp_flow_key) == 40, "udp flow key layout");
_Static_assert(__builtin_offsetof(struct snigate_udp_flow_key, family) == 36, "udp flow key layout");
_Static_assert(sizeof(struct snigate_udp_flow_value) == 72, "udp flow value layout");
_Static_assert(__builtin_offsetof(struct snigate_udp_flow_value, oif) == 36, "udp flow value layout");
_Static_assert(__builtin_offsetof(struct snigate_udp_flow_value, packets) == 48, "udp flow value layout");
#endif

#endif /* SNIGATE_BPF_UDP_FLOW_ABI_H */
