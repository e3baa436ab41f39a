// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Kernel-side relay: an sk_skb stream verdict that sends every skb of a relayed socket to
 * its peer's egress, counting bytes per direction, and asks to pause a direction when the
 * peer is not taking bytes fast enough; a TCP iterator that carries the pause out. Layouts
 * and the flow-control rule: include/snigate/bpf/relay_abi.h. Both run under the source
 * socket's lock, so each direction's program-owned fields have a single writer. */
#include "vmlinux.h"

#include <bpf/bpf_helpers.h>

#include "snigate/bpf/relay_abi.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Redirected bytes not yet in the peer's send queue above which a direction pauses; it
 * resumes below half. Userspace sets it through the mmapped .data, at load and on reload
 * ([daemon] sockmap_queue_limit). */
__u64 inflight_cap = SNIGATE_RELAY_QUEUE_LIMIT_DEFAULT;

/* Both sockets of every relayed connection, for the whole relay: the redirect target. No
 * program is attached to it. (Map names fit the kernel's 15 characters: tests look them up.) */
struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__type(key, __u64);
	__type(value, __u32);
	__uint(max_entries, 2 * SNIGATE_RELAY_MAX_CONNS);
} sg_relay_target SEC(".maps");

/* The sources whose direction runs in the kernel: the verdict is attached to this one. */
struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__type(key, __u64);
	__type(value, __u32);
	__uint(max_entries, 2 * SNIGATE_RELAY_MAX_CONNS);
} sg_relay_source SEC(".maps");

/* Wake-ups for userspace: a direction asked to pause (struct snigate_relay_wake). */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 * 1024);
} sg_relay_wake SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u64); /* SO_COOKIE */
	__type(value, struct snigate_relay_sock);
	__uint(max_entries, 2 * SNIGATE_RELAY_MAX_CONNS);
} sg_relay_index SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct snigate_relay_conn);
	__uint(max_entries, SNIGATE_RELAY_MAX_CONNS);
	__uint(map_flags, BPF_F_MMAPABLE);
} sg_relay_conns SEC(".maps");

/* Bytes sent our way that are not in the peer's send queue yet: what waits in the peer's
 * psock queue, the one place the kernel does not bound (socket buffers bound the rest).
 * Written to the peer so far = acked (bytes_acked) + in its send queue (write_seq - snd_una),
 * which is what userspace's peer_base counts too. Negative while userspace has written bytes
 * it has not counted yet; -1 when the peer is not in `targets` (removed at the end). */
static __always_inline __s64 inflight(struct snigate_relay_dir *d, __u64 peer_key)
{
	struct bpf_sock *peer = bpf_map_lookup_elem(&sg_relay_target, &peer_key);
	if (!peer)
		return -1;
	__s64 written = -1;
	struct tcp_sock *tp = bpf_skc_to_tcp_sock(peer);
	if (tp)
		written = tp->bytes_acked + (__u32)(tp->write_seq - tp->snd_una);
	bpf_sk_release(peer);
	if (written < 0)
		return -1;
	__s64 n = (__s64)(d->peer_base + d->redirected + d->user_bytes) - written;
	return n < 0 ? 0 : n;
}

/* sk_skb_adjust_room removes at most 0xfff bytes a call; 128 calls cut up to 512 KiB, more
 * than the longest repeated head seen (4 loopback segments of 64 KiB). */
#define TRIM_STEP 4095
#define TRIM_CALLS 128

/* The skb's TCP sequence, TCP_SKB_CB(skb)->seq. An sk_skb program's context is the kernel's
 * sk_buff itself and __sk_buff has no sequence field, so read the control block, located by
 * CO-RE. Passing the context's address to a helper needs CAP_PERFMON. */
static __always_inline int skb_tcp_seq(struct __sk_buff *ctx, __u32 *seq)
{
	struct sk_buff *skb = (void *)ctx;
	struct tcp_skb_cb *cb = (void *)skb->cb;

	return bpf_probe_read_kernel(seq, sizeof(*seq), &cb->seq);
}

/* The first byte not yet read from socket (slot, side): its copied_seq, which the verdict of
 * the first skb after the handoff starts from (userspace read everything before it). */
static __always_inline int copied_seq(__u64 key, __u32 *seq)
{
	struct bpf_sock *sk = bpf_map_lookup_elem(&sg_relay_target, &key);
	if (!sk)
		return -1;
	int err = -1;
	struct tcp_sock *tp = bpf_skc_to_tcp_sock(sk);
	if (tp) {
		*seq = tp->copied_seq;
		err = 0;
	}
	bpf_sk_release(sk);
	return err;
}

/* From here on the direction relays nothing: its stream can no longer be delivered exactly
 * once, and userspace resets the connection when it sees `broken`. */
static __always_inline int broke(struct snigate_relay_dir *d, __u32 why)
{
	if (!d->broken)
		d->broken = why;
	return SK_DROP;
}

/* Cuts the part of the skb that lies below next_seq (already relayed) and advances next_seq.
 * Returns 0, or a SNIGATE_RELAY_BROKEN_* reason. An skb holding nothing new ends up empty,
 * so the caller drops it without moving the socket's copied_seq past TCP's rcv_nxt. */
