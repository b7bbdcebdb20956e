/*
 * mvt-minpair: the smallest UDP ping-pong over a tap fd, the yardstick the harness's round trip is checked against
 * (test/harness-accuracy.test.ts). Nothing of the harness is used: no addon, no histogram, no poll.
 *
 *   mvt-minpair guest  --fd N --ip A.B.C.D [--vnet-hdr 0|10|12] [--cpu C] [--wait read|poll|ppoll|epoll]
 *   mvt-minpair client --netns PATH --bind IP:PORT --target IP:PORT [--cpu C] [--payload B] [--duration-ms D]
 *                      [--warmup W]
 *
 * guest: blocks in read() on the tap fd it inherited (fd N, e.g. a macvtap queue or a tap passed as stdio 3), and
 * answers every IPv4 UDP frame addressed to --ip by swapping MACs, IPs and ports in place and writing the frame back,
 * vnet header and all (a swap leaves both checksums valid, a partial one included). Anything else is ignored: the
 * peer needs a static neighbour entry for the guest, there is no ARP here. `--wait` other than `read` puts a
 * wait before each read (poll on the fd; ppoll on the fd and an eventfd with a timeout; epoll_wait on an epoll set
 * made once) — what each costs per round trip is the point of having them. Prints {"ready":true} once pinned, and
 * {"echoed":N,"ignored":M} when SIGTERM ends it.
 *
 * client: enters the namespace, sends one datagram at a time on a connected UDP socket and blocks in recv() for its
 * echo; the round trip is clock_gettime(CLOCK_MONOTONIC) after recv minus before send. After --warmup round trips it
 * records for --duration-ms and prints {"count","minNs","p50Ns","p90Ns","p99Ns","maxNs","meanNs"}. No receive timeout:
 * a lost datagram stalls it until the alarm at duration + 10 s ends it with exit code 3.
 *
 * Both sides pin themselves to --cpu (sched_setaffinity) before anything else.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static void die(const char* what) {
  fprintf(stderr, "mvt-minpair: %s: %s\n", what, strerror(errno));
  exit(2);
}

static void usage(const char* why) {
  fprintf(stderr, "mvt-minpair: %s (see the comment at the top of native/bench/minpair.c)\n", why);
  exit(1);
}

static const char* opt(int argc, char** argv, const char* name, const char* def) {
  for (int i = 2; i + 1 < argc; i += 2) {
    if (strcmp(argv[i], name) == 0) return argv[i + 1];
  }
  return def;
}

static void pin(const char* cpu) {
  if (!cpu) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(atoi(cpu), &set);
  if (sched_setaffinity(0, sizeof set, &set) < 0) die("sched_setaffinity");
}

static void parse_endpoint(const char* text, struct sockaddr_in* out) {
  char host[64];
  const char* colon = strrchr(text, ':');
  if (!colon || (size_t)(colon - text) >= sizeof host) usage("endpoints are IP:PORT");
  memcpy(host, text, (size_t)(colon - text));
  host[colon - text] = 0;
  memset(out, 0, sizeof *out);
  out->sin_family = AF_INET;
  out->sin_port = htons((uint16_t)atoi(colon + 1));
  if (inet_pton(AF_INET, host, &out->sin_addr) != 1) usage("bad IPv4 address");
}

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- guest ---- */

static volatile sig_atomic_t g_term;
static void on_term(int sig) {
  (void)sig;
  g_term = 1;
}

static void swap(uint8_t* a, uint8_t* b, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    uint8_t t = a[i];
    a[i] = b[i];
    b[i] = t;
  }
}

static int guest(int argc, char** argv) {
  const char* fd_text = opt(argc, argv, "--fd", NULL);
  const char* ip_text = opt(argc, argv, "--ip", NULL);
  if (!fd_text || !ip_text) usage("guest needs --fd and --ip");
  int fd = atoi(fd_text);
  size_t vh = (size_t)atoi(opt(argc, argv, "--vnet-hdr", "0"));
  const char* wait = opt(argc, argv, "--wait", "read");
  struct in_addr ip;
  if (inet_pton(AF_INET, ip_text, &ip) != 1) usage("bad --ip");
  pin(opt(argc, argv, "--cpu", NULL));

  /* SIGTERM without SA_RESTART: a blocked read() returns EINTR and the loop ends. */
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_term;
  sigaction(SIGTERM, &sa, NULL);

  int flags = fcntl(fd, F_GETFL);
  if (flags < 0) die("fcntl(F_GETFL) on --fd");
  if ((flags & O_NONBLOCK) && fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) < 0) die("fcntl(F_SETFL)");

  int efd = -1, ep = -1;
  if (strcmp(wait, "ppoll") == 0 || strcmp(wait, "epoll") == 0) {
    efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (efd < 0) die("eventfd");
  }
  if (strcmp(wait, "epoll") == 0) {
    ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) die("epoll_create1");
    struct epoll_event ev = {.events = EPOLLIN, .data = {.fd = fd}};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) die("epoll_ctl");
    ev.data.fd = efd;
    if (epoll_ctl(ep, EPOLL_CTL_ADD, efd, &ev) < 0) die("epoll_ctl");
  } else if (strcmp(wait, "read") != 0 && strcmp(wait, "poll") != 0 && strcmp(wait, "ppoll") != 0) {
    usage("--wait is read, poll, ppoll or epoll");
  }
  int mode = wait[0] == 'r' ? 0 : wait[0] == 'e' ? 3 : wait[1] == 'o' ? 1 : 2;

  static uint8_t buf[65536 + 64];
  unsigned long long echoed = 0, ignored = 0;
  printf("{\"ready\":true}\n");
  fflush(stdout);
  while (!g_term) {
    if (mode == 1) {
      struct pollfd p = {fd, POLLIN, 0};
      if (poll(&p, 1, -1) < 0) continue;
    } else if (mode == 2) {
      struct pollfd p[2] = {{fd, POLLIN, 0}, {efd, POLLIN, 0}};
      struct timespec ts = {60, 0};
      if (ppoll(p, 2, &ts, NULL) < 0) continue;
    } else if (mode == 3) {
      struct epoll_event ev;
      if (epoll_wait(ep, &ev, 1, 60000) < 0) continue;
    }
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      die("read");
    }
    uint8_t* f = buf + vh;
    size_t len = (size_t)n > vh ? (size_t)n - vh : 0;
    /* Ethernet, IPv4 without options, UDP, to our address. */
    if (len < 42 || f[12] != 0x08 || f[13] != 0x00 || f[14] != 0x45 || f[23] != 17 || memcmp(f + 30, &ip, 4) != 0) {
      ++ignored;
      continue;
    }
    swap(f, f + 6, 6);
    swap(f + 26, f + 30, 4);
    swap(f + 34, f + 36, 2);
    if (write(fd, buf, (size_t)n) < 0 && errno != EINTR) die("write");
    ++echoed;
  }
  if (flags & O_NONBLOCK) fcntl(fd, F_SETFL, flags); /* the file is shared with whoever passed it */
  printf("{\"echoed\":%llu,\"ignored\":%llu}\n", echoed, ignored);
  return 0;
}

