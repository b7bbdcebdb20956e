#include "tc.h"

#include <linux/netlink.h>
#include <linux/pkt_sched.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>

#include <string>
#include <vector>

#include "args.h"
#include "async.h"
#include "errors.h"
#include "link.h"
#include "netlink.h"
#include "netns.h"
#include "tcmsg.h"

namespace macvtap {

namespace {

/** One step of a tcApply plan; lib/bandwidth.ts decides the plan, this only encodes it. */
struct TcOp {
  enum class Kind { kHtbQdisc, kIngressQdisc, kDeleteQdisc, kHtbClass, kPoliceFilter, kDeleteFilter } kind;
  bool replace = false;  // qdisc: NLM_F_REPLACE instead of NLM_F_EXCL; class: NLM_F_CREATE (else change in place)
  uint32_t parent = 0, handle = 0, defcls = 0;
  uint16_t prio = 0;
  HtbClassRequest htb;
  PoliceRequest police;
};

struct TcDumpResult {
  int ifindex = 0;
  std::vector<TcObject> qdiscs, classes, filters;
};

std::vector<TcObject> DumpKind(NetlinkSocket& sock, uint16_t type, int ifindex, uint32_t parent) {
  MessageBuilder m(type, 0);
  tcmsg t{};
  t.tcm_family = AF_UNSPEC;
  t.tcm_ifindex = ifindex;
  t.tcm_parent = parent;
  m.AppendHeader(&t, sizeof t);
  std::vector<TcObject> out;
  for (const auto& msg : sock.Dump(m)) {
    TcObject o;
    // The qdisc dump lists every device's qdiscs: keep this device's.
    if (ParseTcMessage(msg.data(), msg.size(), &o) && o.ifindex == ifindex) out.push_back(std::move(o));
  }
  return out;
}

TcDumpResult TcDump(const LinkKey& key, const NetnsRef& ns) {
  NetlinkLease sock = AcquireNetlink(ns);
  TcDumpResult r;
  r.ifindex = ResolveIndex(*sock, key);
  r.qdiscs = DumpKind(*sock, RTM_GETQDISC, r.ifindex, 0);
  r.classes = DumpKind(*sock, RTM_GETTCLASS, r.ifindex, 0);
  bool has_ingress = false;
  for (const TcObject& q : r.qdiscs) has_ingress |= q.parent == TC_H_INGRESS;
  if (has_ingress) r.filters = DumpKind(*sock, RTM_GETTFILTER, r.ifindex, kTcIngressHandle);
  return r;
}

void TcApply(const LinkKey& key, const std::vector<TcOp>& ops, const NetnsRef& ns) {
  NetlinkLease sock = AcquireNetlink(ns);
  int ifindex = ResolveIndex(*sock, key);
  std::string device = key.Describe();
  for (const TcOp& op : ops) {
    switch (op.kind) {
      case TcOp::Kind::kHtbQdisc: {
        MessageBuilder m(RTM_NEWQDISC, NLM_F_CREATE | (op.replace ? NLM_F_REPLACE : NLM_F_EXCL));
        BuildHtbQdisc(m, ifindex, op.handle, op.defcls);
        sock->Ack(m, device);
        break;
      }
      case TcOp::Kind::kIngressQdisc: {
        MessageBuilder m(RTM_NEWQDISC, NLM_F_CREATE | NLM_F_EXCL);
        BuildIngressQdisc(m, ifindex);
        sock->Ack(m, device);
        break;
      }
      case TcOp::Kind::kDeleteQdisc: {
        MessageBuilder m(RTM_DELQDISC, 0);
        BuildDeleteQdisc(m, ifindex, op.parent, op.handle);
        sock->Ack(m, device);
        break;
      }
      case TcOp::Kind::kHtbClass: {
        MessageBuilder m(RTM_NEWTCLASS, op.replace ? NLM_F_CREATE : 0);
        BuildHtbClass(m, ifindex, op.parent, op.handle, op.htb);
        sock->Ack(m, device);
        break;
      }
      case TcOp::Kind::kPoliceFilter: {
        MessageBuilder m(RTM_NEWTFILTER, NLM_F_CREATE | NLM_F_EXCL);
        BuildPoliceFilter(m, ifindex, op.parent, op.prio, op.handle, op.police);
        sock->Ack(m, device);
        break;
      }
      case TcOp::Kind::kDeleteFilter: {
        MessageBuilder m(RTM_DELTFILTER, 0);
        BuildDeleteFilter(m, ifindex, op.parent, op.prio);
        sock->Ack(m, device);
        break;
      }
    }
  }
}

Napi::Value TcObjectToJs(Napi::Env env, const TcObject& o) {
  Napi::Object r = Napi::Object::New(env);
  r.Set("kind", o.kind);
  r.Set("handle", Napi::Number::New(env, o.handle));
  r.Set("parent", Napi::Number::New(env, o.parent));
  if (o.type == RTM_NEWTFILTER) {
    r.Set("prio", Napi::Number::New(env, o.prio));
    r.Set("protocol", Napi::Number::New(env, o.protocol));
  }
  if (o.htb_defcls) r.Set("defcls", Napi::Number::New(env, *o.htb_defcls));
  auto bucket = [&](const TcBucket& b) {
    Napi::Object x = Napi::Object::New(env);
    x.Set("rate", Napi::Number::New(env, static_cast<double>(b.rate)));
    x.Set("burst", Napi::Number::New(env, b.burst));
    return x;
  };
  if (o.htb_class) {
    r.Set("rate", bucket(o.htb_class->rate));
    r.Set("ceil", bucket(o.htb_class->ceil));
  }
  if (o.police) {
    Napi::Object p = bucket(o.police->rate);
    p.Set("peak", Napi::Number::New(env, static_cast<double>(o.police->peak)));
    p.Set("mtu", Napi::Number::New(env, o.police->mtu));
    p.Set("exceed", Napi::Number::New(env, o.police_exceed));
    r.Set("police", p);
  }
  return r;
}

Napi::Array ListToJs(Napi::Env env, const std::vector<TcObject>& list) {
  Napi::Array a = Napi::Array::New(env, list.size());
  for (size_t i = 0; i < list.size(); ++i) a.Set(static_cast<uint32_t>(i), TcObjectToJs(env, list[i]));
  return a;
}

constexpr int64_t kMaxRate = INT64_C(1) << 53;  // bytes/s; lib/ allows far less (libvirt's 32-bit KB/s)

TcOp ReadOp(const Napi::Value& v) {
  Napi::Object o = ReqObject(v, "op");
  std::string kind = ReqString(o.Get("op"), "op.op");
  TcOp op{};
  auto u32 = [&](const char* k) { return static_cast<uint32_t>(ReqInt(o.Get(k), k, 0, UINT32_MAX)); };
  auto rate = [&](const char* k) { return static_cast<uint64_t>(ReqInt(o.Get(k), k, 1, kMaxRate)); };
  if (kind == "htbQdisc") {
    op.kind = TcOp::Kind::kHtbQdisc;
    op.handle = static_cast<uint32_t>(ReqInt(o.Get("handle"), "handle", 1, 0xffff));
    op.defcls = u32("defcls");
    op.replace = ReqBool(o.Get("replace"), "replace");
  } else if (kind == "ingressQdisc") {
    op.kind = TcOp::Kind::kIngressQdisc;
  } else if (kind == "deleteQdisc") {
    op.kind = TcOp::Kind::kDeleteQdisc;
    op.parent = u32("parent");
    op.handle = u32("handle");
  } else if (kind == "htbClass") {
    op.kind = TcOp::Kind::kHtbClass;
    op.parent = u32("parent");
    op.handle = u32("classid");
    op.replace = ReqBool(o.Get("create"), "create");
    op.htb.rate = {rate("rate"), u32("burst")};
    op.htb.ceil = {rate("ceil"), u32("cburst")};
  } else if (kind == "policeFilter") {
    op.kind = TcOp::Kind::kPoliceFilter;
    op.parent = u32("parent");
    op.prio = static_cast<uint16_t>(ReqInt(o.Get("prio"), "prio", 1, 0xffff));
    op.handle = u32("handle");
    op.police.rate = {rate("rate"), u32("burst")};
    op.police.peak = static_cast<uint64_t>(ReqInt(o.Get("peak"), "peak", 0, kMaxRate));
    op.police.mtu = u32("mtu");
  } else if (kind == "deleteFilter") {
    op.kind = TcOp::Kind::kDeleteFilter;
    op.parent = u32("parent");
    op.prio = static_cast<uint16_t>(ReqInt(o.Get("prio"), "prio", 1, 0xffff));
  } else {
    ThrowTypeError(v.Env(), "Unknown tc op \"" + kind + "\"");
  }
  return op;
}

}  // namespace

/**
 * tcDump(key, ns) → Promise<{ ifindex, qdiscs, classes, filters }>. Equivalent to `tc qdisc show dev DEV; tc class
 * show dev DEV; tc filter show dev DEV ingress` (filters only when an ingress or clsact qdisc exists).
 * errno contract (syscall 'RTM_GETQDISC'/'RTM_GETTCLASS'/'RTM_GETTFILTER'): EOPNOTSUPP the kernel has no traffic
 * control (CONFIG_NET_SCHED off: no handler for these messages); 'RTM_GETLINK' ENODEV no such link; 'open'/'setns'
 * when the namespace is unusable.
 */
Napi::Value JsTcDump(const Napi::CallbackInfo& info) {
  LinkKey key = ReadLinkKey(info[0]);
  NetnsRef ns = ReadNetns(info[1], "ns");
  return PromiseWorker<TcDumpResult>::Start(
      info.Env(), "macvtap:tcDump", [key, ns]() { return TcDump(key, ns); },
      [](Napi::Env env, TcDumpResult& r) -> Napi::Value {
        Napi::Object o = Napi::Object::New(env);
        o.Set("ifindex", Napi::Number::New(env, r.ifindex));
        o.Set("qdiscs", ListToJs(env, r.qdiscs));
        o.Set("classes", ListToJs(env, r.classes));
        o.Set("filters", ListToJs(env, r.filters));
        return o;
      });
}

/**
 * tcApply(key, ops, ns) → Promise<void>: sends each op in order on one socket, stopping at the first error (what was
 * done before it stays). Ops: htbQdisc (`tc qdisc add|replace dev DEV root handle H: htb default D`), ingressQdisc
 * (`tc qdisc add dev DEV ingress`), deleteQdisc, htbClass (`tc class add|change … htb rate … ceil … burst … cburst …`),
 * policeFilter (`tc filter add dev DEV parent P prio N handle H protocol all matchall action police rate … burst …
 * [peakrate … mtu …] drop`), deleteFilter (`tc filter del dev DEV parent P prio N protocol all`).
 * errno contract (syscall = the message, extack = the kernel's reason): EOPNOTSUPP no traffic control in the kernel
 * (or, RTM_NEWTFILTER, no such filter kind: cls_matchall missing); ENOENT an unknown qdisc kind (sch_htb / sch_ingress
 * missing) or action (act_police), or the object to change/delete is gone; EEXIST an add over an existing object;
 * EINVAL the kernel refused a parameter; ENODEV no such link; EPERM no CAP_NET_ADMIN.
 */
Napi::Value JsTcApply(const Napi::CallbackInfo& info) {
  LinkKey key = ReadLinkKey(info[0]);
  if (!info[1].IsArray()) ThrowTypeError(info.Env(), "The \"ops\" argument must be an array");
  Napi::Array arr = info[1].As<Napi::Array>();
  std::vector<TcOp> ops;
  for (uint32_t i = 0; i < arr.Length(); ++i) ops.push_back(ReadOp(arr.Get(i)));
  NetnsRef ns = ReadNetns(info[2], "ns");
  return PromiseWorker<Nothing>::Start(
      info.Env(), "macvtap:tcApply", [key, ops, ns]() { TcApply(key, ops, ns); return Nothing{}; },
      [](Napi::Env e, Nothing&) -> Napi::Value { return e.Undefined(); });
}

}  // namespace macvtap
