// The peer endpoint: a UDP socket created inside a network namespace (this thread enters it with setns and stays:
// the thread is ours alone and ends with the endpoint), batching with recvmmsg/sendmmsg. Pingpong sends one datagram
// {sequence, send time} at a time and waits for its echo; RTTs go into a log-linear histogram. Byte counts are UDP
// payload bytes.
//
// Block mode sleeps in the receive call itself, as sockperf does: a blocking socket whose SO_RCVTIMEO bounds each
// sleep (the round-trip timeout for pingpong, the run's deadline otherwise), woken early by stop() shutting the
// socket's read side. One syscall per datagram received: a failed non-blocking receive followed by ppoll() on the
// socket and the stop eventfd cost two more per wait, which on a 2-vCPU VM read 15-20% above sockperf's ping-pong
// round trip (interleaved medians). Busy mode spins on non-blocking receives.
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <vector>

#include "endpoint.h"

namespace macvtap {

namespace {

constexpr size_t kDatagram = 65536;
constexpr int kSocketBuffer = 4 << 20;

void EnterNetns(EndpointState& s) {
  if (!s.netns_path.empty()) {
    int fd = ::open(s.netns_path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) ThrowSys(errno, "open", s.netns_path);
    FileDescriptor owner(fd);
    if (::setns(fd, CLONE_NEWNET) < 0) ThrowSys(errno, "setns", s.netns_path);
  } else if (s.fd.valid()) {
    if (::setns(s.fd.get(), CLONE_NEWNET) < 0) ThrowSys(errno, "setns", {}, {}, "netns fd");
    s.fd.reset();
  }
}

void SetBuffer(int fd, int force_opt, int opt) {
  int size = kSocketBuffer;
  // *BUFFORCE ignores net.core.[rw]mem_max (we are root here); fall back to the capped option otherwise.
  if (::setsockopt(fd, SOL_SOCKET, force_opt, &size, sizeof size) < 0) {
    ::setsockopt(fd, SOL_SOCKET, opt, &size, sizeof size);
  }
}

sockaddr_in Addr(uint32_t ip, uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = ip;
  a.sin_port = htons(port);
  return a;
}

bool IsSoftTxError(int err) { return err == EAGAIN || err == EWOULDBLOCK || err == ENOBUFS || err == ECONNREFUSED; }

class Peer {
 public:
  explicit Peer(EndpointState& s) : s_(s), p_(s.peer_cfg) {}

