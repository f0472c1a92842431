// mp-host: the process that stands in for a pod (or a world peer) inside its
// network namespace. Started by hosts/ with `ip netns exec NS mp-host ...`.
//
//   mp-host [--cpu N] [--tcp PORT]... [--udp PORT]...
//
// --cpu N pins the process (its server and command threads) to CPU N, so a
// benchmark can keep client and server on one CPU (see bench/datapath.ts).
//
// Serves every given port: TCP connections are echoed (a chunk starting with
// 'Q' is answered once and the server closes, like an HTTP request with
// "Connection: close"; anything else is echoed and the connection stays), UDP
// datagrams are echoed to their sender. Prints "ready" once every port is bound.
//
// Reads commands on stdin, one per line, each run in its own thread; every
// answer is one line on stdout starting with the command's id:
//   probe ID tcp|udp IP PORT TIMEOUT_MS  -> ID probe OUTCOME MICROS
//   hold ID IP PORT TIMEOUT_MS           -> ID hold OUTCOME MICROS   (keeps the connection)
//   ping ID TIMEOUT_MS                   -> ID ping ok|timeout|closed MICROS (on a held one)
//   drop ID                              -> ID drop ok
//   load ID IP PORT MILLIS CONC TIMEOUT  -> ID load ok=N timeout=N refused=N other=N p50=US p99=US
// OUTCOME is connected, timeout, refused, unreachable or error.
// `load` runs CONC loops of short request/response connections for MILLIS.
// EOF on stdin ends the process.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <sched.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_PORTS 256
#define MAX_HELD 4096

static uint64_t now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...) {
  char line[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(line, sizeof line - 1, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if (n > (int)sizeof line - 2) n = sizeof line - 2;
  line[n++] = '\n';
  // One write per line (< PIPE_BUF): lines of concurrent threads never interleave.
  ssize_t w = write(1, line, (size_t)n);
  (void)w;
}

// ---------------------------------------------------------------- server side

static int listen_on(int type, int port) {
  int fd = socket(AF_INET, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0) return -1;
  if (type == SOCK_STREAM && listen(fd, 4096) < 0) return -1;
  return fd;
}

// A listening socket (udp 0 or 1) or an accepted connection (udp -1).
struct listener {
  int fd;
  int udp;
};

static void *serve(void *arg) {
  int ep = *(int *)arg;
  struct epoll_event evs[64];
  char buf[2048];
  for (;;) {
    int n = epoll_wait(ep, evs, 64, -1);
    for (int i = 0; i < n; i++) {
      struct listener *l = evs[i].data.ptr;
      if (l->udp == 1) {
        struct sockaddr_storage from;
        socklen_t fl = sizeof from;
        ssize_t r;
        while ((r = recvfrom(l->fd, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl)) > 0) {
          sendto(l->fd, buf, (size_t)r, 0, (struct sockaddr *)&from, fl);
          fl = sizeof from;
        }
      } else if (l->udp == 0) {
        int c;
        while ((c = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
          struct listener *conn = malloc(sizeof *conn);
          if (conn == NULL) {
            close(c);
            continue;
          }
          conn->fd = c;
          conn->udp = -1;
          struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = conn};
          if (epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev) < 0) {
            close(c);
            free(conn);
          }
        }
      } else if (l->udp == -1) {
        ssize_t r = read(l->fd, buf, sizeof buf);
        if (r > 0) {
          ssize_t w = write(l->fd, buf, (size_t)r);
          (void)w;
          if (buf[0] != 'Q') continue;
        } else if (r < 0 && (errno == EAGAIN || errno == EINTR)) {
          continue;
        }
        close(l->fd);  // also removes it from the epoll set
        free(l);
      }
    }
  }
  return NULL;
}

// ---------------------------------------------------------------- client side

static const char *outcome_of(int err) {
  switch (err) {
    case 0: return "connected";
    case ETIMEDOUT: return "timeout";
    case ECONNREFUSED: return "refused";
    case EHOSTUNREACH:
    case ENETUNREACH: return "unreachable";
    default: return "error";
  }
}

// Connects within timeout_ms; returns the fd (blocking mode) or -1 with *err set.
static int connect_tcp(const char *ip, int port, int timeout_ms, int *err) {
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  if (inet_pton(AF_INET, ip, &a.sin_addr) != 1) {
    *err = EINVAL;
    return -1;
  }
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    *err = errno;
    return -1;
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0 && errno != EINPROGRESS) {
    *err = errno;
    close(fd);
    return -1;
  }
  struct pollfd p = {.fd = fd, .events = POLLOUT};
  int r = poll(&p, 1, timeout_ms);
  if (r == 0) {
    *err = ETIMEDOUT;
    close(fd);
    return -1;
  }
  int soerr = 0;
  socklen_t sl = sizeof soerr;
  getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
  if (r < 0 || soerr != 0) {
    *err = r < 0 ? errno : soerr;
    close(fd);
    return -1;
  }
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  *err = 0;
  return fd;
}

