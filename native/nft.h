// nftables transactions through libnftables, loaded at run time (see nft.cc).
#pragma once

#include <napi.h>

#include <string>

#include "netns.h"

namespace macvtap {

/** Runs `commands` (nft syntax) as one transaction inside `ns`; returns what they print (JSON when `json`). */
std::string NftRun(const std::string& commands, bool json, const NetnsRef& ns, const std::string& device);

Napi::Value JsNftRun(const Napi::CallbackInfo& info);

}  // namespace macvtap
