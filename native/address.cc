#include "address.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_addr.h>
#include <linux/rtnetlink.h>
#include <string.h>
#include <sys/socket.h>

#include "args.h"
#include "async.h"
#include "errors.h"

namespace macvtap {

void AddrAdd(const LinkKey& key, const AddressRequest& req, const NetnsRef& ns) {
  NetlinkLease sock = AcquireNetlink(ns);
  int index = ResolveIndex(*sock, key);
  MessageBuilder m(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL);
  ifaddrmsg ifa{};
  ifa.ifa_family = static_cast<uint8_t>(req.family);
  ifa.ifa_prefixlen = req.prefixlen;
  ifa.ifa_scope = RT_SCOPE_UNIVERSE;
  ifa.ifa_index = static_cast<uint32_t>(index);
  m.AppendHeader(&ifa, sizeof ifa);
  // IFA_LOCAL is the interface's own address; IFA_ADDRESS is the peer address, equal to it on broadcast links
  // (what `ip addr add` sends).
  m.Put(IFA_LOCAL, req.address.data(), req.address.size());
  m.Put(IFA_ADDRESS, req.address.data(), req.address.size());
  if (req.family == AF_INET && req.prefixlen < 31) {
    // `ip addr add … brd +`: the subnet's all-ones address (/31 and /32 have none).
    uint32_t a;
    memcpy(&a, req.address.data(), 4);
    uint32_t host_mask = req.prefixlen == 0 ? 0xffffffffu : (0xffffffffu >> req.prefixlen);
    uint32_t brd = htonl(ntohl(a) | host_mask);
    m.Put(IFA_BROADCAST, &brd, 4);
  }
  sock->Ack(m, key.Describe());
}

/**
 * addrAdd(key, { family, address, prefixlen }, ns) → Promise<void>. Equivalent to `ip addr add ADDR/LEN dev DEV`
 * (IPv4 also gets `brd +`).
 * errno contract: 'RTM_GETLINK' ENODEV (device = name) no such link (when given by name); 'RTM_NEWADDR' (device =
 * the key): EEXIST the address is already there; ENODEV no such ifindex; EINVAL bad prefix (kernel); EPERM no
 * CAP_NET_ADMIN; 'open'/'setns' with path when the namespace is unusable.
 */
Napi::Value JsAddrAdd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  LinkKey key = ReadLinkKey(info[0]);
  Napi::Object o = ReqObject(info[1], "address");
  AddressRequest req;
  int64_t family = ReqInt(o.Get("family"), "family", 4, 6);
  if (family != 4 && family != 6) ThrowRangeError(env, "\"family\" must be 4 or 6");
  req.family = family == 4 ? AF_INET : AF_INET6;
  std::string text = ReqString(o.Get("address"), "address");
  req.address = ParseIp(env, req.family, text, "address");
  req.prefixlen = static_cast<uint8_t>(ReqInt(o.Get("prefixlen"), "prefixlen", 0, family == 4 ? 32 : 128));
  NetnsRef ns = ReadNetns(info[2], "ns");
  return PromiseWorker<Nothing>::Start(
      env, "macvtap:addrAdd", [key, req, ns]() { AddrAdd(key, req, ns); return Nothing{}; },
      [](Napi::Env e, Nothing&) -> Napi::Value { return e.Undefined(); });
}

}  // namespace macvtap
