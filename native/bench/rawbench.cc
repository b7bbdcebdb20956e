#include "rawbench.h"

#include <errno.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <vector>

#include "args.h"
#include "errors.h"
#include "fd.h"

namespace macvtap {

namespace {

uint64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<uint64_t>(ts.tv_nsec);
}

struct GetLinkRequest {
  nlmsghdr h;
  ifinfomsg ifi;
  nlattr mask_hdr;
  uint32_t mask;
};

}  // namespace

/**
 * rawGetLinkLoop(ifindex, count, ns) → Float64Array of `count` per-call times in ns: a plain NETLINK_ROUTE socket
 * made in `ns`, then `count` × (send RTM_GETLINK of `ifindex` with IFLA_EXT_MASK RTEXT_FILTER_SKIP_STATS — the
 * request linkGet sends — and recv the reply), each timed with CLOCK_MONOTONIC. Synchronous: a benchmark tool, not
 * API. Replies are checked only for being a RTM_NEWLINK (an error reply throws with its errno, syscall RTM_GETLINK).
 */
Napi::Value JsRawGetLinkLoop(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int ifindex = static_cast<int>(ReqInt(info[0], "ifindex", 1, INT32_MAX));
  size_t count = static_cast<size_t>(ReqInt(info[1], "count", 1, 10'000'000));
  NetnsRef ns = ReadNetns(info[2], "ns");
  FileDescriptor fd;
  {
    NetnsGuard guard(ns);
    int s = ::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (s < 0) throw MakeError(env, SysError{errno, "socket", {}, {}, {}, {}});
    fd.reset(s);
  }
  GetLinkRequest req;
  memset(&req, 0, sizeof req);
  req.h.nlmsg_len = sizeof req;
  req.h.nlmsg_type = RTM_GETLINK;
  req.h.nlmsg_flags = NLM_F_REQUEST;
  req.ifi.ifi_family = AF_UNSPEC;
  req.ifi.ifi_index = ifindex;
  req.mask_hdr.nla_len = NLA_HDRLEN + sizeof(uint32_t);
  req.mask_hdr.nla_type = IFLA_EXT_MASK;
  req.mask = RTEXT_FILTER_SKIP_STATS;
  std::vector<uint8_t> buf(32768);
  Napi::Float64Array out = Napi::Float64Array::New(env, count);
  for (size_t i = 0; i < count; ++i) {
    req.h.nlmsg_seq = static_cast<uint32_t>(i + 1);
    uint64_t t0 = NowNs();
    if (::send(fd.get(), &req, sizeof req, 0) < 0) throw MakeError(env, SysError{errno, "send", {}, {}, {}, {}});
    ssize_t n;
    do n = ::recv(fd.get(), buf.data(), buf.size(), 0);
    while (n < 0 && errno == EINTR);
    uint64_t t1 = NowNs();
    if (n < static_cast<ssize_t>(sizeof(nlmsghdr))) throw MakeError(env, SysError{n < 0 ? errno : EBADMSG, "recv", {}, {}, {}, {}});
    nlmsghdr h;
    memcpy(&h, buf.data(), sizeof h);
    if (h.nlmsg_type == NLMSG_ERROR && static_cast<size_t>(n) >= NLMSG_LENGTH(sizeof(nlmsgerr))) {
      nlmsgerr e;
      memcpy(&e, buf.data() + NLMSG_HDRLEN, sizeof e);
      throw MakeError(env, SysError{-e.error, "RTM_GETLINK", {}, "ifindex " + std::to_string(ifindex), {}, {}});
    }
    if (h.nlmsg_type != RTM_NEWLINK) throw MakeError(env, SysError{EBADMSG, "RTM_GETLINK", {}, {}, {}, {}});
    out[i] = static_cast<double>(t1 - t0);
  }
  return out;
}

}  // namespace macvtap
