// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Kernel path for routed UDP flows (QUIC): a datagram whose addresses match a flow entry is
 * rewritten as snigated's userspace forwarding would send it (upstream -> backend, or
 * listener -> client), its IP and UDP checksums updated incrementally, and sent on without
 * reaching a socket of the edge. Everything else passes untouched. Layout and directions:
 * include/snigate/bpf/udp_flow_abi.h.
 *
 * Hook: TC ingress (clsact), not XDP. The edge talks to local backends over loopback, and
 * XDP on lo sees neither locally sent datagrams in a usable form nor can it hand a rewritten
 * one to a local socket; at TC the skb keeps the local route loopback traffic carries, so a
 * rewritten datagram for a local address is simply passed up. TC also has the checksum
 * helpers that respect CHECKSUM_PARTIAL (what local senders and veth hand over) and
 * bpf_redirect_neigh.
 *
 * Sending on: bpf_redirect_neigh to the interface userspace found in the routing table when
 * the flow was added. Not bpf_fib_lookup + bpf_redirect: the fib helper answers only when
 * forwarding is enabled on the ingress interface (net.ipv4.conf.*.forwarding, which would
 * make the edge a router for everything), and it fails while the next hop's neighbour entry
 * is missing (the client's, before the edge ever sent it a datagram); redirect_neigh routes
 * as a local sender does and resolves the neighbour itself (kernel 5.10).
 *
 * Runs after the ban filter when bans are enforced at TC (it has priority 1, this one 2) and
 * always after XDP: a banned source's datagrams never get here. UDP/TCP headers only, read
 * with bpf_skb_load_bytes, so no direct packet access and no dependence on skb linearity. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/pkt_cls.h>
#include <linux/udp.h>

#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "snigate/bpf/udp_flow_abi.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* IPv4 fragment bits of frag_off (linux/ip.h has them only in the kernel's own header). */
#define IP_MF_OFFSET 0x3fff

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct snigate_udp_flow_key);
	__type(value, struct snigate_udp_flow_value);
	__uint(max_entries, 2 * SNIGATE_UDP_FLOW_MAX_FLOWS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} sg_udp_flows SEC(".maps");

/* Not ours: TC_ACT_UNSPEC lets a later filter on the hook see the packet too (TC_ACT_OK
 * would end the classification); with none, the stack takes it as usual. */
#define PASS TC_ACT_UNSPEC

/* Counts what the skb carries and sends it where `v` says. A sender's UDP GSO batch (QUIC
 * servers send with UDP_SEGMENT) may arrive as one skb behind one UDP header, split into
 * gso_segs datagrams only at the receiving socket or the egress device: it counts as those
 * datagrams, its payload as everything after that header. */
static __always_inline int deliver(struct __sk_buff *skb, struct snigate_udp_flow_value *v,
				   __u32 l4, __u32 udp_payload)
{
	__u32 segs = skb->gso_segs;

	if (segs > 1) {
		__sync_fetch_and_add(&v->packets, segs);
		__sync_fetch_and_add(&v->bytes, skb->len - l4 - sizeof(struct udphdr));
	} else {
		__sync_fetch_and_add(&v->packets, 1);
		__sync_fetch_and_add(&v->bytes, udp_payload);
	}
	v->last_seen_ns = bpf_ktime_get_boot_ns();
	/* Arrived on the loopback for a local address: the skb still carries the local route
	 * loopback traffic keeps (loopback_xmit), so the stack delivers it by its new header. */
	if ((v->flags & SNIGATE_UDP_FLOW_LOCAL) && skb->ingress_ifindex == v->oif)
		return TC_ACT_OK;
	return bpf_redirect_neigh(v->oif, NULL, 0, 0);
}

/* The UDP checksum after the address change (pseudo header) and the port change (payload);
 * done as two updates because with CHECKSUM_PARTIAL only the former belongs in the field.
 * BPF_F_MARK_MANGLED_0: an IPv4 datagram sent without a checksum (0) keeps none, and a
 * result of 0 is written as 0xffff (RFC 768). */
static __always_inline int rewrite_udp(struct __sk_buff *skb, __u32 l4, __s64 addr_diff,
				       struct snigate_udp_flow_key *k,
				       struct snigate_udp_flow_value *v)
{
	__be16 old_ports[2] = { k->sport, k->dport };
	__be16 new_ports[2] = { v->sport, v->dport };
	__s64 port_diff = bpf_csum_diff((__be32 *)old_ports, 4, (__be32 *)new_ports, 4, 0);
	__u32 check = l4 + __builtin_offsetof(struct udphdr, check);

