#include "route.h"

#include <errno.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>

#include "args.h"
#include "async.h"
#include "errors.h"

namespace macvtap {

void RouteAdd(const LinkKey& key, const RouteRequest& req, const NetnsRef& ns) {
  NetlinkLease sock = AcquireNetlink(ns);
  int index = ResolveIndex(*sock, key);
  MessageBuilder m(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL);
  rtmsg rtm{};
  rtm.rtm_family = static_cast<uint8_t>(req.family);
  rtm.rtm_dst_len = req.dst_len;
  rtm.rtm_table = RT_TABLE_MAIN;
  rtm.rtm_protocol = RTPROT_BOOT;  // what `ip route add` sends
  // Without a gateway the destination is on the link itself (`ip route add DST dev LINK` → scope link).
  rtm.rtm_scope = req.gateway ? RT_SCOPE_UNIVERSE : RT_SCOPE_LINK;
  rtm.rtm_type = RTN_UNICAST;
  m.AppendHeader(&rtm, sizeof rtm);
  if (req.dst_len > 0) m.Put(RTA_DST, req.dst.data(), req.dst.size());
  if (req.gateway) m.Put(RTA_GATEWAY, req.gateway->data(), req.gateway->size());
  m.PutU32(RTA_OIF, static_cast<uint32_t>(index));
  sock->Ack(m, key.Describe());
}

/**
 * routeAdd(key, { family, dst, dstLen, gateway? }, ns) → Promise<void>. Equivalent to `ip route add DST/LEN [via GW]
 * dev DEV` (main table, protocol boot).
 * errno contract: 'RTM_GETLINK' ENODEV (device = name) no such link (when given by name); 'RTM_NEWROUTE' (device =
 * the key): EEXIST the route is already there; ENETUNREACH/EINVAL the gateway is not reachable through the link
 * (e.g. the link is down or has no address in its subnet); ENODEV no such ifindex; EPERM no CAP_NET_ADMIN;
 * 'open'/'setns' with path when the namespace is unusable.
 */
Napi::Value JsRouteAdd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  LinkKey key = ReadLinkKey(info[0]);
  Napi::Object o = ReqObject(info[1], "route");
  RouteRequest req;
  int64_t family = ReqInt(o.Get("family"), "family", 4, 6);
  if (family != 4 && family != 6) ThrowRangeError(env, "\"family\" must be 4 or 6");
  req.family = family == 4 ? AF_INET : AF_INET6;
  req.dst = ParseIp(env, req.family, ReqString(o.Get("dst"), "dst"), "dst");
  req.dst_len = static_cast<uint8_t>(ReqInt(o.Get("dstLen"), "dstLen", 0, family == 4 ? 32 : 128));
  if (auto gw = OptString(o, "gateway")) req.gateway = ParseIp(env, req.family, *gw, "gateway");
  NetnsRef ns = ReadNetns(info[2], "ns");
  return PromiseWorker<Nothing>::Start(
      env, "macvtap:routeAdd", [key, req, ns]() { RouteAdd(key, req, ns); return Nothing{}; },
      [](Napi::Env e, Nothing&) -> Napi::Value { return e.Undefined(); });
}

}  // namespace macvtap
