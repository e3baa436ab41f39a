/* The ban rule, written once for the three places that apply it: bpf/ban.bpf.c (the packets),
 * userspace/bans/ban_map.cpp ban_in_force (the rule over the tries, for the daemon and its
 * fake) and userspace/bans/ban_index.cpp (the accept-time mirror). Plain C over scalars, so
 * the BPF program and C++ include the same text and the rules cannot drift.
 *
 * How a match is found differs and stays in each place: the program and ban_in_force ask an
 * LPM trie (the kernel's, or the fake's) for the longest prefix, the mirror walks its prefix
 * lengths longest first. Each hands every match, in that order, to snigate_ban_step. */
#ifndef SNIGATE_BPF_BAN_RULE_H
#define SNIGATE_BPF_BAN_RULE_H

#include "snigate/bpf/ban_abi.h"

/* A ban holds while it is permanent (0) or its CLOCK_BOOTTIME expiry is still ahead. */
static inline int snigate_ban_holds(__u64 expires_ns, __u64 now_ns)
{
	return expires_ns == 0 || expires_ns > now_ns;
}

enum snigate_ban_next {
	SNIGATE_BAN_HIT,   /* this ban drops the packet */
	SNIGATE_BAN_MISS,  /* nothing drops it */
	SNIGATE_BAN_RETRY, /* expired: look again at *next_prefixlen and shorter */
};

/* One step of the walk: the longest match is `prefixlen` bits long, expires at `expires_ns`,
 * and is the `attempt`th found (0 for the first). An expired entry hides the shorter bans
 * under it until the sweeper removes it, so the walk looks past it, at most
 * SNIGATE_BAN_EXPIRED_RETRIES times (the BPF verifier needs the bound; userspace keeps it so
 * that it refuses exactly whom the program drops). */
static inline enum snigate_ban_next snigate_ban_step(__u64 expires_ns, __u64 now_ns,
						     __u32 prefixlen, __u32 attempt,
						     __u32 *next_prefixlen)
{
	if (snigate_ban_holds(expires_ns, now_ns))
		return SNIGATE_BAN_HIT;
	if (prefixlen == 0 || attempt >= SNIGATE_BAN_EXPIRED_RETRIES)
		return SNIGATE_BAN_MISS;
	*next_prefixlen = prefixlen - 1;
	return SNIGATE_BAN_RETRY;
}

#endif /* SNIGATE_BPF_BAN_RULE_H */