// Waits for readable data within timeout_ms: bytes read, 0 on EOF, -1 timeout, -2 error.
static ssize_t read_within(int fd, char *buf, size_t len, int timeout_ms) {
  struct pollfd p = {.fd = fd, .events = POLLIN};
  int r = poll(&p, 1, timeout_ms);
  if (r == 0) return -1;
  ssize_t n = recv(fd, buf, len, 0);
  return n < 0 ? -2 : n;
}

static int probe_udp(const char *ip, int port, int timeout_ms) {
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  if (inet_pton(AF_INET, ip, &a.sin_addr) != 1) return EINVAL;
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return errno;
  int err = 0;
  char buf[64];
  if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0 || send(fd, "P", 1, 0) < 0) {
    err = errno;
  } else {
    ssize_t r = read_within(fd, buf, sizeof buf, timeout_ms);
    err = r > 0 ? 0 : r == -1 ? ETIMEDOUT : errno;
  }
  close(fd);
  return err;
}

struct held {
  char id[64];
  int fd;
};
static struct held held[MAX_HELD];
static pthread_mutex_t held_lock = PTHREAD_MUTEX_INITIALIZER;

static int held_take(const char *id) {
  int fd = -1;
  pthread_mutex_lock(&held_lock);
  for (int i = 0; i < MAX_HELD; i++)
    if (held[i].fd > 0 && strcmp(held[i].id, id) == 0) {
      fd = held[i].fd;
      held[i].fd = 0;
      break;
    }
  pthread_mutex_unlock(&held_lock);
  return fd;
}

static void held_put(const char *id, int fd) {
  pthread_mutex_lock(&held_lock);
  for (int i = 0; i < MAX_HELD; i++)
    if (held[i].fd <= 0) {
      snprintf(held[i].id, sizeof held[i].id, "%s", id);
      held[i].fd = fd;
      fd = -1;
      break;
    }
  pthread_mutex_unlock(&held_lock);
  if (fd >= 0) close(fd);
}

// ---------------------------------------------------------------- load

struct load {
  char ip[64];
  int port, timeout_ms;
  uint64_t until;
  uint64_t ok, timeout, refused, other;
  uint32_t *lat;
  size_t n, cap;
};

static void *load_loop(void *arg) {
  struct load *l = arg;
  char buf[16];
  while (now_us() < l->until) {
    uint64_t t0 = now_us();
    int err;
    int fd = connect_tcp(l->ip, l->port, l->timeout_ms, &err);
    if (fd >= 0) {
      ssize_t r = send(fd, "Q", 1, MSG_NOSIGNAL) == 1 ? read_within(fd, buf, sizeof buf, l->timeout_ms) : -2;
      err = r > 0 ? 0 : r == -1 ? ETIMEDOUT : ECONNRESET;
      close(fd);
    }
    if (err == 0) {
      l->ok++;
      if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 65536;
        l->lat = realloc(l->lat, l->cap * sizeof *l->lat);
      }
      uint64_t d = now_us() - t0;
      l->lat[l->n++] = d > UINT32_MAX ? UINT32_MAX : (uint32_t)d;
    } else if (err == ETIMEDOUT) {
      l->timeout++;
    } else if (err == ECONNREFUSED) {
      l->refused++;
      usleep(1000);  // a refused port answers at once: do not spin
    } else {
      l->other++;
      usleep(1000);
    }
  }
  return NULL;
}

static int cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return x < y ? -1 : x > y;
}

static void run_load(const char *id, const char *ip, int port, int millis, int conc, int timeout_ms) {
  if (conc < 1) conc = 1;
  if (conc > 256) conc = 256;
  struct load *ls = calloc((size_t)conc, sizeof *ls);
  pthread_t *ts = calloc((size_t)conc, sizeof *ts);
  uint64_t until = now_us() + (uint64_t)millis * 1000u;
  for (int i = 0; i < conc; i++) {
    snprintf(ls[i].ip, sizeof ls[i].ip, "%s", ip);
    ls[i].port = port;
    ls[i].timeout_ms = timeout_ms;
    ls[i].until = until;
    pthread_create(&ts[i], NULL, load_loop, &ls[i]);
  }
  uint64_t ok = 0, to = 0, rf = 0, ot = 0;
  size_t total = 0;
  for (int i = 0; i < conc; i++) {
    pthread_join(ts[i], NULL);
    ok += ls[i].ok, to += ls[i].timeout, rf += ls[i].refused, ot += ls[i].other;
    total += ls[i].n;
  }
  uint32_t *all = malloc((total ? total : 1) * sizeof *all);
  size_t k = 0;
  for (int i = 0; i < conc; i++) {
    if (ls[i].n) memcpy(all + k, ls[i].lat, ls[i].n * sizeof *all);
    k += ls[i].n;
    free(ls[i].lat);
  }
  qsort(all, total, sizeof *all, cmp_u32);
  uint32_t p50 = total ? all[total / 2] : 0, p99 = total ? all[(total * 99) / 100] : 0;
  say("%s load ok=%llu timeout=%llu refused=%llu other=%llu p50=%u p99=%u", id,
      (unsigned long long)ok, (unsigned long long)to, (unsigned long long)rf,
      (unsigned long long)ot, p50, p99);
  free(all);
  free(ls);
  free(ts);
}