  void Run(const std::function<void()>& ready) {
    EnterNetns(s_);
    int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | (Busy() ? SOCK_NONBLOCK : 0), 0);
    if (fd < 0) ThrowSys(errno, "socket");
    s_.sock.reset(fd);
    fd_ = fd;
    SetBuffer(fd, SO_RCVBUFFORCE, SO_RCVBUF);
    SetBuffer(fd, SO_SNDBUFFORCE, SO_SNDBUF);
    sockaddr_in local = Addr(p_.bind_ip, p_.bind_port);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&local), sizeof local) < 0) ThrowSys(errno, "bind");
    if (p_.has_target) {
      // Connected: the route is looked up once, and only the target's datagrams are received.
      sockaddr_in t = Addr(p_.target_ip, p_.target_port);
      if (::connect(fd, reinterpret_cast<sockaddr*>(&t), sizeof t) < 0) ThrowSys(errno, "connect");
    }
    size_t slots = static_cast<size_t>(p_.batch);
    bufs_.assign(slots * kDatagram, 0);
    iov_.resize(slots);
    names_.resize(slots);
    msgs_.resize(slots);
    if (p_.mode == PeerConfig::Mode::kPingpong) s_.stats.latency = std::make_unique<Histogram>();
    ready();
    start_ = MonoNs();
    deadline_ = start_ + s_.duration_ns;
    if (!Busy()) {
      SetReceiveTimeout(p_.mode == PeerConfig::Mode::kPingpong ? p_.timeout_ns : s_.duration_ns);
      // From here a stop() wakes the blocking receive; one that came before is seen by Over() below.
      s_.sock_fd.store(fd, std::memory_order_release);
    }
    switch (p_.mode) {
      case PeerConfig::Mode::kEcho: Echo(); break;
      case PeerConfig::Mode::kSink: Sink(); break;
      case PeerConfig::Mode::kGenerate: Generate(); break;
      case PeerConfig::Mode::kPingpong: Pingpong(); break;
    }
    s_.stats.elapsed_ns = MonoNs() - start_;
  }

 private:
  bool Busy() const { return s_.poll == PollMode::kBusy; }
  bool Over() {
    return Stopped() || MonoNs() >= deadline_;
  }

  void SetReceiveTimeout(uint64_t ns) {
    if (ns == 0) ns = 1;  // a zero timeval would mean "never"
    timeval tv{static_cast<time_t>(ns / 1'000'000'000ull), static_cast<suseconds_t>((ns % 1'000'000'000ull) / 1000)};
    if (tv.tv_sec == 0 && tv.tv_usec == 0) tv.tv_usec = 1;
    if (::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) < 0) ThrowSys(errno, "setsockopt", {}, {}, "SO_RCVTIMEO");
  }

  bool Stopped() const { return s_.stop.load(std::memory_order_relaxed); }

  void ResetRecv(size_t n) {
    for (size_t i = 0; i < n; ++i) {
      iov_[i].iov_base = bufs_.data() + i * kDatagram;
      iov_[i].iov_len = kDatagram;
      memset(&msgs_[i], 0, sizeof msgs_[i]);
      msgs_[i].msg_hdr.msg_iov = &iov_[i];
      msgs_[i].msg_hdr.msg_iovlen = 1;
      msgs_[i].msg_hdr.msg_name = &names_[i];
      msgs_[i].msg_hdr.msg_namelen = sizeof names_[i];
    }
  }

  // Receives up to `want` datagrams; 0 when none came before the deadline / stop. Block mode sleeps in recvmmsg
  // (MSG_WAITFORONE: the first datagram, then whatever else is queued); busy spins.
  int Receive(size_t want) {
    for (;;) {
      ResetRecv(want);
      int n = ::recvmmsg(fd_, msgs_.data(), static_cast<unsigned>(want), Busy() ? MSG_DONTWAIT : MSG_WAITFORONE, nullptr);
      // After stop() shut the read side, receives return empty datagrams: never count or echo those.
      if (!Busy() && Stopped()) return 0;
      if (n > 0) {
        for (int i = 0; i < n; ++i) {
          ++s_.stats.rx_packets;
          s_.stats.rx_bytes += msgs_[i].msg_len;
        }
        return n;
      }
      if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        // ICMP errors surface on the socket (e.g. ECONNREFUSED after a port unreachable): not data, keep going.
        if (errno == ECONNREFUSED) continue;
        ThrowSys(errno, "recvmmsg");
      }
      // Busy: nothing yet. Block: SO_RCVTIMEO ran out (the deadline) or a signal came.
      if (Over()) return 0;
    }
  }

  // Sends msgs_[0..n) as they are; counts what went and what failed.
  void SendAll(size_t n) {
    size_t off = 0;
    while (off < n) {
      int k = ::sendmmsg(fd_, msgs_.data() + off, static_cast<unsigned>(n - off), MSG_DONTWAIT);
      if (k > 0) {
        for (int i = 0; i < k; ++i) {
          ++s_.stats.tx_packets;
          s_.stats.tx_bytes += msgs_[off + i].msg_len;
        }
        off += static_cast<size_t>(k);
        continue;
      }
      if (k < 0 && errno == EINTR) continue;
      if (k < 0 && !IsSoftTxError(errno)) ThrowSys(errno, "sendmmsg");
      ++s_.stats.tx_errors;
      // Block mode waits for room; busy mode drops the rest of the batch (counted) and moves on.
      if (Busy() || (k < 0 && errno == ECONNREFUSED)) return;
      if (WaitFd(s_, fd_, true, deadline_) != Wait::kReady) return;
    }
  }

  bool CountReached(uint64_t v) const { return p_.count && v >= p_.count; }

  void Echo() {
    while (!Over() && !CountReached(s_.stats.tx_packets)) {
      int n = Receive(static_cast<size_t>(p_.batch));
      if (n <= 0) return;
      // Back to each sender: msg_name holds its address, the payload stays as received.
      for (int i = 0; i < n; ++i) iov_[i].iov_len = msgs_[i].msg_len;
      SendAll(static_cast<size_t>(n));
    }
  }

  void Sink() {
    while (!Over() && !CountReached(s_.stats.rx_packets)) {
      size_t want = static_cast<size_t>(p_.batch);
      if (p_.count) want = std::min<uint64_t>(want, p_.count - s_.stats.rx_packets);
      if (Receive(want) <= 0) return;
    }
  }

  void Generate() {
    for (size_t i = 0; i < msgs_.size(); ++i) {
      uint8_t* b = bufs_.data() + i * kDatagram;
      for (size_t j = 0; j < p_.payload_size; ++j) b[j] = static_cast<uint8_t>('A' + j % 26);
      iov_[i].iov_base = b;
      iov_[i].iov_len = p_.payload_size;
      memset(&msgs_[i], 0, sizeof msgs_[i]);
      msgs_[i].msg_hdr.msg_iov = &iov_[i];
      msgs_[i].msg_hdr.msg_iovlen = 1;
    }
    uint64_t attempted = 0;
    while (!Over()) {
      uint64_t due = static_cast<uint64_t>(p_.batch);
      if (p_.rate_pps) {
        // 128-bit: ten minutes of nanoseconds times a billion per second overflows 64 bits.
        unsigned __int128 elapsed = MonoNs() - start_;
        uint64_t allowed = static_cast<uint64_t>(elapsed * p_.rate_pps / 1'000'000'000ull) + 1;
        due = allowed > attempted ? std::min<uint64_t>(due, allowed - attempted) : 0;
      }
      if (p_.count) due = std::min<uint64_t>(due, p_.count - attempted);
      if (p_.count && attempted >= p_.count) return;
      if (due == 0) {
        // Paced: sleep (block) or spin (busy) until the next datagram is due.
        uint64_t next = start_ + static_cast<uint64_t>(static_cast<unsigned __int128>(attempted) * 1'000'000'000ull / p_.rate_pps);
        if (!Busy()) WaitFd(s_, -1, false, std::min(next, deadline_));
        continue;
      }
      SendAll(static_cast<size_t>(due));
      attempted += due;
    }
  }

  void Pingpong() {
    size_t len = p_.payload_size < 16 ? 16 : p_.payload_size;
    uint8_t* out = bufs_.data();
    for (size_t j = 16; j < len; ++j) out[j] = static_cast<uint8_t>('a' + j % 26);
    std::vector<uint8_t> in(kDatagram);
    uint64_t total = p_.count ? p_.warmup + p_.count : UINT64_MAX;
    for (uint64_t seq = 1; seq <= total && !Over(); ++seq) {
      uint64_t t0 = MonoNs();
      memcpy(out, &seq, 8);
      memcpy(out + 8, &t0, 8);
      ssize_t w;
      do w = ::send(fd_, out, len, MSG_DONTWAIT);
      while (w < 0 && errno == EINTR);
      if (w < 0) {
        if (!IsSoftTxError(errno)) ThrowSys(errno, "send");
        ++s_.stats.tx_errors;
        continue;
      }
      ++s_.stats.tx_packets;
      s_.stats.tx_bytes += static_cast<uint64_t>(w);
      uint64_t give_up = std::min(t0 + p_.timeout_ns, deadline_);
      for (;;) {
        // Block mode sleeps here, at most the timeout (SO_RCVTIMEO) per call: a datagram lost within the last
        // timeout before the deadline can stretch the run by up to that timeout, never more.
        ssize_t n = ::recv(fd_, in.data(), in.size(), Busy() ? MSG_DONTWAIT : 0);
        uint64_t now = MonoNs();
        if (!Busy() && Stopped()) break;  // woken by stop(): what came back is the shut-down read side, not data
        if (n >= 16) {
          uint64_t got;
          memcpy(&got, in.data(), 8);
          if (got == seq) {
            ++s_.stats.rx_packets;
            s_.stats.rx_bytes += static_cast<uint64_t>(n);
            if (seq > p_.warmup) s_.stats.latency->Record(now - t0);
            break;
          }
          ++s_.stats.ignored;  // a late echo of an earlier (timed-out) round trip
          continue;
        }
        if (n >= 0) {
          ++s_.stats.ignored;
          continue;
        }
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR && errno != ECONNREFUSED) ThrowSys(errno, "recv");
        if (now >= give_up || Stopped()) break;  // lost: sent − received shows it
      }
    }
  }

  EndpointState& s_;
  const PeerConfig& p_;
  int fd_ = -1;  // s_.sock's number
  std::vector<uint8_t> bufs_;
  std::vector<iovec> iov_;
  std::vector<sockaddr_in> names_;
  std::vector<mmsghdr> msgs_;
  uint64_t start_ = 0, deadline_ = 0;
};

}  // namespace

void RunPeer(EndpointState& s, const std::function<void()>& ready) {
  Peer p(s);
  p.Run(ready);
}

}  // namespace macvtap
