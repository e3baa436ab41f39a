/* Sockmap relay maps shared by bpf/relay.bpf.c and userspace/relay_sockmap/: the one place
 * their layouts are declared. Fixed-width kernel types only, sizes checked on both sides.
 *
 * A relayed connection owns one slot of the mmapable conns array. Its two sockets sit in two
 * sockhashes under key (slot << 1 | side): `targets`, which carries no program, holds both for
 * the whole relay and is what the verdict redirects to (it keeps each psock alive); `sources`,
 * which carries the verdict, holds a socket only while its direction runs in the kernel. The
 * verdict finds the slot of an skb's socket through its socket cookie (index map).
 *
 * Flow control (the psock redirect queue is not bounded by socket buffers or memcg): each
 * direction counts what it redirected; bytes still in the peer's psock queue are
 *   inflight = peer_base + redirected + user_bytes - written(peer)
 * with written = bytes_acked + (write_seq - snd_una), every byte the peer's TCP has taken
 * (peer_base: written(peer) at the handoff). Socket buffers bound everything else, so only
 * this is capped. Above the cap a direction pauses by leaving `sources`: with no verdict its
 * source's new bytes stay in its own TCP receive queue, charged to it, and TCP closes the
 * window. The removal must happen under the source's socket lock, or a read of the receive
 * queue running at that moment (tcp_read_skb) finds no program and drops skbs TCP has
 * acknowledged. A BPF program may delete from a sockhash in only a few contexts; the one that
 * holds the socket lock for each socket it sees on every kernel we run is the TCP iterator
 * (iter/tcp, lock_sock_fast). So the pause takes three steps:
 *   RUNNING -> DETACH_ASKED  the verdict, on an skb that finds inflight above the cap; it
 *                            wakes userspace through the ring buffer and goes on redirecting
 *                            (the overshoot is what the source receives meanwhile);
 *   DETACH_ASKED -> DETACHED the iterator, run by userspace on that wake-up, deletes the
 *                            source from `sources` under its lock;
 *   DETACHED -> RUNNING      userspace, once inflight is below half the cap: it re-inserts the
 *                            source (the syscall takes its lock) and runs the verdict over
 *                            what queued meanwhile. A source that got its FIN meanwhile cannot
 *                            rejoin (not ESTABLISHED): userspace copies the rest
 *                            (user_bytes), after every redirected byte reached the peer.
 * Each transition has one writer, and none runs while another may (the first two under the
 * source's lock, the last while the source has no verdict).
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

/* Connection slots: the conns array size; the sockhashes and index hold two entries each. */
#define SNIGATE_RELAY_MAX_CONNS 65536

/* Side of a socket in its connection; also the direction it is the source of. */
#define SNIGATE_RELAY_CLIENT 0
#define SNIGATE_RELAY_UPSTREAM 1

/* Where a direction runs (the pause, above). */
#define SNIGATE_RELAY_RUNNING 0
#define SNIGATE_RELAY_DETACH_ASKED 1
#define SNIGATE_RELAY_DETACHED 2

/* One direction: bytes read from socket `side` and sent to the other. */
struct snigate_relay_dir {
	__u64 redirected; /* program: bytes redirected to the peer's egress */
	__u64 user_bytes; /* userspace: bytes it copied after the source could not rejoin */
	__u64 peer_base;  /* userspace, before insertion: peer's bytes_acked + SIOCOUTQ */
	__u64 repeated;   /* program: bytes TCP handed over a second time, cut before relaying */
	__u64 detaches;   /* iterator: times the direction left the kernel (pauses) */
	__u32 state;      /* SNIGATE_RELAY_RUNNING, _DETACH_ASKED or _DETACHED */
	__u32 woken;      /* program: the ring buffer took this pause's wake-up */
	__u32 next_seq;   /* program: TCP sequence of the next byte not verdicted yet */
	__u32 seq_known;  /* program: next_seq is set (from copied_seq, on the first skb) */
	__u32 broken;     /* program: a SNIGATE_RELAY_BROKEN_* reason; userspace resets */
	__u32 pad;
};

/* Why a direction broke: the bytes it got cannot be relayed exactly once. */
#define SNIGATE_RELAY_BROKEN_GAP 1     /* an skb began after next_seq: bytes never verdicted */
#define SNIGATE_RELAY_BROKEN_TRIM 2    /* a repeated head too long or refused by the kernel */
#define SNIGATE_RELAY_BROKEN_SEQ 3     /* the skb's or the socket's sequence could not be read */
#define SNIGATE_RELAY_BROKEN_PEER 4    /* the peer left the relay while this direction ran */

/* The ring buffer's record: the direction that asked to leave the kernel. */
struct snigate_relay_wake {
	__u32 slot;
	__u32 side;
};

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
static_assert(sizeof(struct snigate_relay_dir) == 64, "relay dir layout");
static_assert(sizeof(struct snigate_relay_conn) == 128, "relay conn layout");
static_assert(sizeof(struct snigate_relay_sock) == 8, "relay sock layout");
static_assert(sizeof(struct snigate_relay_wake) == 8, "relay wake layout");
#else
_Static_assert(sizeof(struct snigate_relay_dir) == 64, "relay dir layout");
_Static_assert(sizeof(struct snigate_relay_conn) == 128, "relay conn layout");
_Static_assert(sizeof(struct snigate_relay_sock) == 8, "relay sock layout");
_Static_assert(sizeof(struct snigate_relay_wake) == 8, "relay wake layout");
#endif

#endif /* SNIGATE_BPF_RELAY_ABI_H */