	if (port_diff < 0 || bpf_skb_store_bytes(skb, l4, new_ports, 4, 0))
		return -1;
	if (bpf_l4_csum_replace(skb, check, 0, addr_diff, BPF_F_PSEUDO_HDR | BPF_F_MARK_MANGLED_0))
		return -1;
	return bpf_l4_csum_replace(skb, check, 0, port_diff, BPF_F_MARK_MANGLED_0) ? -1 : 0;
}

static __always_inline int flow_v4(struct __sk_buff *skb)
{
	const __u32 l3 = ETH_HLEN;
	struct snigate_udp_flow_key key = { .family = SNIGATE_UDP_FLOW_V4 };
	struct snigate_udp_flow_value *v;
	struct iphdr ip;
	struct udphdr udp;
	__u32 l4;

	if (bpf_skb_load_bytes(skb, l3, &ip, sizeof(ip)))
		return PASS;
	if (ip.protocol != IPPROTO_UDP || ip.ihl < 5 || (ip.frag_off & bpf_htons(IP_MF_OFFSET)))
		return PASS;
	l4 = l3 + ip.ihl * 4;
	if (bpf_skb_load_bytes(skb, l4, &udp, sizeof(udp)) || bpf_ntohs(udp.len) < sizeof(udp))
		return PASS;
	__builtin_memcpy(key.saddr, &ip.saddr, 4);
	__builtin_memcpy(key.daddr, &ip.daddr, 4);
	key.sport = udp.source;
	key.dport = udp.dest;
	v = bpf_map_lookup_elem(&sg_udp_flows, &key);
	if (!v)
		return PASS;

	__be32 old_addrs[2] = { ip.saddr, ip.daddr };
	__be32 new_addrs[2];
	__builtin_memcpy(new_addrs, v->saddr, 4);
	__builtin_memcpy(&new_addrs[1], v->daddr, 4);
	__s64 addr_diff = bpf_csum_diff(old_addrs, 8, new_addrs, 8, 0);
	if (addr_diff < 0 ||
	    bpf_skb_store_bytes(skb, l3 + __builtin_offsetof(struct iphdr, saddr), new_addrs, 8, 0) ||
	    bpf_l3_csum_replace(skb, l3 + __builtin_offsetof(struct iphdr, check), 0, addr_diff, 0) ||
	    rewrite_udp(skb, l4, addr_diff, &key, v))
		return TC_ACT_SHOT; /* half rewritten: never let it reach anyone */
	return deliver(skb, v, l4, bpf_ntohs(udp.len) - sizeof(udp));
}

static __always_inline int flow_v6(struct __sk_buff *skb)
{
	const __u32 l3 = ETH_HLEN;
	const __u32 l4 = l3 + sizeof(struct ipv6hdr);
	struct snigate_udp_flow_key key = { .family = SNIGATE_UDP_FLOW_V6 };
	struct snigate_udp_flow_value *v;
	struct ipv6hdr ip6;
	struct udphdr udp;

	/* A datagram behind extension headers passes to userspace: QUIC senders use none. */
	if (bpf_skb_load_bytes(skb, l3, &ip6, sizeof(ip6)) || ip6.nexthdr != IPPROTO_UDP)
		return PASS;
	if (bpf_skb_load_bytes(skb, l4, &udp, sizeof(udp)) || bpf_ntohs(udp.len) < sizeof(udp))
		return PASS;
	__builtin_memcpy(key.saddr, &ip6.saddr, 16);
	__builtin_memcpy(key.daddr, &ip6.daddr, 16);
	key.sport = udp.source;
	key.dport = udp.dest;
	v = bpf_map_lookup_elem(&sg_udp_flows, &key);
	if (!v)
		return PASS;

	__u8 new_addrs[32];
	__builtin_memcpy(new_addrs, v->saddr, 16);
	__builtin_memcpy(new_addrs + 16, v->daddr, 16);
	/* The key starts with saddr and daddr, adjacent as in the header: 32 bytes. */
	__s64 addr_diff = bpf_csum_diff((__be32 *)&key, 32, (__be32 *)new_addrs, 32, 0);
	if (addr_diff < 0 ||
	    bpf_skb_store_bytes(skb, l3 + __builtin_offsetof(struct ipv6hdr, saddr), new_addrs, 32, 0) ||
	    rewrite_udp(skb, l4, addr_diff, &key, v))
		return TC_ACT_SHOT;
	return deliver(skb, v, l4, bpf_ntohs(udp.len) - sizeof(udp));
}

SEC("tc")
int snigate_udp_flow(struct __sk_buff *skb)
{
	if (skb->protocol == bpf_htons(ETH_P_IP))
		return flow_v4(skb);
	if (skb->protocol == bpf_htons(ETH_P_IPV6))
		return flow_v6(skb);
	return PASS;
}
