// The guest endpoint: what a VM's virtio-net backend (QEMU) would see on a tap fd, without a guest OS. It answers ARP
// for its IP, and echoes / sinks / generates UDP. Echo keeps checksums valid by construction (SwapUdp4) and, with a
// vnet header, echoes frames marked NEEDS_CSUM with their partial checksum and header as they came (the kernel or
// the receiving stack completes it), rather than completing the checksum itself.
//
// Block mode sleeps in read() on the blocking tap fd, as the minimal pair (minpair.c) does: a ppoll() on the fd and
// the stop eventfd before each read cost ≈1.3 µs more per round trip on a 2-vCPU VM (12.2 → 13.5 µs macvtap-bridge,
// 15.2 → 16.5 µs tap+linuxbridge, same-vCPU p50; an epoll set made once costs the same). A tap fd cannot be shut
// down to wake such a read, so stop() sends the thread kWakeSignal (handler: a no-op installed without SA_RESTART,
// so read() returns EINTR), and a per-thread timer sends the same signal every kTickNs: it ends the run at its
// deadline, and bounds the wait when stop()'s signal lands between the loop's check and the read. `generate` (it
// sends while it waits) keeps ppoll, and so does every mode if another part of the process handles the signal.
//
// `generate` in block mode writes on a non-blocking fd and, when the device has no room (EAGAIN), waits in ppoll() for
// POLLOUT. A blocking write() is not safe on a macvtap whose transmit path is shaped (setBandwidth, libvirt's
// <bandwidth>): frames a qdisc holds stay charged to the tap socket, the writer sleeps in sock_alloc_send_pskb, and
// tap_sock_write_space wakes only sleepers that poll() announced (SOCKWQ_ASYNC_NOSPACE, set by tap_poll alone), so
// the write slept until some frame for the guest happened to wake the queue — and stop() could not end it.
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <optional>
#include <vector>

// glibc before 2.41 names the SIGEV_THREAD_ID target only by its union member.
#ifndef sigev_notify_thread_id
#define sigev_notify_thread_id _sigev_un._tid
#endif

#include "endpoint.h"
#include "frame.h"

namespace macvtap {

namespace {

constexpr size_t kRxBuffer = 65536 + 64;
constexpr long kTickNs = 50'000'000;

void NoOp(int) {}

/** Installs kWakeSignal's no-op handler (once per process); false when something else already handles it. */
bool WakeSignalUsable() {
  static const bool usable = [] {
    struct sigaction old{};
    if (::sigaction(WakeSignal(), nullptr, &old) < 0) return false;
    if ((old.sa_flags & SA_SIGINFO) || old.sa_handler != SIG_DFL) return false;
    struct sigaction sa{};
    sa.sa_handler = NoOp;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;  // no SA_RESTART: the interrupted read() returns EINTR
    return ::sigaction(WakeSignal(), &sa, nullptr) == 0;
  }();
  return usable;
}

/** A timer that sends kWakeSignal to the calling thread every kTickNs while it exists. */
class WakeTimer {
 public:
  WakeTimer() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, WakeSignal());
    int rc = ::pthread_sigmask(SIG_UNBLOCK, &set, nullptr);
    if (rc != 0) ThrowSys(rc, "pthread_sigmask");
    sigevent sev{};
    sev.sigev_notify = SIGEV_THREAD_ID;
    sev.sigev_signo = WakeSignal();
    sev.sigev_notify_thread_id = ::gettid();
    if (::timer_create(CLOCK_MONOTONIC, &sev, &id_) < 0) ThrowSys(errno, "timer_create");
    itimerspec its{};
    its.it_value.tv_nsec = kTickNs;
    its.it_interval.tv_nsec = kTickNs;
    if (::timer_settime(id_, 0, &its, nullptr) < 0) {
      int err = errno;
      ::timer_delete(id_);
      ThrowSys(err, "timer_settime");
    }
  }
  ~WakeTimer() { ::timer_delete(id_); }
  WakeTimer(const WakeTimer&) = delete;
  WakeTimer& operator=(const WakeTimer&) = delete;

 private:
  timer_t id_{};
};

// Sets or clears O_NONBLOCK as the loop needs (or leaves it), and restores the fd's file status flags (shared with
// the TapQueue that opened it) when the loop ends.
class FlagsGuard {
 public:
  enum class NonBlock { kKeep, kSet, kClear };
  FlagsGuard(int fd, NonBlock nb) : fd_(fd) {
    orig_ = ::fcntl(fd, F_GETFL);
    if (orig_ < 0) ThrowSys(errno, "fcntl", {}, {}, "F_GETFL on fd " + std::to_string(fd));
    int want = nb == NonBlock::kSet ? orig_ | O_NONBLOCK : nb == NonBlock::kClear ? orig_ & ~O_NONBLOCK : orig_;
    if (want != orig_) {
      if (::fcntl(fd, F_SETFL, want) < 0) ThrowSys(errno, "fcntl", {}, {}, "F_SETFL O_NONBLOCK");
      changed_ = true;
    }
  }
  ~FlagsGuard() {
    if (changed_) ::fcntl(fd_, F_SETFL, orig_);
  }

