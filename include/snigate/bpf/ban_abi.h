/* Ban maps shared by bpf/ban.bpf.c and userspace/bans/: the one place their layouts and pin
 * names are declared (after xdp-tools' common_kern_user.h). Fixed-width kernel types only,
 * every byte accounted for, sizes checked by static_assert on both sides.
 *
 * Changing any layout below means a new SNIGATE_BAN_ABI_VERSION and so a new pin directory:
 * libbpf refuses to reuse a pinned map whose key/value size, type or flags differ, and a
 * running old program keeps its maps in the old directory until it is detached. */
#ifndef SNIGATE_BPF_BAN_ABI_H
#define SNIGATE_BPF_BAN_ABI_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define SNIGATE_BAN_ABI_VERSION 1
#define SNIGATE_BAN_PIN_DIR "/sys/fs/bpf/snigate/v1"

/* Map names, which are also the pin file names under the pin directory
 * (LIBBPF_PIN_BY_NAME). BPF object names hold at most 15 characters. */
#define SNIGATE_BAN_MAP_V4 "sg_ban_v4"
#define SNIGATE_BAN_MAP_V6 "sg_ban_v6"
#define SNIGATE_BAN_MAP_STATS "sg_ban_stats"

/* LPM trie capacity per family. LPM tries allocate per entry (BPF_F_NO_PREALLOC is
 * mandatory), so an unused capacity costs no memory. */
#define SNIGATE_BAN_MAX_V4 262144
#define SNIGATE_BAN_MAX_V6 262144

/* An expired entry hides shorter, still valid prefixes under it (the trie returns only the
 * longest match), so the program retries with the expired entry's length minus one, at
 * most this many times, until the sweeper has removed the expired entry. */
#define SNIGATE_BAN_EXPIRED_RETRIES 8

/* LPM trie keys: the kernel requires a __u32 prefix length followed by the data, in network
 * byte order. Both layouts are naturally aligned; there is no implicit padding. */
struct snigate_ban_key_v4 {
	__u32 prefixlen; /* 0..32 */
	__u8 addr[4];
};

struct snigate_ban_key_v6 {
	__u32 prefixlen; /* 0..128 */
	__u8 addr[16];
};

/* One ban. Shared by both tries. */
struct snigate_ban_value {
	/* CLOCK_BOOTTIME in ns (bpf_ktime_get_boot_ns()) after which the ban stops matching;
	 * 0 = permanent. Boot time keeps counting across suspend and cannot be set, so a
	 * clock change cannot lift or extend a ban. */
	__u64 expires_ns;
	/* Packets dropped under this ban; incremented with an atomic add from every CPU. */
	__u64 drops;
	/* The key's prefix length again: lets the program retry shorter prefixes past an
	 * expired entry (see SNIGATE_BAN_EXPIRED_RETRIES). */
	__u32 prefixlen;
	__u32 pad; /* zero */
};

/* Per-CPU totals in the single-slot array SNIGATE_BAN_MAP_STATS; userspace sums the CPUs. */
struct snigate_ban_stats {
	__u64 packets;      /* packets the program inspected */
	__u64 dropped_v4;   /* dropped by an IPv4 ban */
	__u64 dropped_v6;   /* dropped by an IPv6 ban */
	__u64 expired_hits; /* longest match was an expired ban not yet swept */
};

#ifdef __cplusplus
static_assert(sizeof(struct snigate_ban_key_v4) == 8, "ban key v4 layout");
static_assert(sizeof(struct snigate_ban_key_v6) == 20, "ban key v6 layout");
static_assert(sizeof(struct snigate_ban_value) == 24, "ban value layout");
static_assert(__builtin_offsetof(struct snigate_ban_value, drops) == 8, "ban value layout");
static_assert(__builtin_offsetof(struct snigate_ban_value, prefixlen) == 16, "ban value layout");
static_assert(sizeof(struct snigate_ban_stats) == 32, "ban stats layout");
#else
_Static_assert(sizeof(struct snigate_ban_key_v4) == 8, "ban key v4 layout");
_Static_assert(sizeof(struct snigate_ban_key_v6) == 20, "ban key v6 layout");
_Static_assert(sizeof(struct snigate_ban_value) == 24, "ban value layout");
_Static_assert(__builtin_offsetof(struct snigate_ban_value, drops) == 8, "ban value layout");
_Static_assert(sizeof(struct snigate_ban_stats) == 32, "ban stats layout");
#endif

#endif /* SNIGATE_BPF_BAN_ABI_H */