// ---------------------------------------------------------------- commands

static void *run_command(void *arg) {
  char *line = arg;
  char verb[16] = "", id[64] = "", a[64] = "", b[64] = "", c[32] = "", d[32] = "", e[32] = "",
       f[32] = "";
  int n = sscanf(line, "%15s %63s %63s %63s %31s %31s %31s %31s", verb, id, a, b, c, d, e, f);
  uint64_t t0 = now_us();
  if (strcmp(verb, "probe") == 0 && n >= 6) {
    int err;
    if (strcmp(a, "udp") == 0) {
      err = probe_udp(b, atoi(c), atoi(d));
    } else {
      int fd = connect_tcp(b, atoi(c), atoi(d), &err);
      if (fd >= 0) close(fd);
    }
    say("%s probe %s %llu", id, outcome_of(err), (unsigned long long)(now_us() - t0));
  } else if (strcmp(verb, "hold") == 0 && n >= 5) {
    int err;
    int fd = connect_tcp(a, atoi(b), atoi(c), &err);
    if (fd >= 0) held_put(id, fd);
    say("%s hold %s %llu", id, outcome_of(err), (unsigned long long)(now_us() - t0));
  } else if (strcmp(verb, "ping") == 0 && n >= 3) {
    int fd = held_take(id);
    const char *out = "closed";
    if (fd >= 0) {
      char buf[16];
      ssize_t r = send(fd, "p", 1, MSG_NOSIGNAL) == 1 ? read_within(fd, buf, sizeof buf, atoi(a)) : -2;
      out = r > 0 ? "ok" : r == -1 ? "timeout" : "closed";
      held_put(id, fd);
    }
    say("%s ping %s %llu", id, out, (unsigned long long)(now_us() - t0));
  } else if (strcmp(verb, "drop") == 0 && n >= 2) {
    int fd = held_take(id);
    if (fd >= 0) close(fd);
    say("%s drop ok", id);
  } else if (strcmp(verb, "load") == 0 && n >= 7) {
    run_load(id, a, atoi(b), atoi(c), atoi(d), atoi(e));
  } else {
    say("%s error bad-command", id[0] ? id : "-");
  }
  free(line);
  return NULL;
}

int main(int argc, char **argv) {
  signal(SIGPIPE, SIG_IGN);
  int ep = epoll_create1(EPOLL_CLOEXEC);
  int count = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (strcmp(argv[i], "--cpu") == 0) {
      cpu_set_t set;
      CPU_ZERO(&set);
      CPU_SET(atoi(argv[i + 1]), &set);
      if (sched_setaffinity(0, sizeof set, &set) < 0) {
        fprintf(stderr, "mp-host: cannot pin to CPU %s: %s\n", argv[i + 1], strerror(errno));
        return 1;
      }
      continue;
    }
    int udp = strcmp(argv[i], "--udp") == 0;
    if (!udp && strcmp(argv[i], "--tcp") != 0) {
      fprintf(stderr, "mp-host: unknown argument %s\n", argv[i]);
      return 2;
    }
    if (++count > MAX_PORTS) {
      fprintf(stderr, "mp-host: more than %d ports\n", MAX_PORTS);
      return 2;
    }
    int port = atoi(argv[i + 1]);
    int fd = listen_on(udp ? SOCK_DGRAM : SOCK_STREAM, port);
    if (fd < 0) {
      fprintf(stderr, "mp-host: cannot serve %s/%d: %s\n", udp ? "udp" : "tcp", port, strerror(errno));
      return 1;
    }
    struct listener *l = malloc(sizeof *l);
    l->fd = fd;
    l->udp = udp;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = l};
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
  }
  pthread_t server;
  pthread_create(&server, NULL, serve, &ep);
  say("ready");
  char *line = NULL;
  size_t cap = 0;
  ssize_t len;
  while ((len = getline(&line, &cap, stdin)) > 0) {
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    if (pthread_create(&t, &attr, run_command, strdup(line)) != 0) say("- error no-thread");
    pthread_attr_destroy(&attr);
  }
  return 0;
}