 private:
  int fd_;
  int orig_ = 0;
  bool changed_ = false;
};

bool IsSoftTxError(int err) {
  return err == EAGAIN || err == EWOULDBLOCK || err == ENOBUFS || err == EIO || err == ENETDOWN;
}

class Guest {
 public:
  explicit Guest(EndpointState& s)
      : s_(s), g_(s.guest_cfg), fd_(s.fd.get()), vh_(static_cast<size_t>(g_.vnet_hdr_size)), rx_(kRxBuffer),
        tx_(kRxBuffer) {
    memcpy(id_.mac, g_.mac, 6);
    id_.ip = g_.ip;
    id_.echo = g_.mode == GuestConfig::Mode::kEcho || g_.mode == GuestConfig::Mode::kRawEcho;
    id_.raw_echo = g_.mode == GuestConfig::Mode::kRawEcho;
    id_.vnet_hdr = vh_;
  }

  void Run(const std::function<void()>& ready) {
    bool busy = s_.poll == PollMode::kBusy;
    bool generate = g_.mode == GuestConfig::Mode::kGenerate;
    bool sleep_in_read = !busy && !generate && WakeSignalUsable();
    // Busy mode spins on a non-blocking fd, sleep_in_read needs a blocking one; generate writes on a non-blocking one
    // (block mode then waits for POLLOUT); ppoll works with either.
    FlagsGuard flags(fd_, busy || generate ? FlagsGuard::NonBlock::kSet
                               : sleep_in_read ? FlagsGuard::NonBlock::kClear : FlagsGuard::NonBlock::kKeep);
    wait_for_room_ = !busy;
    size_t gen_len = 0;
    if (g_.mode == GuestConfig::Mode::kGenerate) gen_len = BuildGenerated();
    std::optional<WakeTimer> timer;
    if (sleep_in_read) {
      timer.emplace();
      s_.loop_thread = ::pthread_self();
      // From here stop() signals us; a stop() before this is seen by the loop's first check.
      s_.signal_wake.store(true, std::memory_order_release);
    }
    ready();
    uint64_t start = MonoNs();
    uint64_t deadline = start + s_.duration_ns;
    uint64_t interval = g_.rate_pps ? 1'000'000'000ull / g_.rate_pps : 0;
    uint64_t next_send = start;
    EndpointStats& st = s_.stats;
    for (;;) {
      if (s_.stop.load(std::memory_order_relaxed)) break;
      uint64_t now = MonoNs();
      if (now >= deadline) break;
      if (g_.mode == GuestConfig::Mode::kGenerate) {
        // Generated frames only: ARP replies sent meanwhile are not part of the count.
        if (g_.count && generated_ >= g_.count) break;
        if (interval == 0 || now >= next_send) {
          if (!Send(gen_len, deadline)) continue;  // waited for room until stop() or the deadline
          ++generated_;
          next_send += interval;
          // Unpaced: look for ARP now and then without a syscall per frame.
          if (interval == 0 && (st.tx_packets & 63) == 0) ReadOne();
          continue;
        }
        // Paced: wait for input until the next send is due.
        if (busy) {
          ReadOne();
        } else if (WaitFd(s_, fd_, false, next_send < deadline ? next_send : deadline) == Wait::kReady) {
          ReadOne();
        }
        continue;
      }
      if (busy) {
        ReadOne();
      } else if (sleep_in_read) {
        ReadBlocking();
      } else {
        Wait w = WaitFd(s_, fd_, false, deadline);
        if (w != Wait::kReady) break;
        ReadOne();
      }
      uint64_t done = g_.mode == GuestConfig::Mode::kSink ? st.rx_packets : st.tx_packets - st.arp_replies;
      if (g_.count && done >= g_.count) break;
    }
    st.elapsed_ns = MonoNs() - start;
  }

