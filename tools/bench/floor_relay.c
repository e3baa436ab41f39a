// floor-relay: a measuring stick for bench.sh's "floor" column, not a product. It does the
// least a userspace TCP relay must do per connection: accept, read the first bytes (the
// ClientHello, unparsed), connect to the next upstream named on the command line, send them,
// then copy both ways until both ends have closed. Its system calls and CPU per connection are
// a floor for any relay; its connections/s is not a ceiling: it sleeps more often than busier
// relays, and on a 2-core machine each wake-up lies on a connection's path (snigated measured
// more connections/s than it, with more CPU per connection). No routing, logging, timers or
// limits, and no allocation per connection: state and buffers live in tables indexed by
// descriptor.
// FIN is passed on by shutdown(SHUT_WR), a reset by closing the other end with SO_LINGER {1, 0}.
// Usage: floor-relay LISTEN_IP UPSTREAM_IPS UPSTREAM_PORT DEFER_ACCEPT(0|1); prints its port.
// UPSTREAM_IPS is one address or several, comma-separated, taken in turn (round robin).
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

enum { MAX_FDS = 1 << 16, BUF = 16 * 1024, MAX_UPSTREAMS = 16 };
enum {
  READABLE = 1,    // input may be queued: an event said so and no read has drained it yet
  CONNECTING = 2,  // upstream end whose connect has not yet reported writable
  GOT_FIN = 4,     // read 0 from this end and passed it on
  ENDING = 8,      // an event said the end hung up: read on to the 0 even after a short read
};

// One end of a relayed pair, indexed by its descriptor. buf[fd] holds bytes read from fd and
// not yet sent to its peer (buf[fd][off..len)).
struct end {
  int peer;  // -1: free, or a client whose first bytes have not arrived
  uint32_t gen;  // bumped on close: tells a stale event (fd reused in one batch) from a live one
  uint16_t off, len;
  uint8_t flags;
};
static struct end* ends;
static char (*buf)[BUF];
static int ep;
static struct sockaddr_in upstreams[MAX_UPSTREAMS];
static unsigned n_upstreams, next_upstream;

static void watch(int fd) {
  struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
                           .data.u64 = (uint64_t)ends[fd].gen << 32 | (uint32_t)fd};
  epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
}

static void forget(int fd) {
  ends[fd] = (struct end){.peer = -1, .gen = ends[fd].gen + 1};
  close(fd);
}

// Closes both ends; with `reset`, the peer of `fd` gets a reset rather than a FIN.
static void close_pair(int fd, int reset) {
  int peer = ends[fd].peer;
  if (peer >= 0) {
    static const struct linger now = {1, 0};
    if (reset) setsockopt(peer, SOL_SOCKET, SO_LINGER, &now, sizeof now);
    forget(peer);
  }
  forget(fd);
}

// Notes n > 0 bytes read into an end's buffer.
static void took(struct end* e, ssize_t n) {
  e->len = (uint16_t)n;
  // A short read took all that was queued, and anything later raises a new edge; but a FIN
  // queued before the event's poll raises none and may sit behind the bytes read.
  if (n < BUF && !(e->flags & ENDING)) e->flags &= (uint8_t)~READABLE;
}

// Moves what src has to say to its peer until either side would block. Returns 0 once the
// pair is closed.
static int pump(int src) {
  struct end* s = &ends[src];
  int dst = s->peer;
  for (;;) {
    while (s->off < s->len) {
      if (ends[dst].flags & CONNECTING) return 1;
      ssize_t n = send(dst, buf[src] + s->off, s->len - s->off, MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EAGAIN) return 1;
        close_pair(dst, 1);
        return 0;
      }
      s->off += (uint16_t)n;
    }
    s->off = s->len = 0;
    if (!(s->flags & READABLE)) return 1;
    ssize_t n = recv(src, buf[src], BUF, 0);
    if (n > 0) {
      took(s, n);
    } else if (n == 0) {
      s->flags = (uint8_t)((s->flags & ~READABLE) | GOT_FIN);
      if (ends[dst].flags & GOT_FIN) {
        close_pair(src, 0);  // close(dst) sends its FIN: no shutdown call for it
        return 0;
      }
      shutdown(dst, SHUT_WR);
      return 1;
    } else if (errno == EAGAIN) {
      s->flags &= (uint8_t)~READABLE;
      return 1;
    } else {
      close_pair(src, 1);
      return 0;
    }
  }
}

