#include "linkmsg.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <stdio.h>
#include <string.h>

#include "netlink.h"
#include "syserror.h"

namespace macvtap {

namespace {

constexpr size_t kHdrLen = NLMSG_HDRLEN;

std::optional<uint32_t> U32(const Attr& a) {
  uint32_t v;
  if (a.U32(&v)) return v;
  return std::nullopt;
}

MacvlanInfo ParseMacvlan(const Attr& data) {
  MacvlanInfo m;
  AttrTable t(data.data, data.len, IFLA_MACVLAN_MAX);
  uint32_t mode = 0;
  if (t[IFLA_MACVLAN_MODE].U32(&mode)) m.mode = mode;
  uint16_t flags = 0;  // NLA_U16 in the kernel's policy
  if (t[IFLA_MACVLAN_FLAGS].U16(&flags)) m.flags = flags;
  m.macaddr_count = U32(t[IFLA_MACVLAN_MACADDR_COUNT]);
  const Attr& list = t[IFLA_MACVLAN_MACADDR_DATA];
  if (list.present()) {
    ForEachAttr(list.data, list.len, [&](const Attr& a) {
      if (a.type == IFLA_MACVLAN_MACADDR && a.len >= 6) m.macaddrs.push_back(FormatHwAddr(a.data, 6));
    });
  }
  return m;
}

}  // namespace

std::string FormatHwAddr(const uint8_t* data, size_t len) {
  // By hand: snprintf per octet was a visible part of a cheap getLinkSync.
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(len == 0 ? 0 : len * 3 - 1, ':');
  for (size_t i = 0; i < len; ++i) {
    out[i * 3] = kHex[data[i] >> 4];
    out[i * 3 + 1] = kHex[data[i] & 0xf];
  }
  return out;
}

LinkInfo ParseLink(const std::vector<uint8_t>& msg) {
  constexpr size_t kIfiLen = NLMSG_ALIGN(sizeof(ifinfomsg));
  if (msg.size() < kHdrLen + kIfiLen) ThrowSys(EBADMSG, "RTM_GETLINK", {}, {}, "short RTM_NEWLINK message");
  nlmsghdr h;
  memcpy(&h, msg.data(), sizeof h);
  size_t total = h.nlmsg_len < msg.size() ? h.nlmsg_len : msg.size();
  if (h.nlmsg_type != RTM_NEWLINK || total < kHdrLen + kIfiLen) {
    ThrowSys(EBADMSG, "RTM_GETLINK", {}, {}, "unexpected reply type " + std::to_string(h.nlmsg_type));
  }
  ifinfomsg ifi;
  memcpy(&ifi, msg.data() + kHdrLen, sizeof ifi);
  LinkInfo info;
  info.ifindex = ifi.ifi_index;
  info.flags = ifi.ifi_flags;

  size_t off = kHdrLen + kIfiLen;
  AttrTable t(msg.data() + off, total - off, IFLA_MAX);
  info.name = t[IFLA_IFNAME].Str();
  if (t[IFLA_ADDRESS].present() && t[IFLA_ADDRESS].len > 0) {
    info.address = FormatHwAddr(t[IFLA_ADDRESS].data, t[IFLA_ADDRESS].len);
  }
  if (t[IFLA_BROADCAST].present() && t[IFLA_BROADCAST].len > 0) {
    info.broadcast = FormatHwAddr(t[IFLA_BROADCAST].data, t[IFLA_BROADCAST].len);
  }
  t[IFLA_MTU].U32(&info.mtu);
  info.min_mtu = U32(t[IFLA_MIN_MTU]);
  info.max_mtu = U32(t[IFLA_MAX_MTU]);
  t[IFLA_TXQLEN].U32(&info.txqlen);
  t[IFLA_OPERSTATE].U8(&info.operstate);
  info.link = U32(t[IFLA_LINK]);
  int32_t netnsid;
  if (t[IFLA_LINK_NETNSID].S32(&netnsid)) info.link_netnsid = netnsid;
  info.master = U32(t[IFLA_MASTER]);
  t[IFLA_GROUP].U32(&info.group);
  if (t[IFLA_IFALIAS].present()) info.alias = t[IFLA_IFALIAS].Str();
  info.num_tx_queues = U32(t[IFLA_NUM_TX_QUEUES]);
  info.num_rx_queues = U32(t[IFLA_NUM_RX_QUEUES]);

  const Attr& li = t[IFLA_LINKINFO];
  if (li.present()) {
    AttrTable lt(li.data, li.len, IFLA_INFO_MAX);
    if (lt[IFLA_INFO_KIND].present()) info.kind = lt[IFLA_INFO_KIND].Str();
    const Attr& data = lt[IFLA_INFO_DATA];
    if (info.kind && (*info.kind == "macvlan" || *info.kind == "macvtap")) {
      info.macvlan = data.present() ? ParseMacvlan(data) : MacvlanInfo{};
    } else if (info.kind && *info.kind == "vlan") {
      VlanInfo v;
      if (data.present()) {
        AttrTable vt(data.data, data.len, IFLA_VLAN_MAX);
        vt[IFLA_VLAN_ID].U16(&v.id);
        uint16_t be = 0;
        if (vt[IFLA_VLAN_PROTOCOL].U16(&be)) v.protocol = ntohs(be);
      }
      info.vlan = v;
    }
    if (lt[IFLA_INFO_SLAVE_KIND].present()) info.slave_kind = lt[IFLA_INFO_SLAVE_KIND].Str();
    const Attr& sdata = lt[IFLA_INFO_SLAVE_DATA];
    if (info.slave_kind && *info.slave_kind == "bridge" && sdata.present()) {
      AttrTable bt(sdata.data, sdata.len, IFLA_BRPORT_MAX);
      BridgePortInfo bp;
      uint8_t v = 0;
      if (bt[IFLA_BRPORT_MODE].U8(&v)) bp.hairpin = v != 0;
      if (bt[IFLA_BRPORT_LEARNING].U8(&v)) bp.learning = v != 0;
      if (bt[IFLA_BRPORT_UNICAST_FLOOD].U8(&v)) bp.flood = v != 0;
      info.bridge_port = bp;
    }
  }
  return info;
}

}  // namespace macvtap
