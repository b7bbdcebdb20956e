#include "tcmsg.h"

#include <linux/if_ether.h>
#include <linux/pkt_cls.h>
#include <linux/pkt_sched.h>
#include <linux/rtnetlink.h>
#include <arpa/inet.h>
#include <string.h>
#include <sys/socket.h>

#include <algorithm>
#include <vector>

namespace macvtap {

namespace {

constexpr uint64_t kNsPerSec = 1000000000ull;

tcmsg TcHeader(int ifindex, uint32_t parent, uint32_t handle, uint32_t info = 0) {
  tcmsg t{};
  t.tcm_family = AF_UNSPEC;
  t.tcm_ifindex = ifindex;
  t.tcm_parent = parent;
  t.tcm_handle = handle;
  t.tcm_info = info;
  return t;
}

// A rate as tc_ratespec holds it: 32 bits; larger rates go in a *_RATE64 attribute with the field saturated.
tc_ratespec RateSpec(uint64_t rate) {
  tc_ratespec r{};
  r.rate = static_cast<uint32_t>(std::min<uint64_t>(rate, UINT32_MAX));
  r.linklayer = TC_LINKLAYER_ETHERNET;  // known: the kernel does not try to guess it from a rate table
  r.cell_align = -1;
  return r;
}

// The 256-entry rate table the police action still insists on (qdisc_get_rtab): transmit time in ticks of sizes in
// steps of 2^cell_log bytes, covering `mtu`. The kernel computes with the rate itself; the table must be well formed.
std::vector<uint32_t> RateTable(tc_ratespec* r, uint64_t rate, uint32_t mtu) {
  if (mtu == 0) mtu = 2047;
  uint8_t cell_log = 0;
  while ((mtu >> cell_log) > 255) ++cell_log;
  if (cell_log == 0) cell_log = 1;  // qdisc_get_rtab refuses cell_log 0
  r->cell_log = cell_log;
  std::vector<uint32_t> table(256);
  for (uint32_t i = 0; i < 256; ++i) table[i] = BucketTicks(rate, static_cast<uint64_t>(i + 1) << cell_log);
  return table;
}

}  // namespace

uint32_t BucketTicks(uint64_t rate, uint64_t bytes) {
  if (rate == 0) return 0;
  unsigned __int128 ns = static_cast<unsigned __int128>(bytes) * kNsPerSec / rate;
  unsigned __int128 ticks = ns / kPschedTickNs;
  return ticks > UINT32_MAX ? UINT32_MAX : static_cast<uint32_t>(ticks);
}

uint64_t TicksToBytes(uint64_t rate, uint64_t ticks) {
  unsigned __int128 bytes = static_cast<unsigned __int128>(ticks) * kPschedTickNs * rate / kNsPerSec;
  return bytes > UINT64_MAX ? UINT64_MAX : static_cast<uint64_t>(bytes);
}

void BuildHtbQdisc(MessageBuilder& m, int ifindex, uint32_t handle, uint32_t defcls) {
  tcmsg t = TcHeader(ifindex, TC_H_ROOT, handle << 16);
  m.AppendHeader(&t, sizeof t);
  m.PutString(TCA_KIND, "htb");
  size_t opts = m.BeginNest(TCA_OPTIONS);
  tc_htb_glob g{};
  g.version = TC_HTB_PROTOVER;
  g.rate2quantum = 10;
  g.defcls = defcls;
  m.Put(TCA_HTB_INIT, &g, sizeof g);
  m.EndNest(opts);
}

void BuildIngressQdisc(MessageBuilder& m, int ifindex) {
  tcmsg t = TcHeader(ifindex, TC_H_INGRESS, kTcIngressHandle);
  m.AppendHeader(&t, sizeof t);
  m.PutString(TCA_KIND, "ingress");
}

void BuildDeleteQdisc(MessageBuilder& m, int ifindex, uint32_t parent, uint32_t handle) {
  tcmsg t = TcHeader(ifindex, parent, handle);
  m.AppendHeader(&t, sizeof t);
}

void BuildHtbClass(MessageBuilder& m, int ifindex, uint32_t parent, uint32_t classid, const HtbClassRequest& req) {
  tcmsg t = TcHeader(ifindex, parent, classid);
  m.AppendHeader(&t, sizeof t);
  m.PutString(TCA_KIND, "htb");
  size_t opts = m.BeginNest(TCA_OPTIONS);
  tc_htb_opt o{};
  o.rate = RateSpec(req.rate.rate);
  o.ceil = RateSpec(req.ceil.rate);
  o.buffer = BucketTicks(req.rate.rate, req.rate.burst);
  o.cbuffer = BucketTicks(req.ceil.rate, req.ceil.burst);
  // The DRR quantum htb would derive as rate/r2q, kept inside the range it accepts without a warning.
  o.quantum = static_cast<uint32_t>(std::clamp<uint64_t>(req.rate.rate / 10, 1600, 200000));
  m.Put(TCA_HTB_PARMS, &o, sizeof o);
  if (req.rate.rate > UINT32_MAX) m.Put(TCA_HTB_RATE64, &req.rate.rate, sizeof req.rate.rate);
  if (req.ceil.rate > UINT32_MAX) m.Put(TCA_HTB_CEIL64, &req.ceil.rate, sizeof req.ceil.rate);
  m.EndNest(opts);
}

void BuildPoliceFilter(MessageBuilder& m, int ifindex, uint32_t parent, uint16_t prio, uint32_t handle,
                       const PoliceRequest& req) {
  tcmsg t = TcHeader(ifindex, parent, handle, TC_H_MAKE(static_cast<uint32_t>(prio) << 16, htons(ETH_P_ALL)));
  m.AppendHeader(&t, sizeof t);
  m.PutString(TCA_KIND, "matchall");
  size_t opts = m.BeginNest(TCA_OPTIONS);
  size_t acts = m.BeginNest(TCA_MATCHALL_ACT);
  size_t act = m.BeginNest(1);  // the first (and only) action of the list
  m.PutString(TCA_ACT_KIND, "police");
  size_t popts = m.BeginNest(TCA_ACT_OPTIONS);
  tc_police p{};
  p.action = TC_ACT_SHOT;  // above the rate: drop
  p.rate = RateSpec(req.rate.rate);
  p.burst = BucketTicks(req.rate.rate, req.rate.burst);
  p.mtu = req.mtu;
  std::vector<uint32_t> rtab = RateTable(&p.rate, req.rate.rate, req.mtu);
  std::vector<uint32_t> ptab;
  if (req.peak) {
    p.peakrate = RateSpec(req.peak);
    ptab = RateTable(&p.peakrate, req.peak, req.mtu);
  }
  m.Put(TCA_POLICE_TBF, &p, sizeof p);
  m.Put(TCA_POLICE_RATE, rtab.data(), rtab.size() * sizeof(uint32_t));
  if (req.peak) m.Put(TCA_POLICE_PEAKRATE, ptab.data(), ptab.size() * sizeof(uint32_t));
  if (req.rate.rate > UINT32_MAX) m.Put(TCA_POLICE_RATE64, &req.rate.rate, sizeof req.rate.rate);
  if (req.peak > UINT32_MAX) m.Put(TCA_POLICE_PEAKRATE64, &req.peak, sizeof req.peak);
  m.EndNest(popts);
  m.EndNest(act);
  m.EndNest(acts);
  m.EndNest(opts);
}

void BuildDeleteFilter(MessageBuilder& m, int ifindex, uint32_t parent, uint16_t prio) {
  tcmsg t = TcHeader(ifindex, parent, 0, TC_H_MAKE(static_cast<uint32_t>(prio) << 16, htons(ETH_P_ALL)));
  m.AppendHeader(&t, sizeof t);
}

namespace {

uint64_t U64(const Attr& a, uint64_t fallback) {
  if (a.len < sizeof(uint64_t)) return fallback;
  uint64_t v;
  memcpy(&v, a.data, sizeof v);
  return v;
}

// The police action's own attributes (TCA_POLICE_*): its bucket, rates and exceed verdict.
void ParsePolice(const Attr& opts, TcObject* out) {
  AttrTable pt(opts.data, opts.len, TCA_POLICE_MAX);
  const Attr& tbf = pt[TCA_POLICE_TBF];
  if (tbf.len < sizeof(tc_police)) return;
  tc_police p;
  memcpy(&p, tbf.data, sizeof p);
  PoliceRequest r;
  r.rate.rate = U64(pt[TCA_POLICE_RATE64], p.rate.rate);
  r.rate.burst = static_cast<uint32_t>(std::min<uint64_t>(TicksToBytes(r.rate.rate, p.burst), UINT32_MAX));
  r.peak = U64(pt[TCA_POLICE_PEAKRATE64], p.peakrate.rate);
  r.mtu = p.mtu;
  out->police = r;
  out->police_exceed = p.action;
}

// A list of actions (TCA_ACT_TAB layout: one nest per action, numbered by order); the first police action counts.
void ParseActions(const Attr& list, TcObject* out) {
  ForEachAttr(list.data, list.len, [&](const Attr& act) {
    if (out->police) return;
    AttrTable at(act.data, act.len, TCA_ACT_MAX);
    if (at[TCA_ACT_KIND].Str() != "police" || !at[TCA_ACT_OPTIONS].present()) return;
    ParsePolice(at[TCA_ACT_OPTIONS], out);
  });
}

}  // namespace

bool ParseTcMessage(const uint8_t* data, size_t len, TcObject* out) {
  *out = TcObject{};
  if (len < NLMSG_HDRLEN + sizeof(tcmsg)) return false;
  nlmsghdr h;
  memcpy(&h, data, sizeof h);
  if (h.nlmsg_type != RTM_NEWQDISC && h.nlmsg_type != RTM_NEWTCLASS && h.nlmsg_type != RTM_NEWTFILTER) return false;
  if (h.nlmsg_len < NLMSG_HDRLEN + sizeof(tcmsg) || h.nlmsg_len > len) return false;
  tcmsg t;
  memcpy(&t, data + NLMSG_HDRLEN, sizeof t);
  out->type = h.nlmsg_type;
  out->ifindex = t.tcm_ifindex;
  out->handle = t.tcm_handle;
  out->parent = t.tcm_parent;
  if (h.nlmsg_type == RTM_NEWTFILTER) {
    out->prio = static_cast<uint16_t>(TC_H_MAJ(t.tcm_info) >> 16);
    out->protocol = static_cast<uint16_t>(TC_H_MIN(t.tcm_info));
  }
  size_t off = NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(tcmsg));
  if (off > h.nlmsg_len) return true;
  AttrTable a(data + off, h.nlmsg_len - off, TCA_MAX);
  out->kind = a[TCA_KIND].Str();
  const Attr& opts = a[TCA_OPTIONS];
  if (!opts.present()) return true;
  if (out->kind == "htb" && h.nlmsg_type == RTM_NEWQDISC) {
    AttrTable ht(opts.data, opts.len, TCA_HTB_MAX);
    const Attr& init = ht[TCA_HTB_INIT];
    if (init.len >= sizeof(tc_htb_glob)) {
      tc_htb_glob g;
      memcpy(&g, init.data, sizeof g);
      out->htb_defcls = g.defcls;
    }
  } else if (out->kind == "htb" && h.nlmsg_type == RTM_NEWTCLASS) {
    AttrTable ht(opts.data, opts.len, TCA_HTB_MAX);
    const Attr& parms = ht[TCA_HTB_PARMS];
    if (parms.len >= sizeof(tc_htb_opt)) {
      tc_htb_opt o;
      memcpy(&o, parms.data, sizeof o);
      HtbClassRequest c;
      c.rate.rate = U64(ht[TCA_HTB_RATE64], o.rate.rate);
      c.ceil.rate = U64(ht[TCA_HTB_CEIL64], o.ceil.rate);
      c.rate.burst = static_cast<uint32_t>(std::min<uint64_t>(TicksToBytes(c.rate.rate, o.buffer), UINT32_MAX));
      c.ceil.burst = static_cast<uint32_t>(std::min<uint64_t>(TicksToBytes(c.ceil.rate, o.cbuffer), UINT32_MAX));
      out->htb_class = c;
    }
  } else if (out->kind == "matchall" && h.nlmsg_type == RTM_NEWTFILTER) {
    AttrTable mt(opts.data, opts.len, TCA_MATCHALL_MAX);
    if (mt[TCA_MATCHALL_ACT].present()) ParseActions(mt[TCA_MATCHALL_ACT], out);
  } else if (out->kind == "u32" && h.nlmsg_type == RTM_NEWTFILTER) {
    // libvirt's policer: a u32 filter with the police action inline (TCA_U32_POLICE) or in its action list.
    AttrTable ut(opts.data, opts.len, TCA_U32_MAX);
    if (ut[TCA_U32_ACT].present()) ParseActions(ut[TCA_U32_ACT], out);
    if (!out->police && ut[TCA_U32_POLICE].present()) ParsePolice(ut[TCA_U32_POLICE], out);
  }
  return true;
}

}  // namespace macvtap
