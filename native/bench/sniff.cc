#include "sniff.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <vector>

#include "args.h"
#include "async.h"
#include "errors.h"

#ifndef PACKET_IGNORE_OUTGOING
#define PACKET_IGNORE_OUTGOING 23  // Linux 4.20 uapi; older headers lack it
#endif

namespace macvtap {

namespace {

int64_t MonoMs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

}  // namespace

PacketSocketResult PacketOpen(const std::string& ifname, const NetnsRef& ns) {
  PacketSocketResult r;
  {
    // A packet socket belongs to the namespace it is created in, and the name is resolved there too.
    NetnsGuard guard(ns);
    unsigned index = if_nametoindex(ifname.c_str());
    if (index == 0) ThrowSys(errno, "if_nametoindex", {}, ifname);
    r.ifindex = static_cast<int>(index);
    // Protocol 0: the socket receives nothing until bind() names the link, so no frame of another link slips in.
    int fd = ::socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) ThrowSys(errno, "socket(AF_PACKET)", {}, ifname);
    r.fds.Add(fd);
    // Our own transmissions (the peer's replies) are not what the probe waits for.
    int one = 1;
    if (::setsockopt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof one) < 0) {
      ThrowSys(errno, "setsockopt(PACKET_IGNORE_OUTGOING)", {}, ifname);
    }
    sockaddr_ll sll{};
    sll.sll_family = AF_PACKET;
    sll.sll_protocol = htons(ETH_P_ALL);
    sll.sll_ifindex = r.ifindex;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&sll), sizeof sll) < 0) ThrowSys(errno, "bind", {}, ifname);
  }
  CheckThreadNetns();
  return r;
}

/**
 * packetOpen(ifname, ns) → Promise<{ fd, ifindex }>: an AF_PACKET/SOCK_RAW socket made inside `ns` and bound to
 * `ifname` for every ethertype, non-blocking, close-on-exec, with PACKET_IGNORE_OUTGOING (it sees what arrives on the
 * link, not what is sent from it, whatever the destination MAC). `write()` on it (tapWrite) sends a whole Ethernet
 * frame out of the link. The fd is owned by the addon (fdClose).
 * errno contract: 'if_nametoindex' ENODEV no such link in `ns`; 'socket(AF_PACKET)' EPERM without CAP_NET_RAW,
 * EAFNOSUPPORT no packet sockets; 'setsockopt(PACKET_IGNORE_OUTGOING)' ENOPROTOOPT before Linux 4.20; 'bind' ENODEV
 * the link went away; 'setns'/'open' with the path when the namespace is unusable.
 */
Napi::Value JsPacketOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string ifname = ReqString(info[0], "ifname");
  if (ifname.empty() || ifname.size() >= IFNAMSIZ || ifname.find('\0') != std::string::npos) {
    ThrowTypeError(env, "The \"ifname\" argument must be 1-15 bytes");
  }
  NetnsRef ns = ReadNetns(info[1], "ns");
  std::shared_ptr<Ownership> owner = Ownership::Of(env);
  return PromiseWorker<PacketSocketResult>::Start(
      env, "macvtap:packetOpen", [ifname, ns]() { return PacketOpen(ifname, ns); },
      [owner](Napi::Env e, PacketSocketResult& r) -> Napi::Value {
        Napi::Object o = Napi::Object::New(e);
        std::vector<int> fds = r.fds.Claim(*owner);
        o.Set("fd", fds.at(0));
        o.Set("ifindex", r.ifindex);
        return o;
      });
}

/**
 * frameCapture(fd, marker, want, timeoutMs, maxLength) → Promise<Buffer[]>: reads frames from `fd` (a packet socket
 * or a tap queue, blocking or not) until `want` of them contain the bytes of `marker` or `timeoutMs` has passed, and
 * resolves the matching frames (each cut to `maxLength`; a tap queue's vnet header included). Frames without the
 * marker are read and dropped: this is a bounded wait for one probe's frames, not a general capture.
 * errno contract: 'poll' EBADF (as POLLNVAL) the fd is not open; 'read' EIO/EBADFD the device is gone or down.
 */
Napi::Value JsFrameCapture(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = static_cast<int>(ReqInt(info[0], "fd", 0, INT32_MAX));
  if (!info[1].IsBuffer()) ThrowTypeError(env, "The \"marker\" argument must be a Buffer");
  Napi::Buffer<uint8_t> m = info[1].As<Napi::Buffer<uint8_t>>();
  if (m.Length() == 0 || m.Length() > 256) ThrowRangeError(env, "The \"marker\" argument must be 1-256 bytes");
  std::vector<uint8_t> marker(m.Data(), m.Data() + m.Length());
  size_t want = static_cast<size_t>(ReqInt(info[2], "want", 1, 1 << 16));
  int64_t timeout = ReqInt(info[3], "timeoutMs", 0, 600000);
  size_t max_len = static_cast<size_t>(ReqInt(info[4], "maxLength", 1, 16 * 1024 * 1024));
  using Frames = std::vector<std::vector<uint8_t>>;
  return PromiseWorker<Frames>::Start(
      env, "macvtap:frameCapture",
      [fd, marker, want, timeout, max_len]() -> Frames {
        Frames out;
        const int64_t deadline = MonoMs() + timeout;
        std::vector<uint8_t> buf(65550 > max_len ? 65550 : max_len);
        bool is_socket = true;
        while (out.size() < want) {
          int64_t left = deadline - MonoMs();
          if (left < 0) left = 0;
          pollfd p{fd, POLLIN, 0};
          int rc = ::poll(&p, 1, static_cast<int>(left));
          if (rc < 0) {
            if (errno == EINTR) continue;
            ThrowSys(errno, "poll");
          }
          if (rc == 0) break;
          if (p.revents & POLLNVAL) ThrowSys(EBADF, "poll", {}, {}, "fd " + std::to_string(fd));
          // A socket is drained before polling again (MSG_DONTWAIT gives EAGAIN when empty); a tap queue, which may
          // be a blocking fd, gives one frame per poll.
          for (;;) {
            ssize_t n = is_socket ? ::recv(fd, buf.data(), buf.size(), MSG_DONTWAIT) : ::read(fd, buf.data(), buf.size());
            if (n < 0 && errno == ENOTSOCK) {
              is_socket = false;
              continue;
            }
            if (n < 0) {
              if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) break;
              ThrowSys(errno, "read");
            }
            const uint8_t* begin = buf.data();
            const size_t len = static_cast<size_t>(n);
            if (len > 0 && memmem(begin, len, marker.data(), marker.size()) != nullptr) {
              out.emplace_back(begin, begin + (len > max_len ? max_len : len));
              if (out.size() >= want) break;
            }
            if (!is_socket || MonoMs() >= deadline) break;
          }
          if (MonoMs() >= deadline) break;
        }
        return out;
      },
      [](Napi::Env e, Frames& frames) -> Napi::Value {
        Napi::Array arr = Napi::Array::New(e, frames.size());
        for (size_t i = 0; i < frames.size(); i++) {
          arr.Set(static_cast<uint32_t>(i), Napi::Buffer<uint8_t>::Copy(e, frames[i].data(), frames[i].size()));
        }
        return arr;
      });
}

}  // namespace macvtap
