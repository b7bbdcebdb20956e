// Routes over rtnetlink (RTM_NEWROUTE): what a CNI attachment's IPAM result asks for (its default route).
#pragma once

#include <napi.h>
#include <stdint.h>

#include <optional>
#include <vector>

#include "link.h"
#include "netns.h"

namespace macvtap {

/** NativeRoute: a destination prefix in the main table, through the link, optionally via a gateway. */
struct RouteRequest {
  int family = 0;                // AF_INET or AF_INET6
  std::vector<uint8_t> dst;      // 4 or 16 bytes, network order
  uint8_t dst_len = 0;
  std::optional<std::vector<uint8_t>> gateway;
};

void RouteAdd(const LinkKey& key, const RouteRequest& req, const NetnsRef& ns);

Napi::Value JsRouteAdd(const Napi::CallbackInfo& info);

}  // namespace macvtap