/* ---- client ---- */

static int cmp_u64(const void* a, const void* b) {
  uint64_t x = *(const uint64_t*)a, y = *(const uint64_t*)b;
  return x < y ? -1 : x > y;
}

static void on_alarm(int sig) {
  (void)sig;
  static const char msg[] = "mvt-minpair: client stalled (a datagram lost?)\n";
  ssize_t w = write(2, msg, sizeof msg - 1);
  (void)w;
  _exit(3);
}

static int client(int argc, char** argv) {
  const char* ns = opt(argc, argv, "--netns", NULL);
  const char* bind_text = opt(argc, argv, "--bind", NULL);
  const char* target_text = opt(argc, argv, "--target", NULL);
  if (!bind_text || !target_text) usage("client needs --bind and --target");
  size_t payload = (size_t)atoi(opt(argc, argv, "--payload", "64"));
  uint64_t duration_ns = (uint64_t)atoll(opt(argc, argv, "--duration-ms", "1000")) * 1000000ull;
  long warmup = atol(opt(argc, argv, "--warmup", "200"));
  if (payload < 8 || payload > 65507) usage("--payload is 8..65507");
  pin(opt(argc, argv, "--cpu", NULL));
  if (ns) {
    int nfd = open(ns, O_RDONLY | O_CLOEXEC);
    if (nfd < 0) die("open --netns");
    if (setns(nfd, CLONE_NEWNET) < 0) die("setns");
    close(nfd);
  }
  struct sockaddr_in local, target;
  parse_endpoint(bind_text, &local);
  parse_endpoint(target_text, &target);
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) die("socket");
  if (bind(s, (struct sockaddr*)&local, sizeof local) < 0) die("bind");
  if (connect(s, (struct sockaddr*)&target, sizeof target) < 0) die("connect");

  signal(SIGALRM, on_alarm);
  alarm((unsigned)(duration_ns / 1000000000ull) + 10);

  uint8_t* out = calloc(1, payload);
  uint8_t* in = malloc(65536);
  size_t cap = 1 << 16, count = 0;
  uint64_t* rtt = malloc(cap * sizeof *rtt);
  if (!out || !in || !rtt) die("malloc");
  uint64_t seq = 0, end = warmup > 0 ? 0 : now_ns() + duration_ns;
  for (;;) {
    ++seq;
    memcpy(out, &seq, 8);
    uint64_t t0 = now_ns();
    if (send(s, out, payload, 0) < 0) die("send");
    for (;;) {
      ssize_t n = recv(s, in, 65536, 0);
      if (n < 0) {
        if (errno == EINTR) continue;
        die("recv");
      }
      if (n >= 8 && memcmp(in, &seq, 8) == 0) break;
    }
    uint64_t t1 = now_ns();
    if ((long)seq <= warmup) {
      if ((long)seq == warmup) end = t1 + duration_ns;
      continue;
    }
    if (count == cap) {
      cap *= 2;
      rtt = realloc(rtt, cap * sizeof *rtt);
      if (!rtt) die("realloc");
    }
    rtt[count++] = t1 - t0;
    if (t1 >= end) break;
  }
  qsort(rtt, count, sizeof *rtt, cmp_u64);
  double sum = 0;
  for (size_t i = 0; i < count; ++i) sum += (double)rtt[i];
  /* The ceil(q * count)-th smallest, as the harness's histogram ranks. */
#define PCT(q) rtt[(size_t)((q) * (double)count + 0.999999999) - 1]
  printf("{\"count\":%zu,\"minNs\":%llu,\"p50Ns\":%llu,\"p90Ns\":%llu,\"p99Ns\":%llu,\"maxNs\":%llu,\"meanNs\":%.0f}\n",
         count, (unsigned long long)rtt[0], (unsigned long long)PCT(0.50), (unsigned long long)PCT(0.90),
         (unsigned long long)PCT(0.99), (unsigned long long)rtt[count - 1], sum / (double)count);
  return 0;
}

int main(int argc, char** argv) {
  if (argc < 2) usage("first argument: guest or client");
  if (strcmp(argv[1], "guest") == 0) return guest(argc, argv);
  if (strcmp(argv[1], "client") == 0) return client(argc, argv);
  usage("first argument: guest or client");
  return 1;
}