static __always_inline __u32 cut_repeated(struct __sk_buff *skb, struct snigate_relay_dir *d,
					  __u64 own_key)
{
	__u32 seq, len = skb->len;

	if (skb_tcp_seq(skb, &seq))
		return SNIGATE_RELAY_BROKEN_SEQ;
	if (!d->seq_known) {
		if (copied_seq(own_key, &d->next_seq))
			return SNIGATE_RELAY_BROKEN_SEQ;
		d->seq_known = 1;
	}
	__s32 behind = (__s32)(d->next_seq - seq);
	if (behind < 0)
		return SNIGATE_RELAY_BROKEN_GAP;
	__u32 cut = (__u32)behind < len ? (__u32)behind : len;
	if ((__u32)behind < len)
		d->next_seq = seq + len;
	if (!cut)
		return 0;
	d->repeated += cut;
	for (int i = 0; i < TRIM_CALLS && cut > 0; i++) {
		__u32 step = cut < TRIM_STEP ? cut : TRIM_STEP;
		if (bpf_skb_adjust_room(skb, -(__s32)step, 0, 0))
			return SNIGATE_RELAY_BROKEN_TRIM;
		cut -= step;
	}
	return cut ? SNIGATE_RELAY_BROKEN_TRIM : 0;
}

SEC("sk_skb/stream_verdict")
int sg_relay_verdict(struct __sk_buff *skb)
{
	/* A bare FIN carries no byte; TCP has already marked the socket shut for reading,
	 * which is how userspace sees the EOF. Redirected, or passed while the psock queue is
	 * busy, the psock would handle zero bytes, which it takes for a broken pipe
	 * (sk_psock_backlog: EPIPE on a 0 return) and poisons the socket with. */
	if (skb->len == 0)
		return SK_DROP;
	__u64 cookie = bpf_get_socket_cookie(skb);
	struct snigate_relay_sock *s = bpf_map_lookup_elem(&sg_relay_index, &cookie);
	if (!s)
		return SK_PASS;
	__u32 slot = s->slot;
	__u32 side = s->side & 1;
	struct snigate_relay_conn *c = bpf_map_lookup_elem(&sg_relay_conns, &slot);
	if (!c)
		return SK_PASS;
	struct snigate_relay_dir *d = &c->dir[side];
	if (d->broken)
		return SK_DROP;
	__u32 why = cut_repeated(skb, d, ((__u64)slot << 1) | side);
	if (why)
		return broke(d, why);
	__u64 len = skb->len;
	if (len == 0)
		return SK_DROP; /* every byte was repeated */
	__u64 peer_key = ((__u64)slot << 1) | (side ^ 1);
	__s64 n = inflight(d, peer_key);
	if (n < 0)
		return broke(d, SNIGATE_RELAY_BROKEN_PEER);
	/* Over the cap: ask userspace to take this source out of `sources` (only the iterator
	 * may, under the socket lock; relay_abi.h). Until it has, keep redirecting: the
	 * overshoot is what arrives meanwhile, and the order stays the stream's. A wake-up the
	 * ring buffer refused (full) is retried on the next skb. */
	if ((__u64)n > *(volatile __u64 *)&inflight_cap && d->state == SNIGATE_RELAY_RUNNING)
		d->state = SNIGATE_RELAY_DETACH_ASKED;
	if (d->state == SNIGATE_RELAY_DETACH_ASKED && !d->woken) {
		struct snigate_relay_wake w = {.slot = slot, .side = side};
		d->woken = bpf_ringbuf_output(&sg_relay_wake, &w, sizeof(w), 0) == 0;
	}
	d->redirected += len;
	return bpf_sk_redirect_hash(skb, &sg_relay_target, &peer_key, 0);
}

/* Wake-ups userspace collected before this iterator run: once that many sources are taken
 * out, the walk stops (returning 1 ends a read of the iterator). Sound because every asking
 * direction has one wake-up of its own, here or still to come, and a walk that does not stop
 * early meets every socket that asked before it began. */
__u64 detach_budget;

/* Carries out the pauses the verdict asked for: userspace runs it on a wake-up, and the
 * kernel walks every TCP socket of the namespace holding each one's lock (lock_sock_fast in
 * bpf_iter_tcp_seq_show), which is what makes deleting from `sources` safe against a
 * concurrent tcp_read_skb. Chosen over a cgroup sock_ops program, which also holds the lock:
 * its per-segment hook (PARSE_HDR_OPT) runs only on TCP's slow path, its per-transmit one
 * (HDR_OPT_LEN) also runs inside tcp_read_skb's loop (the window update of tcp_eat_skb),
 * where a delete would leave the loop's next skbs without a program, and neither reaches a
 * socket established before the program was attached. */
SEC("iter/tcp")
int sg_relay_detach(struct bpf_iter__tcp *ctx)
{
	struct sock_common *skc = ctx->sk_common;
	if (!skc)
		return 0;
	struct tcp_sock *tp = bpf_skc_to_tcp_sock(skc);
	/* Only a socket with a psock (sk_user_data) can be relayed: skip the rest cheaply,
	 * without giving every socket of the namespace a cookie. */
	if (!tp || !tp->inet_conn.icsk_inet.sk.sk_user_data)
		return 0;
	__u64 cookie = bpf_get_socket_cookie(tp);
	struct snigate_relay_sock *s = bpf_map_lookup_elem(&sg_relay_index, &cookie);
	if (!s)
		return 0;
	__u32 slot = s->slot;
	__u32 side = s->side & 1;
	struct snigate_relay_conn *c = bpf_map_lookup_elem(&sg_relay_conns, &slot);
	if (!c)
		return 0;
	struct snigate_relay_dir *d = &c->dir[side];
	if (d->state != SNIGATE_RELAY_DETACH_ASKED)
		return 0;
	__u64 key = ((__u64)slot << 1) | side;
	bpf_map_delete_elem(&sg_relay_source, &key);
	d->state = SNIGATE_RELAY_DETACHED;
	d->detaches++;
	if (detach_budget > 0 && --detach_budget == 0)
		return 1;
	return 0;
}
