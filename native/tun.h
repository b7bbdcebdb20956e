// Plain tun/tap devices (/dev/net/tun): the "tap + Linux bridge / OVS" references of the benchmark. The device is
// made by TUNSETIFF in the network namespace of whoever opened /dev/net/tun, so the open happens on a worker thread
// inside the target namespace. Non-persistent: the device disappears when its last fd closes.
#pragma once

#include <napi.h>

#include <string>

#include "netns.h"
#include "ownership.h"

namespace macvtap {

/** NativeTunResult; `fds` holds the one fd until claimed. */
struct TunResult {
  FdBatch fds;
  std::string name;
  int ifindex = 0;
};

TunResult TunCreate(const std::string& name, bool vnet_hdr, const NetnsRef& ns);

Napi::Value JsTunCreate(const Napi::CallbackInfo& info);

}  // namespace macvtap
