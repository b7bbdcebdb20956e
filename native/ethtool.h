// Offload switches through the legacy SIOCETHTOOL set commands (what `ethtool -K DEV tx off …` ends up changing).
// OVS's userspace datapath needs tx checksumming off on veths whose traffic crosses it.
#pragma once

#include <napi.h>

#include <optional>

#include "link.h"
#include "netns.h"

namespace macvtap {

/** NativeOffloads: absent = unchanged. */
struct OffloadRequest {
  std::optional<bool> tx, rx, sg, tso, gso, gro;
};

void EthtoolSetOffloads(const LinkKey& key, const OffloadRequest& req, const NetnsRef& ns);

Napi::Value JsEthtoolSetOffloads(const Napi::CallbackInfo& info);

}  // namespace macvtap
