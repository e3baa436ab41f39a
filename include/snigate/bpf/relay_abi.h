/* Sockmap relay maps shared by bpf/relay.bpf.c and userspace/relay_sockmap/: the one place
 * their layouts are declared. Fixed-width kernel types only, sizes checked on both sides.
 *
 * A relayed connection owns one slot of the mmapable conns array. Its two sockets sit in the
 * sockhash under key (slot << 1 | side); the verdict program finds the slot of an skb's
 * socket through its socket cookie (index map) and redirects the skb to the peer's egress.
 *
 * Flow control (the psock redirect queue is not bounded by socket buffers or memcg): each
 * direction counts what it redirected; bytes still in the peer's psock queue are
 *   inflight = peer_base + redirected + user_bytes - written(peer)
 * with written = bytes_acked + (write_seq - snd_una), every byte the peer's TCP has taken
 * (peer_base: written(peer) at the handoff). Socket buffers bound everything else, so only
 * this is capped: a receiver slower than the sender first fills the peer's send queue, then
 * this queue. Above the cap the program returns SK_PASS instead: the skb stays charged to the
 * source socket's receive buffer, its window closes, and userspace reads and writes it with
 * ordinary flow control ("paused"). The kernel takes over again on a later skb once
 * userspace has written every passed byte (passed == user_bytes), so no byte overtakes
 * another. Directions start paused: bytes queued before the handoff are verdicted by a kick
 * after insertion and go the same way.
 *
 * Exactly once: TCP may queue an skb whose head it had already delivered (a retransmission
 * or an out-of-order segment that overlaps what came in order), and the stream verdict is
 * handed the whole skb (tcp_read_skb ignores copied_seq), so each direction tracks the TCP
 * sequence of the next byte it has not verdicted (next_seq) and cuts what lies below it.
 * What it cannot cut, or a gap, marks the direction broken: the program drops its bytes from
 * then on and userspace resets the connection, so a peer never gets a byte twice or a hole. */
#ifndef SNIGATE_BPF_RELAY_ABI_H
#define SNIGATE_BPF_RELAY_ABI_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

/* The cap's default, bytes per direction: [daemon] sockmap_queue_limit when not set. */
#define SNIGATE_RELAY_QUEUE_LIMIT_DEFAULT (4u << 20)

/* Connection slots: the conns array size; the sockhash and index hold two entries each. */
#define SNIGATE_RELAY_MAX_CONNS 65536

/* Side of a socket in its connection; also the direction it is the source of. */
#define SNIGATE_RELAY_CLIENT 0
#define SNIGATE_RELAY_UPSTREAM 1

/* One direction: bytes read from socket `side` and sent to the other. */
struct snigate_relay_dir {
	__u64 redirected; /* program: bytes redirected to the peer's egress */
	__u64 passed;     /* program: bytes handed to userspace (paused) */
	__u64 user_bytes; /* userspace: passed bytes read and written to the peer */
	__u64 peer_base;  /* userspace, before insertion: peer's bytes_acked + SIOCOUTQ */
	__u64 repeated;   /* program: bytes TCP handed over a second time, cut before relaying */
	__u32 paused;     /* program (userspace sets 1 before insertion) */
	__u32 next_seq;   /* program: TCP sequence of the next byte not verdicted yet */
	__u32 seq_known;  /* program: next_seq is set (from copied_seq, on the first skb) */
	__u32 broken;     /* program: a SNIGATE_RELAY_BROKEN_* reason; userspace resets */
};

/* Why a direction broke: the bytes it got cannot be relayed exactly once. */
#define SNIGATE_RELAY_BROKEN_GAP 1     /* an skb began after next_seq: bytes never verdicted */
#define SNIGATE_RELAY_BROKEN_TRIM 2    /* a repeated head too long or refused by the kernel */
#define SNIGATE_RELAY_BROKEN_SEQ 3     /* the skb's or the socket's sequence could not be read */

/* One connection: dir[SNIGATE_RELAY_CLIENT] is client -> upstream. */
struct snigate_relay_conn {
	struct snigate_relay_dir dir[2];
};

/* Index value: where a socket (by SO_COOKIE) belongs. */
struct snigate_relay_sock {
	__u32 slot;
	__u32 side;
};

#ifdef __cplusplus
static_assert(sizeof(struct snigate_relay_dir) == 56, "relay dir layout");
static_assert(sizeof(struct snigate_relay_conn) == 112, "relay conn layout");
static_assert(sizeof(struct snigate_relay_sock) == 8, "relay sock layout");
#else
_Static_assert(sizeof(struct snigate_relay_dir) == 56, "relay dir layout");
_Static_assert(sizeof(struct snigate_relay_conn) == 112, "relay conn layout");
_Static_assert(sizeof(struct snigate_relay_sock) == 8, "relay sock layout");
#endif

#endif /* SNIGATE_BPF_RELAY_ABI_H */
