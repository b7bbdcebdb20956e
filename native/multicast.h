// A link's link-layer multicast list (what `ip maddr` shows and edits): read from /proc/net/dev_mcast of the link's
// namespace, changed with SIOCADDMULTI/SIOCDELMULTI. A macvlan/macvtap builds its receive filter from this list.
#pragma once

#include <napi.h>

#include <array>
#include <optional>
#include <string>
#include <vector>

#include "link.h"
#include "netns.h"

namespace macvtap {

/** One entry of a link's multicast list. */
struct MulticastEntry {
  std::array<uint8_t, 6> addr{};
  /** Users of the entry (the IP stack's joins, sockets' memberships, a SIOCADDMULTI). */
  int users = 0;
  /** Added with SIOCADDMULTI (`ip maddr add`: iproute2 shows it as `static`). */
  bool global = false;
};

struct MulticastSyncResult {
  std::string device;
  std::vector<std::array<uint8_t, 6>> added;
  std::vector<std::array<uint8_t, 6>> removed;
  /** The list after the change. */
  std::vector<MulticastEntry> entries;
};

/**
 * Makes the SIOCADDMULTI ("static") part of the link's multicast list exactly `wanted` (nothing changes when it is
 * absent): adds the missing addresses, deletes static ones not wanted. Entries others hold (the IP stack's own joins,
 * packet sockets' memberships) are never touched.
 */
MulticastSyncResult MulticastSync(const LinkKey& key, const std::optional<std::vector<std::array<uint8_t, 6>>>& wanted,
                                  const NetnsRef& ns);

Napi::Value JsLinkMulticastSync(const Napi::CallbackInfo& info);

}  // namespace macvtap
