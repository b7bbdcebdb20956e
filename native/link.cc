#include "link.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <mutex>
#include <unordered_map>

#include "args.h"
#include "async.h"
#include "envdata.h"
#include "errors.h"
#include "nft.h"
#include "sysfs.h"

namespace macvtap {

namespace {

constexpr int kTemplateTries = 4096;
// IFNAMSIZ includes the NUL: names have at most 15 bytes.
constexpr size_t kMaxNameLen = IFNAMSIZ - 1;

std::string IndexName(int index) { return "ifindex " + std::to_string(index); }

ifinfomsg IfInfo(int index) {
  ifinfomsg ifi{};
  ifi.ifi_family = AF_UNSPEC;
  ifi.ifi_index = index;
  return ifi;
}

// Selects the link in a request: ifi_index when known, otherwise IFLA_IFNAME (the kernel looks it up by name).
MessageBuilder KeyedRequest(uint16_t type, uint16_t flags, const LinkKey& key, const ifinfomsg* base = nullptr) {
  MessageBuilder m(type, flags);
  ifinfomsg ifi = base ? *base : IfInfo(0);
  ifi.ifi_index = key.index > 0 ? key.index : 0;
  m.AppendHeader(&ifi, sizeof ifi);
  if (key.index <= 0) m.PutString(IFLA_IFNAME, key.name);
  return m;
}

// In-process hints for name templates, so a create does not dump every link to find a free number. Keyed by
// namespace too, so a fresh namespace starts at 0 (as the kernel's own %d allocation would).
struct HintKey {
  NetnsId ns;
  std::string tmpl;
  bool operator==(const HintKey& o) const { return ns == o.ns && tmpl == o.tmpl; }
};
struct HintKeyHash {
  size_t operator()(const HintKey& k) const {
    return std::hash<std::string>()(k.tmpl) ^ (std::hash<uint64_t>()(k.ns.ino) * 31) ^ std::hash<uint64_t>()(k.ns.dev);
  }
};
constexpr size_t kMaxHints = 4096;
std::mutex hint_mutex;
std::unordered_map<HintKey, uint64_t, HintKeyHash> hints;

// The next number to try for `tmpl` in namespace `ns`; numbers wrap before the name would exceed 15 bytes.
uint64_t NextTemplateNumber(const NetnsId& ns, const std::string& tmpl) {
  size_t fixed = tmpl.size() - 2;
  uint64_t limit = 1;
  for (size_t digits = fixed; digits < kMaxNameLen && limit < 100000000ULL; ++digits) limit *= 10;
  std::lock_guard<std::mutex> lock(hint_mutex);
  // Namespaces come and go (one per test): forget them all rather than grow forever. A lost hint only costs
  // EEXIST retries.
  if (hints.size() >= kMaxHints) hints.clear();
  uint64_t& hint = hints[HintKey{ns, tmpl}];
  if (hint >= limit) hint = 0;
  return hint++;
}

std::string ExpandTemplate(const std::string& tmpl, uint64_t n) {
  std::string out = tmpl;
  size_t pos = out.find("%d");
  out.replace(pos, 2, std::to_string(n));
  return out;
}

// Fills what one RTM_NEWLINK message does not say: the lower device's name (one more request unless the caller
// already knows it: `known_lower`) and a macvtap's char device (from the namespace's cached sysfs; `ns_id`: the
// namespace's identity from the netlink lease, when known).
void Complete(NetlinkSocket& sock, LinkInfo& info, const NetnsRef& ns, const std::optional<std::string>& known_lower,
              const NetnsId* ns_id) {
  if (info.link && !info.link_netnsid && *info.link != static_cast<uint32_t>(info.ifindex)) {
    char name[IFNAMSIZ] = {0};
    ifreq ifr{};
    ifr.ifr_ifindex = static_cast<int>(*info.link);
    if (known_lower) {
      info.link_name = *known_lower;
    } else if (sock.Fd() >= 0 && ::ioctl(sock.Fd(), SIOCGIFNAME, &ifr) == 0) {
      // SIOCGIFNAME on the netlink socket acts in its namespace (dev_ioctl) and is a name lookup, where an
      // RTM_GETLINK would have the kernel fill every attribute of the lower device.
      memcpy(name, ifr.ifr_name, IFNAMSIZ - 1);
      info.link_name = std::string(name);
    } else if (sock.Fd() >= 0 && errno == ENODEV) {
      // Gone meanwhile: linkName stays null.
    } else {
      // The lower device is in this namespace: one more request for its name (gone meanwhile → null).
      try {
        LinkKey lower;
        lower.index = static_cast<int>(*info.link);
        MessageBuilder lm = KeyedRequest(RTM_GETLINK, 0, lower);
        lm.PutU32(IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
        info.link_name = ParseLink(sock.Get(lm, lower.Describe())).name;
      } catch (const SysException& e) {
        if (e.error().err != ENODEV) throw;
      }
    }
  }
  if (info.kind && *info.kind == "macvtap") {
    std::vector<TapDevQuery> q(1);
    q[0].name = info.name;
    q[0].ifindex = info.ifindex;
    // get/list still answer when sysfs cannot be read (e.g. no CAP_SYS_ADMIN); the tap device is then null.
    if (ReadTapDevs(ns, q, ns_id).err == 0 && q[0].found) {
      info.has_tap_dev = true;
      info.tap_major = q[0].major;
      info.tap_minor = q[0].minor;
    }
  }
}

// `full`: also resolve the lower device's name and the macvtap's char device (what linkGet promises); internal
// lookups that only need the index or kind skip both.
LinkInfo GetWith(NetlinkSocket& sock, const LinkKey& key, const NetnsRef& ns, bool full,
                 const NetnsId* ns_id = nullptr) {
  MessageBuilder m = KeyedRequest(RTM_GETLINK, 0, key);
  m.PutU32(IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
  LinkInfo info = ParseLink(sock.Get(m, key.Describe()));
  if (full) Complete(sock, info, ns, std::nullopt, ns_id);
  return info;
}

// The echoed RTM_NEWLINK of the link just created as `name`, if the kernel sent one (>= 6.3). A veth create also
// registers its peer, so the echo is picked by name, not taken blindly.
std::optional<LinkInfo> FromEcho(const std::vector<std::vector<uint8_t>>& echoed, const std::string& name) {
  std::optional<LinkInfo> found;
  for (const auto& msg : echoed) {
    if (msg.size() < sizeof(nlmsghdr)) continue;
    nlmsghdr h;
    memcpy(&h, msg.data(), sizeof h);
    if (h.nlmsg_type != RTM_NEWLINK) continue;
    try {
      LinkInfo info = ParseLink(msg);
      if (info.name == name) found = std::move(info);  // the last one is the newest state
    } catch (const SysException&) {
      // Not decodable: fall back to asking.
    }
  }
  return found;
}

// Test hook: MACVTAP_NO_NLM_ECHO=1 skips NLM_F_ECHO, which exercises the pre-6.3 path (a separate RTM_GETLINK).
bool EchoDisabled() {
  const char* v = getenv("MACVTAP_NO_NLM_ECHO");
  return v != nullptr && v[0] == '1';
}

bool IndexExists(NetlinkSocket& sock, int index) {
  LinkKey key;
  key.index = index;
  MessageBuilder m = KeyedRequest(RTM_GETLINK, 0, key);
  m.PutU32(IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
  try {
    sock.Get(m, key.Describe());
    return true;
  } catch (const SysException& e) {
    if (e.error().err == ENODEV) return false;
    throw;
  }
}

void BuildCreate(MessageBuilder& m, const CreateRequest& req, const std::string& name, int peer_ns_fd) {
  ifinfomsg ifi = IfInfo(req.ifindex.value_or(0));
  if (req.up) {
    ifi.ifi_flags = IFF_UP;
    ifi.ifi_change = IFF_UP;
  }
  if (req.allmulti) {
    ifi.ifi_flags |= IFF_ALLMULTI;
    ifi.ifi_change |= IFF_ALLMULTI;
  }
  m.AppendHeader(&ifi, sizeof ifi);
  m.PutString(IFLA_IFNAME, name);
  if (req.link) m.PutU32(IFLA_LINK, *req.link);
  if (req.address) m.Put(IFLA_ADDRESS, req.address->data(), req.address->size());
  if (req.mtu) m.PutU32(IFLA_MTU, *req.mtu);
  if (req.txqlen) m.PutU32(IFLA_TXQLEN, *req.txqlen);
  if (req.group) m.PutU32(IFLA_GROUP, *req.group);
  if (req.num_queues) {
    m.PutU32(IFLA_NUM_TX_QUEUES, *req.num_queues);
    m.PutU32(IFLA_NUM_RX_QUEUES, *req.num_queues);
  }

  size_t linkinfo = m.BeginNest(IFLA_LINKINFO);
  m.PutString(IFLA_INFO_KIND, req.kind);
  if (req.kind == "macvtap" || req.kind == "macvlan") {
    size_t data = m.BeginNest(IFLA_INFO_DATA);
    if (req.macvlan_mode) m.PutU32(IFLA_MACVLAN_MODE, *req.macvlan_mode);
    if (req.macvlan_flags) m.PutU16(IFLA_MACVLAN_FLAGS, static_cast<uint16_t>(*req.macvlan_flags));
    if (req.macvlan_macaddrs) {
      m.PutU32(IFLA_MACVLAN_MACADDR_MODE, MACVLAN_MACADDR_SET);
      size_t list = m.BeginNest(IFLA_MACVLAN_MACADDR_DATA);
      for (const auto& mac : *req.macvlan_macaddrs) m.Put(IFLA_MACVLAN_MACADDR, mac.data(), mac.size());
      m.EndNest(list);
    }
    m.EndNest(data);
  } else if (req.kind == "vlan") {
    size_t data = m.BeginNest(IFLA_INFO_DATA);
    if (req.vlan_id) m.PutU16(IFLA_VLAN_ID, *req.vlan_id);
    // The kernel's policy is NLA_BE16: the protocol goes on the wire in network byte order.
    if (req.vlan_protocol) m.PutBe16(IFLA_VLAN_PROTOCOL, *req.vlan_protocol);
    m.EndNest(data);
  } else if (req.kind == "veth" && req.peer) {
    size_t data = m.BeginNest(IFLA_INFO_DATA);
    size_t peer = m.BeginNest(VETH_INFO_PEER);
    ifinfomsg pifi = IfInfo(0);
    m.AppendHeader(&pifi, sizeof pifi);
    m.PutString(IFLA_IFNAME, req.peer->name);
    if (req.peer->address) m.Put(IFLA_ADDRESS, req.peer->address->data(), req.peer->address->size());
    if (peer_ns_fd >= 0) m.PutU32(IFLA_NET_NS_FD, static_cast<uint32_t>(peer_ns_fd));
    m.EndNest(peer);
    m.EndNest(data);
  }
  m.EndNest(linkinfo);
}

}  // namespace

std::string LinkKey::Describe() const { return index > 0 ? IndexName(index) : name; }

ifreq IfreqOf(int sock, const LinkKey& key) {
  ifreq ifr{};
  if (key.index > 0) {
    ifr.ifr_ifindex = key.index;
    if (::ioctl(sock, SIOCGIFNAME, &ifr) < 0) ThrowSys(errno, "ioctl(SIOCGIFNAME)", {}, key.Describe());
  } else {
    strncpy(ifr.ifr_name, key.name.c_str(), IFNAMSIZ - 1);
    if (::ioctl(sock, SIOCGIFINDEX, &ifr) < 0) ThrowSys(errno, "ioctl(SIOCGIFINDEX)", {}, key.Describe());
  }
  return ifr;
}

int ResolveIndex(NetlinkSocket& sock, const LinkKey& key) {
  if (key.index > 0) return key.index;
  return GetWith(sock, key, NetnsRef(), false).ifindex;
}

LinkInfo LinkCreate(const CreateRequest& request, const NetnsRef& ns) {
  NetlinkLease sock = AcquireNetlink(ns);
  const CreateRequest* reqp = &request;
  std::optional<CreateRequest> resolved;
  if (request.link_name) {
    // The lower by name, resolved on the same socket in the same operation (no second trip through the thread pool).
    LinkKey lower;
    lower.name = *request.link_name;
    resolved.emplace(request);
    resolved->link = static_cast<uint32_t>(GetWith(*sock, lower, ns, false).ifindex);
    reqp = &*resolved;
  }
  const CreateRequest& req = *reqp;
  if ((req.kind == "macvtap" || req.kind == "macvlan") && req.link) {
    // macvlan cannot work over an 802.11 station (the AP drops frames from MACs it never associated): refuse a
    // wireless lower here rather than hand back a link whose guest never gets a frame.
    std::string lower_name;
    if (request.link_name) {
      lower_name = *request.link_name;
    } else {
      // By ifindex: its name from SIOCGIFNAME on the netlink socket (a name lookup in the socket's namespace, no
      // netlink request). Not found: the create below fails with the kernel's own ENODEV.
      ifreq ifr{};
      ifr.ifr_ifindex = static_cast<int>(*req.link);
      if (sock->Fd() >= 0 && ::ioctl(sock->Fd(), SIOCGIFNAME, &ifr) == 0) {
        lower_name.assign(ifr.ifr_name, strnlen(ifr.ifr_name, IFNAMSIZ));
      } else if (errno != ENODEV) {
        LinkKey lower;
        lower.index = static_cast<int>(*req.link);
        lower_name = GetWith(*sock, lower, ns, false).name;
      }
    }
    bool wireless = false;
    // Best effort: without a sysfs view of the namespace (no CAP_SYS_ADMIN for the private mount) the check is
    // skipped and the create goes on — the kernel's own answer (EPERM without CAP_NET_ADMIN) must stay the one seen.
    if (!lower_name.empty() && LowerIsWireless(ns, lower_name, &wireless).err != 0) wireless = false;
    if (wireless) {
      SysError e;
      e.err = EOPNOTSUPP;
      e.syscall = "RTM_NEWLINK";
      e.device = lower_name;
      e.detail = "lower device \"" + lower_name + "\" is a wireless (802.11) device: a " + req.kind +
                 " on it would get no traffic (an access point accepts frames only from the station's own MAC)";
      throw SysException(std::move(e));
    }
  }
  std::optional<NetnsHandle> peer_ns;
  if (req.peer && !req.peer->netns.current()) peer_ns.emplace(req.peer->netns);
  int peer_fd = peer_ns ? peer_ns->fd() : -1;
  bool echo = !EchoDisabled();

  bool is_template = req.name.find("%d") != std::string::npos;
  NetnsId ns_id;
  if (is_template && !IdentifyNetns(ns, &ns_id)) ns_id = NetnsId{};  // unknown: share one hint, still correct
  std::string name;
  std::vector<std::vector<uint8_t>> echoed;
  for (int attempt = 0;; ++attempt) {
    name = is_template ? ExpandTemplate(req.name, NextTemplateNumber(ns_id, req.name)) : req.name;
    MessageBuilder m(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
    BuildCreate(m, req, name, peer_fd);
    try {
      if (echo) {
        echoed = sock->AckEcho(m, name);
      } else {
        sock->Ack(m, name);
      }
      break;
    } catch (const SysException& e) {
      if (e.error().err != EEXIST) throw;
      // EEXIST is also the kernel's answer for a taken ifindex: say which, and do not retry names for it.
      if (req.ifindex && IndexExists(*sock, *req.ifindex)) {
        SysError taken = e.error();
        taken.detail = "ifindex " + std::to_string(*req.ifindex) + " is already in use";
        throw SysException(std::move(taken));
      }
      // Only a name clash means "try the next number"; anything else is the real answer.
      if (!is_template || attempt + 1 >= kTemplateTries) throw;
    }
  }
  LinkKey key;
  key.name = name;
  std::optional<LinkInfo> info = FromEcho(echoed, name);
  if (req.alias) {
    // rtnl_create_link ignores IFLA_IFALIAS; the alias is set by a change request right after the create, together
    // with the final group when the create carried a construction marker in IFLA_GROUP (both or neither apply).
    MessageBuilder m = KeyedRequest(RTM_NEWLINK, 0, key);
    m.Put(IFLA_IFALIAS, req.alias->data(), req.alias->size());
    if (req.final_group) m.PutU32(IFLA_GROUP, *req.final_group);
    try {
      sock->Ack(m, name);
    } catch (const SysException&) {
      // Not left half-made: untagged, with its construction marker, it would wait for gc until this process is gone.
      try {
        MessageBuilder del = KeyedRequest(RTM_DELLINK, 0, key);
        sock->Ack(del, name);
      } catch (const SysException&) {
        // Gone already, or refused: the marker still lets gc take it once this process has exited.
      }
      throw;
    }
    // The echo of the create plus the two fields just set is the link's state: no need to ask again.
    if (info) {
      info->alias = *req.alias;
      if (req.final_group) info->group = *req.final_group;
    }
  }
  // No echo (kernel < 6.3): ask. A link created up shows IF_OPER_UNKNOWN in the echo, and that is its state: the
  // kernel's link watcher sets the operstate from a work item, up to a second later (linkwatch_schedule_work), so a
  // second request at once would almost always repeat the answer, for the price of another round trip.
  if (!info) {
    MessageBuilder m = KeyedRequest(RTM_GETLINK, 0, key);
    m.PutU32(IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
    info = ParseLink(sock->Get(m, name));
  }
  Complete(*sock, *info, ns, req.link && info->link && *info->link == *req.link ? request.link_name : std::nullopt,
           sock.id());
  return *info;
}

LinkInfo LinkGet(const LinkKey& key, const NetnsRef& ns, bool full) {
  NetlinkLease sock = AcquireNetlink(ns);
  return GetWith(*sock, key, ns, full, sock.id());
}

std::vector<LinkInfo> LinkList(const std::optional<std::string>& kind, const NetnsRef& ns) {
  NetlinkLease sock = AcquireNetlink(ns);
  MessageBuilder m(RTM_GETLINK, 0);
  ifinfomsg ifi = IfInfo(0);
  m.AppendHeader(&ifi, sizeof ifi);
  m.PutU32(IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
  std::vector<std::vector<uint8_t>> msgs = sock->Dump(m);

  std::vector<LinkInfo> all;
  all.reserve(msgs.size());
  std::unordered_map<int, size_t> by_index;
  for (const auto& msg : msgs) {
    all.push_back(ParseLink(msg));
    by_index[all.back().ifindex] = all.size() - 1;
  }
  std::vector<LinkInfo> out;
  std::vector<TapDevQuery> queries;
  for (LinkInfo& info : all) {
    if (kind && (!info.kind || *info.kind != *kind)) continue;
    // Lower names come from the dump itself: no request per link.
    if (info.link && !info.link_netnsid) {
      auto it = by_index.find(static_cast<int>(*info.link));
      if (it != by_index.end()) info.link_name = all[it->second].name;
    }
    if (info.kind && *info.kind == "macvtap") {
      TapDevQuery q;
      q.name = info.name;
      q.ifindex = info.ifindex;
      queries.push_back(q);
    }
    out.push_back(info);
  }
  if (!queries.empty() && ReadTapDevs(ns, queries, sock.id()).err == 0) {
    size_t qi = 0;
    for (LinkInfo& info : out) {
      if (!info.kind || *info.kind != "macvtap") continue;
      const TapDevQuery& q = queries[qi++];
      if (!q.found) continue;
      info.has_tap_dev = true;
      info.tap_major = q.major;
      info.tap_minor = q.minor;
    }
  }
  return out;
}

void LinkSet(const LinkKey& key, const SetRequest& change, const NetnsRef& ns) {
  NetlinkLease sock = AcquireNetlink(ns);
  LinkKey target = key;
  if (change.name && target.index <= 0) {
    // IFLA_IFNAME cannot both select the link and rename it: select by index instead.
    target.index = GetWith(*sock, key, ns, false).ifindex;
  }
  std::optional<NetnsHandle> dest;
  if (change.netns) {
    if (change.netns->current()) {
      // "The current namespace" of the process: the main thread's, not this worker's.
      NetnsRef self;
      self.kind = NetnsRef::Kind::kPath;
      self.path = "/proc/self/ns/net";
      dest.emplace(self);
    } else {
      dest.emplace(*change.netns);
    }
  }
  ifinfomsg ifi = IfInfo(0);
  if (change.up) {
    ifi.ifi_change |= IFF_UP;
    if (*change.up) ifi.ifi_flags |= IFF_UP;
  }
  // The user's promiscuity request (dev->gflags): idempotent, independent of what bridges or macvlans asked for.
  if (change.promisc) {
    ifi.ifi_change |= IFF_PROMISC;
    if (*change.promisc) ifi.ifi_flags |= IFF_PROMISC;
  }
  // IFF_ALLMULTI the same way (`ip link set allmulticast on|off`): the user's request, counted once.
  if (change.allmulti) {
    ifi.ifi_change |= IFF_ALLMULTI;
    if (*change.allmulti) ifi.ifi_flags |= IFF_ALLMULTI;
  }
  MessageBuilder m = KeyedRequest(RTM_NEWLINK, 0, target, &ifi);
  if (change.name) m.PutString(IFLA_IFNAME, *change.name);
  if (change.mtu) m.PutU32(IFLA_MTU, *change.mtu);
  if (change.address) m.Put(IFLA_ADDRESS, change.address->data(), change.address->size());
  if (change.group) m.PutU32(IFLA_GROUP, *change.group);
  if (change.txqlen) m.PutU32(IFLA_TXQLEN, *change.txqlen);
  // Sent without a NUL, as iproute2 does: a zero-length IFLA_IFALIAS removes the alias.
  if (change.alias) m.Put(IFLA_IFALIAS, change.alias->data(), change.alias->size());
  if (dest) m.PutU32(IFLA_NET_NS_FD, static_cast<uint32_t>(dest->fd()));
  if (change.master_name) {
    // The master by name, in the same namespace and operation (`ip link set X master BR`).
    LinkKey mk;
    mk.name = *change.master_name;
    m.PutU32(IFLA_MASTER, static_cast<uint32_t>(GetWith(*sock, mk, ns, false).ifindex));
  } else if (change.master) {
    m.PutU32(IFLA_MASTER, *change.master);  // 0 = nomaster
  }
  if (change.macaddr_mode) {
    // `ip link set X type macvtap macaddr add|del|set|flush …`: macvlan_changelink_sources.
    size_t linkinfo = m.BeginNest(IFLA_LINKINFO);
    m.PutString(IFLA_INFO_KIND, change.info_kind);
    size_t data = m.BeginNest(IFLA_INFO_DATA);
    m.PutU32(IFLA_MACVLAN_MACADDR_MODE, *change.macaddr_mode);
    if (*change.macaddr_mode == MACVLAN_MACADDR_SET) {
      size_t list = m.BeginNest(IFLA_MACVLAN_MACADDR_DATA);
      for (const auto& mac : change.macaddrs) m.Put(IFLA_MACVLAN_MACADDR, mac.data(), mac.size());
      m.EndNest(list);
    } else if (!change.macaddrs.empty()) {
      m.Put(IFLA_MACVLAN_MACADDR, change.macaddrs[0].data(), change.macaddrs[0].size());
    }
    m.EndNest(data);
    m.EndNest(linkinfo);
  }
  sock->Ack(m, key.Describe());
}

void LinkSetBridgePort(const LinkKey& key, const BridgePortRequest& req, const NetnsRef& ns) {
  NetlinkLease sock = AcquireNetlink(ns);
  MessageBuilder m = KeyedRequest(RTM_NEWLINK, 0, key);
  size_t linkinfo = m.BeginNest(IFLA_LINKINFO);
  m.PutString(IFLA_INFO_SLAVE_KIND, "bridge");
  size_t data = m.BeginNest(IFLA_INFO_SLAVE_DATA);
  // IFLA_BRPORT_MODE is the hairpin flag (BRIDGE_MODE_HAIRPIN = 1); all three are NLA_U8 in br_port_policy.
  if (req.hairpin) m.PutU8(IFLA_BRPORT_MODE, *req.hairpin ? 1 : 0);
  if (req.learning) m.PutU8(IFLA_BRPORT_LEARNING, *req.learning ? 1 : 0);
  if (req.flood) m.PutU8(IFLA_BRPORT_UNICAST_FLOOD, *req.flood ? 1 : 0);
  m.EndNest(data);
  m.EndNest(linkinfo);
  sock->Ack(m, key.Describe());
}

void LinkDelete(const LinkKey& key, const NetnsRef& ns) {
  NetlinkLease sock = AcquireNetlink(ns);
  // The name, for the port-security table that goes with the link (by ifindex: asked before the link is gone).
  std::string name = key.name;
  if (name.empty() && sock->Fd() >= 0) {
    ifreq ifr{};
    ifr.ifr_ifindex = key.index;
    if (::ioctl(sock->Fd(), SIOCGIFNAME, &ifr) == 0) name.assign(ifr.ifr_name, strnlen(ifr.ifr_name, IFNAMSIZ));
  }
  MessageBuilder m = KeyedRequest(RTM_DELLINK, 0, key);
  sock->Ack(m, key.Describe());
  if (!name.empty() && sock->Fd() >= 0) DeletePortSecurityTable(ns, name);
}

void LinkDeleteGroup(uint32_t group, const NetnsRef& ns) {
  NetlinkLease sock = AcquireNetlink(ns);
  MessageBuilder m(RTM_DELLINK, 0);
  ifinfomsg ifi = IfInfo(0);
  m.AppendHeader(&ifi, sizeof ifi);
  m.PutU32(IFLA_GROUP, group);
  sock->Ack(m, "group " + std::to_string(group));
}

// ---- JS glue ----

LinkKey ReadLinkKey(const Napi::Value& v) {
  // The name's length stays checked here although lib/ checks it: ethtool.cc copies it into the 16-byte ifr_name,
  // where a longer name would be cut and could name another link.
  Napi::Object o = ReqObject(v, "key");
  LinkKey key;
  std::optional<int64_t> index = OptInt(o, "index", 1, INT32_MAX);
  std::optional<std::string> name = OptString(o, "name");
  if (index) {
    key.index = static_cast<int>(*index);
  } else if (name && !name->empty() && name->size() <= kMaxNameLen) {
    key.name = *name;
  } else {
    ThrowTypeError(v.Env(), "The \"key\" argument must have an \"index\" or a \"name\" of 1-15 bytes");
  }
  return key;
}

namespace {

// NativeCreateLink, converted only: lib/ validated it (kind, name and template, lower, MTU, group, MACs, VLAN id) and
// the kernel refuses what is wrong for it with an errno and its own message. Names and kinds go into attributes
// whose length is written with them, so no value here can overrun anything.
CreateRequest ReadCreate(const Napi::Value& v) {
  Napi::Env env = v.Env();
  Napi::Object o = ReqObject(v, "req");
  CreateRequest r;
  r.kind = ReqString(o.Get("kind"), "kind");
  r.name = ReqString(o.Get("name"), "name");
  // `link`: the lower device's ifindex, or its name (resolved inside the operation).
  Napi::Value link = o.Get("link");
  if (link.IsString()) {
    r.link_name = link.As<Napi::String>().Utf8Value();
  } else if (auto x = OptInt(o, "link", 1, INT32_MAX)) {
    r.link = static_cast<uint32_t>(*x);
  }
  if (auto x = OptInt(o, "ifindex", 1, INT32_MAX)) r.ifindex = static_cast<int32_t>(*x);
  r.address = OptMac(o, "address");
  if (auto x = OptInt(o, "mtu", 0, UINT32_MAX)) r.mtu = static_cast<uint32_t>(*x);
  if (auto x = OptInt(o, "txqlen", 0, UINT32_MAX)) r.txqlen = static_cast<uint32_t>(*x);
  if (auto x = OptInt(o, "group", 0, UINT32_MAX)) r.group = static_cast<uint32_t>(*x);
  if (auto x = OptInt(o, "numQueues", 1, 4096)) r.num_queues = static_cast<uint32_t>(*x);
  r.up = OptBool(o, "up").value_or(false);
  r.allmulti = OptBool(o, "allmulti").value_or(false);
  r.alias = OptString(o, "alias");
  if (auto x = OptInt(o, "finalGroup", 0, UINT32_MAX)) r.final_group = static_cast<uint32_t>(*x);
  if (auto x = OptInt(o, "macvlanMode", 0, UINT32_MAX)) r.macvlan_mode = static_cast<uint32_t>(*x);
  if (auto x = OptInt(o, "macvlanFlags", 0, UINT16_MAX)) r.macvlan_flags = static_cast<uint32_t>(*x);
  Napi::Value macs = o.Get("macvlanMacaddrs");
  if (!macs.IsUndefined() && !macs.IsNull()) {
    if (!macs.IsArray()) ThrowTypeError(env, "The \"macvlanMacaddrs\" option must be an array");
    Napi::Array a = macs.As<Napi::Array>();
    std::vector<std::vector<uint8_t>> list;
    for (uint32_t i = 0; i < a.Length(); ++i) {
      list.push_back(ParseMac(env, ReqString(a.Get(i), "macvlanMacaddrs"), "macvlanMacaddrs"));
    }
    r.macvlan_macaddrs = std::move(list);
  }
  if (auto x = OptInt(o, "vlanId", 0, UINT16_MAX)) r.vlan_id = static_cast<uint16_t>(*x);
  if (auto x = OptInt(o, "vlanProtocol", 0, UINT16_MAX)) r.vlan_protocol = static_cast<uint16_t>(*x);
  Napi::Value peer = o.Get("peer");
  if (!peer.IsUndefined() && !peer.IsNull()) {
    Napi::Object p = ReqObject(peer, "peer");
    PeerRequest pr;
    pr.name = ReqString(p.Get("name"), "peer.name");
    pr.address = OptMac(p, "address");
    pr.netns = ReadNetns(p.Get("netns"), "peer.netns");
    r.peer = std::move(pr);
  }
  return r;
}

SetRequest ReadSet(const Napi::Value& v) {
  Napi::Object o = ReqObject(v, "change");
  SetRequest s;
  s.up = OptBool(o, "up");
  s.promisc = OptBool(o, "promisc");
  s.allmulti = OptBool(o, "allmulti");
  if (auto x = OptInt(o, "macaddrMode", 0, 3)) {
    s.macaddr_mode = static_cast<uint32_t>(*x);
    s.info_kind = ReqString(o.Get("infoKind"), "infoKind");
    Napi::Value macs = o.Get("macaddrs");
    if (!macs.IsUndefined() && !macs.IsNull()) {
      if (!macs.IsArray()) ThrowTypeError(v.Env(), "The \"macaddrs\" option must be an array");
      Napi::Array a = macs.As<Napi::Array>();
      for (uint32_t i = 0; i < a.Length(); ++i) s.macaddrs.push_back(ParseMac(v.Env(), ReqString(a.Get(i), "macaddrs"), "macaddrs"));
    }
  }
  if (auto x = OptInt(o, "mtu", 0, UINT32_MAX)) s.mtu = static_cast<uint32_t>(*x);
  s.address = OptMac(o, "address");
  s.name = OptString(o, "name");
  s.alias = OptString(o, "alias");
  if (auto x = OptInt(o, "group", 0, UINT32_MAX)) s.group = static_cast<uint32_t>(*x);
  if (auto x = OptInt(o, "txqlen", 0, UINT32_MAX)) s.txqlen = static_cast<uint32_t>(*x);
  // `netns: null` means "move to the process's namespace", so only undefined means "do not move".
  if (o.Has("netns") && !o.Get("netns").IsUndefined()) s.netns = ReadNetns(o.Get("netns"), "netns");
  Napi::Value master = o.Get("master");
  if (master.IsString()) {
    s.master_name = master.As<Napi::String>().Utf8Value();
  } else if (auto x = OptInt(o, "master", 0, INT32_MAX)) {
    s.master = static_cast<uint32_t>(*x);
  }
  return s;
}

Napi::Value ResolveNothing(Napi::Env env, Nothing&) { return env.Undefined(); }

}  // namespace

// The link factory's arguments, one row each, in the order they are passed: the parameter's name (as binding.d.ts's
// NativeLinkFactory and lib/linkinfo.ts's linkFromNative spell it) and the value, an expression over `info` and the
// helpers in LinkInfoToJs. The call and the names setLinkFactory returns are both expanded from this one table, so
// the names the addon reports are the order it passes: test/linkinfo.test.ts compares them with both TypeScript
// declarations, and setLinkFactory refuses a factory that declares another number of parameters.
#define MACVTAP_LINK_FACTORY_ARGS(X)                                \
  X(ifindex, num(info.ifindex))                                     \
  X(name, str(info.name))                                           \
  X(kind, opt_str(info.kind))                                       \
  X(address, opt_str(info.address))                                 \
  X(broadcast, opt_str(info.broadcast))                             \
  X(mtu, num(info.mtu))                                             \
  X(minMtu, opt_num(info.min_mtu))                                  \
  X(maxMtu, opt_num(info.max_mtu))                                  \
  X(txqlen, num(info.txqlen))                                       \
  X(flags, num(info.flags))                                         \
  X(operstate, num(info.operstate))                                 \
  X(link, opt_num(info.link))                                       \
  X(linkNetnsid, opt_num(info.link_netnsid))                        \
  X(linkName, opt_str(info.link_name))                              \
  X(master, opt_num(info.master))                                   \
  X(group, num(info.group))                                         \
  X(alias, opt_str(info.alias))                                     \
  X(numTxQueues, opt_num(info.num_tx_queues))                       \
  X(numRxQueues, opt_num(info.num_rx_queues))                       \
  X(macvlanMode, info.macvlan ? num(info.macvlan->mode) : null)     \
  X(macvlanFlags, num(info.macvlan ? info.macvlan->flags : 0))      \
  X(sourceMacs, source_macs())                                      \
  X(vlanId, info.vlan ? num(info.vlan->id) : null)                  \
  X(vlanProtocol, num(info.vlan ? info.vlan->protocol : 0))         \
  X(bridgePort, bridge_port())                                      \
  X(tapMajor, info.has_tap_dev ? num(info.tap_major) : null)        \
  X(tapMinor, num(info.has_tap_dev ? info.tap_minor : 0))

namespace {

#define MACVTAP_ARG_NAME(name, value) #name,
constexpr const char* kLinkFactoryArgs[] = {MACVTAP_LINK_FACTORY_ARGS(MACVTAP_ARG_NAME)};
#undef MACVTAP_ARG_NAME
constexpr size_t kLinkFactoryArgCount = sizeof kLinkFactoryArgs / sizeof kLinkFactoryArgs[0];

}  // namespace

Napi::Value LinkInfoToJs(Napi::Env env, const LinkInfo& info) {
  Napi::FunctionReference& factory = GetEnvData(env).link_factory;
  if (factory.IsEmpty()) throw Napi::Error::New(env, "macvtap: internal error: setLinkFactory was not called");
  // One call into JS with plain values: the object is built by the factory, where V8 makes it from a literal, instead
  // of property by property through N-API (each a call across the boundary).
  napi_value null = env.Null();
  auto num = [&](double d) -> napi_value { return Napi::Number::New(env, d); };
  auto str = [&](const std::string& s) -> napi_value { return Napi::String::New(env, s); };
  auto opt_num = [&](const auto& o) -> napi_value { return o ? num(static_cast<double>(*o)) : null; };
  auto opt_str = [&](const std::optional<std::string>& o) -> napi_value { return o ? str(*o) : null; };
  auto source_macs = [&]() -> napi_value {
    if (!info.macvlan || info.macvlan->macaddrs.empty()) return null;
    Napi::Array a = Napi::Array::New(env, info.macvlan->macaddrs.size());
    for (size_t i = 0; i < info.macvlan->macaddrs.size(); ++i) a.Set(static_cast<uint32_t>(i), info.macvlan->macaddrs[i]);
    return a;
  };
  auto bridge_port = [&]() -> napi_value {
    if (!info.bridge_port) return null;
    return num((info.bridge_port->hairpin ? 1 : 0) | (info.bridge_port->learning ? 2 : 0) | (info.bridge_port->flood ? 4 : 0));
  };
#define MACVTAP_ARG_VALUE(name, value) value,
  const napi_value args[] = {MACVTAP_LINK_FACTORY_ARGS(MACVTAP_ARG_VALUE)};
#undef MACVTAP_ARG_VALUE
  static_assert(sizeof args / sizeof args[0] == kLinkFactoryArgCount, "one value per named argument");
  return factory.Call(env.Undefined(), kLinkFactoryArgCount, args);
}

/**
 * setLinkFactory(fn) → string[]: `fn` is the function every decoded link is handed to from now on, in this
 * environment; the result is its parameters' names in the order the addon passes them (MACVTAP_LINK_FACTORY_ARGS).
 * Throws a TypeError when `fn` is not a function or does not declare one parameter per argument (a factory written
 * for another argument list would read every field after the first difference from the wrong place).
 */
Napi::Value JsSetLinkFactory(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsFunction()) ThrowTypeError(env, "The \"factory\" argument must be a function");
  Napi::Function fn = info[0].As<Napi::Function>();
  Napi::Value declared = fn.Get("length");
  if (!declared.IsNumber() || declared.As<Napi::Number>().Int64Value() != static_cast<int64_t>(kLinkFactoryArgCount)) {
    ThrowTypeError(env, "The \"factory\" argument must declare " + std::to_string(kLinkFactoryArgCount) + " parameters");
  }
  GetEnvData(env).link_factory = Napi::Persistent(fn);
  Napi::Array names = Napi::Array::New(env, kLinkFactoryArgCount);
  for (size_t i = 0; i < kLinkFactoryArgCount; ++i) names.Set(static_cast<uint32_t>(i), kLinkFactoryArgs[i]);
  return names;
}

/**
 * A "link" below is what the environment's link factory (setLinkFactory; NativeLinkFactory in binding.d.ts) returns
 * for the decoded RTM_NEWLINK.
 *
 * linkCreate(req, ns) → Promise<link>. Equivalent to `ip link add … type KIND …` then `ip link show`.
 * errno contract (syscall 'RTM_NEWLINK', device = the name tried, extack = the kernel's reason):
 *   EEXIST      name taken (templates: 4096 numbers tried), or the chosen ifindex is taken (then the message says
 *               "ifindex N is already in use"; older kernels answered EBUSY)
 *   ENODEV      lower device (`link`) does not exist          EOPNOTSUPP  kind unknown to this kernel (no 8021q)
 *   EINVAL      bad combination (second passthru, bad MTU)    EADDRINUSE  MAC clash when brought up
 *   'RTM_GETLINK' ENODEV (device = the lower's name)  a lower given by name does not exist
 *   EPERM       no CAP_NET_ADMIN in the namespace             'open'/'setns' with path: the namespace is unusable
 * Afterwards 'RTM_GETLINK' errors are possible if the link vanished at once (ENODEV).
 */
Napi::Value JsLinkCreate(const Napi::CallbackInfo& info) {
  CreateRequest req = ReadCreate(info[0]);
  NetnsRef ns = ReadNetns(info[1], "ns");
  return PromiseWorker<LinkInfo>::Start(
      info.Env(), "macvtap:linkCreate", [req, ns]() { return LinkCreate(req, ns); },
      [](Napi::Env env, LinkInfo& r) -> Napi::Value { return LinkInfoToJs(env, r); });
}

/**
 * linkGet(key, ns) → Promise<link>. Equivalent to `ip -d link show DEV`.
 * errno contract (syscall 'RTM_GETLINK', device = name or "ifindex N"): ENODEV no such link; EINVAL malformed key
 * (kernel); 'open'/'setns' with path when the namespace is unusable. The tap device is null when sysfs cannot be read.
 */
Napi::Value JsLinkGet(const Napi::CallbackInfo& info) {
  LinkKey key = ReadLinkKey(info[0]);
  NetnsRef ns = ReadNetns(info[1], "ns");
  return PromiseWorker<LinkInfo>::Start(
      info.Env(), "macvtap:linkGet", [key, ns]() { return LinkGet(key, ns); },
      [](Napi::Env env, LinkInfo& r) -> Napi::Value { return LinkInfoToJs(env, r); });
}

/**
 * linkGetSync(key, ns) → link, on the calling thread: the same exchange as linkGet without the libuv pool
 * hop, so it blocks its caller for one kernel round trip (and, for a macvtap, a sysfs read). Errors as linkGet's,
 * thrown.
 */
Napi::Value JsLinkGetSync(const Napi::CallbackInfo& info) {
  LinkKey key = ReadLinkKey(info[0]);
  NetnsRef ns = ReadNetns(info[1], "ns");
  LinkInfo r;
  try {
    r = LinkGet(key, ns);
  } catch (const SysException& e) {
    throw MakeError(info.Env(), e.error());
  }
  return LinkInfoToJs(info.Env(), r);
}

/**
 * linkList(kind, ns) → Promise<link[]>. Equivalent to `ip -d link show [type KIND]`.
 * errno contract (syscall 'RTM_GETLINK'): EAGAIN the dump was interrupted by changes 11 times in a row; ENOBUFS the
 * socket overflowed; 'open'/'setns' with path when the namespace is unusable.
 */
Napi::Value JsLinkList(const Napi::CallbackInfo& info) {
  std::optional<std::string> kind;
  if (!info[0].IsNull() && !info[0].IsUndefined()) kind = ReqString(info[0], "kind");
  NetnsRef ns = ReadNetns(info[1], "ns");
  return PromiseWorker<std::vector<LinkInfo>>::Start(
      info.Env(), "macvtap:linkList", [kind, ns]() { return LinkList(kind, ns); },
      [](Napi::Env env, std::vector<LinkInfo>& r) -> Napi::Value {
        Napi::Array a = Napi::Array::New(env, r.size());
        for (size_t i = 0; i < r.size(); ++i) a.Set(static_cast<uint32_t>(i), LinkInfoToJs(env, r[i]));
        return a;
      });
}

/**
 * linkSet(key, change, ns) → Promise<void>. Equivalent to `ip link set DEV … [master BR | nomaster]`.
 * errno contract (syscall 'RTM_NEWLINK', device = the key): ENODEV no such link; EBUSY rename while up (only on
 * kernels that still refuse it: 6.18 renames running links);
 * EEXIST new name taken; EINVAL MTU out of range / bad address; EADDRINUSE MAC clash on up; 'open' with path when
 * the target namespace cannot be opened. (Renaming by name first resolves the index: 'RTM_GETLINK' ENODEV.)
 * master: 'RTM_GETLINK' ENODEV (device = the master's name) when a master given by name does not exist; EINVAL /
 * EOPNOTSUPP when the master cannot take this port (not a bridge/bond, a loop); EBUSY already enslaved elsewhere.
 */
Napi::Value JsLinkSet(const Napi::CallbackInfo& info) {
  LinkKey key = ReadLinkKey(info[0]);
  SetRequest change = ReadSet(info[1]);
  NetnsRef ns = ReadNetns(info[2], "ns");
  return PromiseWorker<Nothing>::Start(
      info.Env(), "macvtap:linkSet", [key, change, ns]() { LinkSet(key, change, ns); return Nothing{}; },
      ResolveNothing);
}

/**
 * linkDelete(key, ns) → Promise<void>. Equivalent to `ip link del DEV` (waits one RCU grace period).
 * errno contract (syscall 'RTM_DELLINK'): ENODEV no such link; EOPNOTSUPP the link cannot be deleted (e.g. lo).
 */
Napi::Value JsLinkDelete(const Napi::CallbackInfo& info) {
  LinkKey key = ReadLinkKey(info[0]);
  NetnsRef ns = ReadNetns(info[1], "ns");
  return PromiseWorker<Nothing>::Start(
      info.Env(), "macvtap:linkDelete", [key, ns]() { LinkDelete(key, ns); return Nothing{}; }, ResolveNothing);
}

/**
 * linkDeleteGroup(group, ns) → Promise<void>. Equivalent to `ip link del group N`: one RTM_DELLINK for all.
 * errno contract (syscall 'RTM_DELLINK', device "group N"): ENODEV no link in the group; EOPNOTSUPP a link in the
 * group cannot be deleted (e.g. lo, which is in group 0): then nothing is deleted.
 */
Napi::Value JsLinkDeleteGroup(const Napi::CallbackInfo& info) {
  uint32_t group = static_cast<uint32_t>(ReqInt(info[0], "group", 0, UINT32_MAX));
  NetnsRef ns = ReadNetns(info[1], "ns");
  return PromiseWorker<Nothing>::Start(
      info.Env(), "macvtap:linkDeleteGroup", [group, ns]() { LinkDeleteGroup(group, ns); return Nothing{}; },
      ResolveNothing);
}

}  // namespace macvtap

namespace macvtap {

/**
 * linkSetBridgePort(key, { hairpin?, learning?, flood? }, ns) → Promise<void>. Equivalent to
 * `ip link set dev DEV type bridge_slave [hairpin on|off] [learning on|off] [flood on|off]`.
 * errno contract (syscall 'RTM_NEWLINK', device = the key, extack = the kernel's reason): ENODEV no such link;
 * EOPNOTSUPP / EINVAL the link is not a bridge port (no master, or a master that is not a bridge).
 */
Napi::Value JsLinkSetBridgePort(const Napi::CallbackInfo& info) {
  LinkKey key = ReadLinkKey(info[0]);
  Napi::Object o = ReqObject(info[1], "port");
  BridgePortRequest req;
  req.hairpin = OptBool(o, "hairpin");
  req.learning = OptBool(o, "learning");
  req.flood = OptBool(o, "flood");
  NetnsRef ns = ReadNetns(info[2], "ns");
  return PromiseWorker<Nothing>::Start(
      info.Env(), "macvtap:linkSetBridgePort", [key, req, ns]() { LinkSetBridgePort(key, req, ns); return Nothing{}; },
      [](Napi::Env env, Nothing&) -> Napi::Value { return env.Undefined(); });
}

}  // namespace macvtap
