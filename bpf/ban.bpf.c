// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Ban enforcement: drops every packet whose source address is banned in the pinned LPM
 * tries, before the stack sees it. The same program body runs as XDP and, where XDP cannot
 * attach, as TC ingress. Layouts: include/snigate/bpf/ban_abi.h; the rule:
 * include/snigate/bpf/ban_rule.h. It reads only UAPI contexts (xdp_md, __sk_buff, packet
 * headers), so it includes UAPI headers, not vmlinux.h: nothing here depends on the running
 * kernel's internal layouts. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/pkt_cls.h>

#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "snigate/bpf/ban_abi.h"
#include "snigate/bpf/ban_rule.h"

/* An 802.1Q/802.1ad tag after the MAC addresses. The kernel's struct vlan_hdr lives in
 * <linux/if_vlan.h>, which is not UAPI. */
struct vlan_tag {
	__be16 tci;
	__be16 encapsulated_proto;
};

/* Two tags: 802.1ad QinQ. A frame with more passes unfiltered. */
#define MAX_VLAN_TAGS 2

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__type(key, struct snigate_ban_key_v4);
	__type(value, struct snigate_ban_value);
	__uint(max_entries, SNIGATE_BAN_MAX_V4);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sg_ban_v4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__type(key, struct snigate_ban_key_v6);
	__type(value, struct snigate_ban_value);
	__uint(max_entries, SNIGATE_BAN_MAX_V6);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sg_ban_v6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct snigate_ban_stats);
	__uint(max_entries, 1);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sg_ban_stats SEC(".maps");

/* 1 when a ban in `map` holds for the address in `key` (a snigate_ban_key_v4/_v6, whose
 * prefixlen comes first); counts the drop on that ban. */
static __always_inline int ban_lookup(void *map, void *key, struct snigate_ban_stats *stats)
{
	__u32 *prefixlen = key;
	__u64 now = bpf_ktime_get_boot_ns();

	for (__u32 attempt = 0; attempt <= SNIGATE_BAN_EXPIRED_RETRIES; attempt++) {
		struct snigate_ban_value *v = bpf_map_lookup_elem(map, key);
		enum snigate_ban_next next;

		if (!v)
			return 0;
		next = snigate_ban_step(v->expires_ns, now, v->prefixlen, attempt, prefixlen);
		if (next == SNIGATE_BAN_HIT) {
			__sync_fetch_and_add(&v->drops, 1);
			return 1;
		}
		if (stats)
			stats->expired_hits++;
		if (next == SNIGATE_BAN_MISS)
			return 0;
	}
	return 0;
}

/* 1 when the packet in [data, data_end) comes from a banned source. */
static __always_inline int source_banned(void *data, void *data_end)
{
	__u32 zero = 0;
	struct snigate_ban_stats *stats = bpf_map_lookup_elem(&sg_ban_stats, &zero);
	struct ethhdr *eth = data;
	void *cursor = eth + 1;
	__u16 proto;

	if (stats)
		stats->packets++;
	if (cursor > data_end)
		return 0;
	proto = eth->h_proto;
#pragma unroll
	for (int i = 0; i < MAX_VLAN_TAGS; i++) {
		struct vlan_tag *vlan = cursor;
		if (proto != bpf_htons(ETH_P_8021Q) && proto != bpf_htons(ETH_P_8021AD))
			break;
		if ((void *)(vlan + 1) > data_end)
			return 0;
		proto = vlan->encapsulated_proto;
		cursor = vlan + 1;
	}

	if (proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = cursor;
		struct snigate_ban_key_v4 key = { .prefixlen = 32 };
		if ((void *)(ip + 1) > data_end)
			return 0;
		__builtin_memcpy(key.addr, &ip->saddr, sizeof(key.addr));
		if (!ban_lookup(&sg_ban_v4, &key, stats))
			return 0;
		if (stats)
			stats->dropped_v4++;
		return 1;
	}
	if (proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = cursor;
		struct snigate_ban_key_v6 key = { .prefixlen = 128 };
		if ((void *)(ip6 + 1) > data_end)
			return 0;
		__builtin_memcpy(key.addr, &ip6->saddr, sizeof(key.addr));
		if (!ban_lookup(&sg_ban_v6, &key, stats))
			return 0;
		if (stats)
			stats->dropped_v6++;
		return 1;
	}
	return 0;
}

SEC("xdp")
int snigate_ban_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	return source_banned(data, data_end) ? XDP_DROP : XDP_PASS;
}

/* A pass is TC_ACT_UNSPEC, not TC_ACT_OK: OK would end the classification, and filters of
 * a lower priority on the hook (the UDP flow forwarder, bpf/udp_flow.bpf.c) would never see
 * the packet. With no filter after this one the stack takes it as with OK. */
SEC("tc")
int snigate_ban_tc(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	return source_banned(data, data_end) ? TC_ACT_SHOT : TC_ACT_UNSPEC;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
