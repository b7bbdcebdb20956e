// Interface addresses over rtnetlink (RTM_NEWADDR): what the benchmark's testbed needs to give a peer an IP.
#pragma once

#include <napi.h>
#include <stdint.h>

#include <vector>

#include "link.h"
#include "netns.h"

namespace macvtap {

/** NativeAddress: one address with its prefix length. */
struct AddressRequest {
  int family = 0;  // AF_INET or AF_INET6
  std::vector<uint8_t> address;  // 4 or 16 bytes, network order
  uint8_t prefixlen = 0;
};

void AddrAdd(const LinkKey& key, const AddressRequest& req, const NetnsRef& ns);

Napi::Value JsAddrAdd(const Napi::CallbackInfo& info);

}  // namespace macvtap