 private:
  // The frame `generate` sends, built once: the payload never changes, so neither do the checksums.
  size_t BuildGenerated() {
    frame::UdpSpec spec;
    memcpy(spec.src_mac, g_.mac, 6);
    memcpy(spec.dst_mac, g_.dst_mac, 6);
    spec.src_ip = g_.ip;
    spec.dst_ip = g_.dst_ip;
    spec.src_port = g_.src_port;
    spec.dst_port = g_.dst_port;
    bool gso = g_.gso_size > 0;
    size_t n = frame::BuildUdp4(tx_.data() + vh_, tx_.size() - vh_, spec, g_.payload_size, gso);
    if (n == 0) ThrowSys(EMSGSIZE, "generate", {}, {}, "payload does not fit one frame");
    if (vh_) {
      frame::VnetHdr h;
      if (gso) {
        // A UDP GSO super-frame: the kernel cuts it into gso_size-byte datagrams and completes each checksum.
        h.flags = frame::kVnetNeedsCsum;
        h.gso_type = frame::kGsoUdpL4;
        h.hdr_len = static_cast<uint16_t>(frame::kEthLen + frame::kIpv4Len + frame::kUdpLen);
        h.gso_size = static_cast<uint16_t>(g_.gso_size);
        h.csum_start = static_cast<uint16_t>(frame::kEthLen + frame::kIpv4Len);
        h.csum_offset = 6;
      }
      frame::WriteVnet(tx_.data(), tx_.size(), vh_, h);
    }
    return vh_ + n;
  }

  // Sends the generated frame; false when it was not sent because the run ended while block mode waited for room.
  // A refusal other than "no room" (ENOBUFS, a down device) counts as a tx error and is not retried.
  bool Send(size_t len, uint64_t deadline) {
    for (;;) {
      ssize_t n = ::write(fd_, tx_.data(), len);
      if (n >= 0) {
        ++s_.stats.tx_packets;
        s_.stats.tx_bytes += len - vh_;
        return true;
      }
      if (errno == EINTR) continue;
      if ((errno == EAGAIN || errno == EWOULDBLOCK) && wait_for_room_) {
        if (WaitFd(s_, fd_, true, deadline) != Wait::kReady) return false;
        continue;
      }
      if (!IsSoftTxError(errno)) ThrowSys(errno, "write");
      ++s_.stats.tx_errors;
      return true;
    }
  }

  // One read; false when nothing was there (EAGAIN).
  bool ReadOne() {
    ssize_t n;
    do n = ::read(fd_, rx_.data(), rx_.size());
    while (n < 0 && errno == EINTR);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return false;
      ThrowSys(errno, "read");
    }
    Handle(static_cast<size_t>(n));
    return true;
  }

  // One blocking read; returns without a frame when a signal (stop(), the timer) interrupted it.
  void ReadBlocking() {
    ssize_t n = ::read(fd_, rx_.data(), rx_.size());
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) return;
      ThrowSys(errno, "read");
    }
    Handle(static_cast<size_t>(n));
  }

  void Handle(size_t n) {
    EndpointStats& st = s_.stats;
    frame::GuestVerdict v = frame::GuestStep(rx_.data(), n, id_, tx_arp_, sizeof tx_arp_);
    switch (v.action) {
      case frame::GuestAction::kIgnore:
        ++st.ignored;
        return;
      case frame::GuestAction::kArpReply: {
        ssize_t w;
        do w = ::write(fd_, tx_arp_, v.reply_len);
        while (w < 0 && errno == EINTR);
        if (w < 0) {
          if (!IsSoftTxError(errno)) ThrowSys(errno, "write");
          ++st.tx_errors;
          return;
        }
        ++st.arp_replies;
        ++st.tx_packets;
        st.tx_bytes += v.reply_len - vh_;
        return;
      }
      case frame::GuestAction::kReceived:
      case frame::GuestAction::kEcho:
        ++st.rx_packets;
        st.rx_bytes += v.frame_len;
        if (v.action == frame::GuestAction::kEcho) WriteRx(n);
        return;
    }
  }

  // Writes the (rewritten) received frame back, vnet header and all.
  void WriteRx(size_t n) {
    ssize_t w;
    do w = ::write(fd_, rx_.data(), n);
    while (w < 0 && errno == EINTR);
    if (w < 0) {
      if (!IsSoftTxError(errno)) ThrowSys(errno, "write");
      ++s_.stats.tx_errors;
      return;
    }
    ++s_.stats.tx_packets;
    s_.stats.tx_bytes += n - vh_;
  }

  EndpointState& s_;
  const GuestConfig& g_;
  int fd_;
  size_t vh_;
  std::vector<uint8_t> rx_;
  std::vector<uint8_t> tx_;
  frame::GuestIdentity id_;
  uint8_t tx_arp_[128] = {0};
  uint64_t generated_ = 0;
  // generate in block mode: on EAGAIN wait in ppoll() for POLLOUT and write again (busy mode counts a tx error).
  bool wait_for_room_ = false;
};

}  // namespace

int WakeSignal() { return SIGRTMAX - 1; }

void RunGuest(EndpointState& s, const std::function<void()>& ready) {
  Guest g(s);
  g.Run(ready);
}

}  // namespace macvtap