// The client's first bytes are in buf[client]: connect upstream; pump sends them once it can.
static void start(int client) {
  int up = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  if (up < 0 || up >= MAX_FDS) {
    if (up >= 0) close(up);
    forget(client);
    return;
  }
  setsockopt(up, IPPROTO_TCP, TCP_NODELAY, &(int){1}, sizeof(int));
  const struct sockaddr_in* to = &upstreams[next_upstream++ % n_upstreams];
  if (connect(up, (const struct sockaddr*)to, sizeof *to) != 0 && errno != EINPROGRESS) {
    close(up);
    forget(client);
    return;
  }
  ends[client].peer = up;
  ends[up] = (struct end){.peer = client, .gen = ends[up].gen, .flags = CONNECTING};
  watch(up);
}

// Reads a client's first bytes and connects it, or leaves it to wait for them. Watched only
// after this first read, so the read's own bytes raise no event of their own.
static void hello(int client, int watched) {
  ssize_t n = recv(client, buf[client], BUF, 0);
  if (n > 0) {
    took(&ends[client], n);
    if (!watched) watch(client);
    start(client);
  } else if (n < 0 && errno == EAGAIN) {
    ends[client].flags &= (uint8_t)~READABLE;
    if (!watched) watch(client);
  } else {
    forget(client);
  }
}

static void accept_all(int lfd) {
  for (int fd; (fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK)) >= 0;) {
    if (fd >= MAX_FDS) {
      close(fd);
      continue;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){1}, sizeof(int));
    ends[fd] = (struct end){.peer = -1, .gen = ends[fd].gen, .flags = READABLE};
    hello(fd, 0);
  }
}

static void on_event(int fd, uint32_t events) {
  struct end* e = &ends[fd];
  if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) e->flags |= READABLE;
  if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) e->flags |= ENDING;
  if (e->peer < 0) {  // a client still owing its first bytes
    if (e->flags & READABLE) hello(fd, 1);
    return;
  }
  if (e->flags & CONNECTING) {
    if (events & (EPOLLERR | EPOLLHUP)) {  // refused: the client gets a reset
      close_pair(fd, 1);
      return;
    }
    if (!(events & EPOLLOUT)) return;
    e->flags &= (uint8_t)~CONNECTING;
  }
  int peer = e->peer;
  if (pump(fd)) pump(peer);  // this end's input out, then whatever was waiting for it to drain
}

static int fail(const char* what) {
  perror(what);
  return 1;
}

int main(int argc, char** argv) {
  if (argc != 5) {
    fprintf(stderr, "usage: %s LISTEN_IP UPSTREAM_IPS UPSTREAM_PORT DEFER_ACCEPT(0|1)\n", argv[0]);
    return 2;
  }
  struct sockaddr_in local = {.sin_family = AF_INET};
  if (inet_pton(AF_INET, argv[1], &local.sin_addr) != 1) {
    fprintf(stderr, "bad address %s\n", argv[1]);
    return 2;
  }
  for (char* ip = strtok(argv[2], ","); ip; ip = strtok(NULL, ",")) {
    struct sockaddr_in* u = &upstreams[n_upstreams];
    if (n_upstreams == MAX_UPSTREAMS || inet_pton(AF_INET, ip, &u->sin_addr) != 1) {
      fprintf(stderr, "bad or too many upstream addresses at %s\n", ip);
      return 2;
    }
    u->sin_family = AF_INET;
    u->sin_port = htons((uint16_t)atoi(argv[3]));
    ++n_upstreams;
  }
  if (n_upstreams == 0) {
    fprintf(stderr, "no upstream address\n");
    return 2;
  }
  // Reserved, not committed: a page is touched only when an end first holds bytes.
  ends = mmap(NULL, sizeof(struct end) * MAX_FDS, PROT_READ | PROT_WRITE,
              MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  buf = mmap(NULL, (size_t)BUF * MAX_FDS, PROT_READ | PROT_WRITE,
             MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (ends == MAP_FAILED || buf == MAP_FAILED) return fail("mmap");
  int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &(int){1}, sizeof(int));
  setsockopt(lfd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &(int){atoi(argv[4])}, sizeof(int));
  socklen_t len = sizeof local;
  if (bind(lfd, (struct sockaddr*)&local, sizeof local) != 0 || listen(lfd, 4096) != 0 ||
      getsockname(lfd, (struct sockaddr*)&local, &len) != 0)
    return fail("listen");
  printf("floor port=%u\n", ntohs(local.sin_port));
  fflush(stdout);
  ep = epoll_create1(0);
  struct epoll_event lev = {.events = EPOLLIN, .data.u64 = UINT64_MAX};
  if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &lev) != 0) return fail("epoll");
  struct epoll_event events[256];
  for (;;) {
    int n = epoll_wait(ep, events, 256, -1);
    for (int i = 0; i < n; ++i) {
      uint64_t d = events[i].data.u64;
      if (d == UINT64_MAX) {
        accept_all(lfd);
      } else if (ends[(uint32_t)d].gen == d >> 32) {
        on_event((int)(uint32_t)d, events[i].events);
      }
    }
  }
}
