// Link operations over rtnetlink: create, get, list, set, delete, delete by group. Pure C++ (worker threads); the
// JS glue is at the bottom of link.cc.
#pragma once

#include <napi.h>
#include <net/if.h>
#include <stdint.h>

#include <optional>
#include <string>
#include <vector>

#include "linkmsg.h"
#include "netns.h"

namespace macvtap {

/** Selects a link by ifindex (when > 0) or by name. */
struct LinkKey {
  int index = 0;
  std::string name;
  /** "eth0" or "ifindex 7", for errors. */
  std::string Describe() const;
};

/**
 * The `ifreq` naming `key`'s device for ioctls on `sock` (an AF_INET socket opened in the link's namespace: ioctls act
 * in the socket's namespace): `ifr_name` and `ifr_ifindex` both filled, the missing one looked up with SIOCGIFNAME /
 * SIOCGIFINDEX. Throws the SystemError of that ioctl (ENODEV: no such link).
 */
ifreq IfreqOf(int sock, const LinkKey& key);

struct PeerRequest {
  std::string name;
  std::optional<std::vector<uint8_t>> address;
  NetnsRef netns;
};

/** NativeCreateLink. */
struct CreateRequest {
  std::string kind;
  std::string name;
  std::optional<uint32_t> link;
  /** The lower device by name: resolved on the same socket, inside the create operation. */
  std::optional<std::string> link_name;
  std::optional<int32_t> ifindex;
  std::optional<std::vector<uint8_t>> address;
  std::optional<uint32_t> mtu, txqlen, group;
  /** IFLA_NUM_TX_QUEUES and IFLA_NUM_RX_QUEUES, both this value. */
  std::optional<uint32_t> num_queues;
  bool up = false;
  /** IFF_ALLMULTI in the create's ifi_flags/ifi_change (the kernel applies it through __dev_change_flags). */
  bool allmulti = false;
  std::optional<std::string> alias;
  // With `alias`: IFLA_GROUP set together with the alias, in the change request that follows the create (the create
  // itself carries `group`, which lib/ uses as an atomic "under construction by pid" marker).
  std::optional<uint32_t> final_group;
  std::optional<uint32_t> macvlan_mode, macvlan_flags;
  std::optional<std::vector<std::vector<uint8_t>>> macvlan_macaddrs;
  std::optional<uint16_t> vlan_id, vlan_protocol;
  std::optional<PeerRequest> peer;
};

/** NativeSetLink. */
struct SetRequest {
  std::optional<bool> up, promisc, allmulti;
  std::optional<uint32_t> mtu, group, txqlen;
  std::optional<std::vector<uint8_t>> address;
  std::optional<std::string> name, alias;
  std::optional<NetnsRef> netns;
  /** IFLA_MASTER: an ifindex (0 = no master), or a name resolved on the same socket. */
  std::optional<uint32_t> master;
  std::optional<std::string> master_name;
  /**
   * Source mode's MAC list (IFLA_MACVLAN_MACADDR_MODE): ADD/DEL take macaddrs[0] as IFLA_MACVLAN_MACADDR, SET the whole
   * list as IFLA_MACVLAN_MACADDR_DATA, FLUSH none. `info_kind` is the link's own kind (macvtap or macvlan), which
   * IFLA_LINKINFO must repeat for the kernel to reach macvlan_changelink.
   */
  std::optional<uint32_t> macaddr_mode;
  std::vector<std::vector<uint8_t>> macaddrs;
  std::string info_kind;
};

/** NativeBridgePort: what `ip link set dev X type bridge_slave …` changes; absent = unchanged. */
struct BridgePortRequest {
  std::optional<bool> hairpin, learning, flood;
};

LinkInfo LinkCreate(const CreateRequest& req, const NetnsRef& ns);
/** With `full`, also the lower device's name (link_name) and a macvtap's char device (tap_major/tap_minor, sysfs). */
LinkInfo LinkGet(const LinkKey& key, const NetnsRef& ns, bool full = true);
std::vector<LinkInfo> LinkList(const std::optional<std::string>& kind, const NetnsRef& ns);
void LinkSet(const LinkKey& key, const SetRequest& change, const NetnsRef& ns);
void LinkDelete(const LinkKey& key, const NetnsRef& ns);
void LinkDeleteGroup(uint32_t group, const NetnsRef& ns);
void LinkSetBridgePort(const LinkKey& key, const BridgePortRequest& req, const NetnsRef& ns);
/** The ifindex of `key` (no request when it is already an index), over a pooled socket of `ns`. */
int ResolveIndex(NetlinkSocket& sock, const LinkKey& key);

/** JS → C++ conversions shared with tap.cc (main thread; throw a JS TypeError on garbage). */
LinkKey ReadLinkKey(const Napi::Value& v);
/** JS conversion of a decoded link: what the environment's link factory (setLinkFactory) returns for it. */
Napi::Value LinkInfoToJs(Napi::Env env, const LinkInfo& info);
Napi::Value JsSetLinkFactory(const Napi::CallbackInfo& info);

Napi::Value JsLinkCreate(const Napi::CallbackInfo& info);
Napi::Value JsLinkGet(const Napi::CallbackInfo& info);
Napi::Value JsLinkGetSync(const Napi::CallbackInfo& info);
Napi::Value JsLinkList(const Napi::CallbackInfo& info);
Napi::Value JsLinkSet(const Napi::CallbackInfo& info);
Napi::Value JsLinkDelete(const Napi::CallbackInfo& info);
Napi::Value JsLinkDeleteGroup(const Napi::CallbackInfo& info);
Napi::Value JsLinkSetBridgePort(const Napi::CallbackInfo& info);

}  // namespace macvtap
