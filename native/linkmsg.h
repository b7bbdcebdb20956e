// The RTM_NEWLINK message decoder: one link's attributes (IFLA_*, IFLA_LINKINFO with the macvlan/vlan data and the
// source-MAC list, a bridge port's IFLA_INFO_SLAVE_DATA) into a LinkInfo. Pure C++ over bytes the kernel sent (no
// N-API, no syscalls): link.cc and events.cc use it, and native/fuzz feeds it arbitrary bytes.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <optional>
#include <string>
#include <vector>

namespace macvtap {

struct MacvlanInfo {
  uint32_t mode = 0;
  uint32_t flags = 0;
  std::optional<uint32_t> macaddr_count;
  std::vector<std::string> macaddrs;
};

struct VlanInfo {
  uint16_t id = 0;
  uint16_t protocol = 0;
};

/** IFLA_INFO_SLAVE_DATA of a bridge port (IFLA_BRPORT_*). */
struct BridgePortInfo {
  bool hairpin = false;
  bool learning = false;
  bool flood = false;
};

/** Everything decoded from one RTM_NEWLINK message (handed to the link factory: NativeLinkFactory in binding.d.ts). */
struct LinkInfo {
  int ifindex = 0;
  std::string name;
  std::optional<std::string> kind;
  std::optional<std::string> address;
  std::optional<std::string> broadcast;
  uint32_t mtu = 0;
  std::optional<uint32_t> min_mtu, max_mtu;
  uint32_t txqlen = 0;
  uint32_t flags = 0;
  uint8_t operstate = 0;
  std::optional<uint32_t> link;
  std::optional<int32_t> link_netnsid;
  std::optional<std::string> link_name;
  std::optional<uint32_t> master;
  uint32_t group = 0;
  std::optional<std::string> alias;
  std::optional<uint32_t> num_tx_queues, num_rx_queues;
  std::optional<MacvlanInfo> macvlan;
  std::optional<VlanInfo> vlan;
  /** IFLA_INFO_SLAVE_KIND ("bridge", "bond", …). */
  std::optional<std::string> slave_kind;
  std::optional<BridgePortInfo> bridge_port;
  bool has_tap_dev = false;
  unsigned tap_major = 0, tap_minor = 0;
};

/** Decodes one RTM_NEWLINK message; throws EBADMSG when it is too short to be one. */
LinkInfo ParseLink(const std::vector<uint8_t>& msg);

/** "aa:bb:cc:dd:ee:ff" for any hardware address length. */
std::string FormatHwAddr(const uint8_t* data, size_t len);

}  // namespace macvtap
