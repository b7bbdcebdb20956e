// nftables transactions through libnftables, loaded at run time (see nft.cc).
#pragma once

#include <napi.h>

#include <string>

#include "netns.h"

namespace macvtap {

/** Runs `commands` (nft syntax) as one transaction inside `ns`; returns what they print (JSON when `json`). */
std::string NftRun(const std::string& commands, bool json, const NetnsRef& ns, const std::string& device);

/**
 * Deletes the port-security table of `device` (`netdev mvtps-DEV`, see lib/portsec) in `ns` over nfnetlink, without
 * libnftables: what deleting a link does so that nothing of ours stays in the ruleset (Linux >= ~6.16 would bind the
 * table's chains to the next device of that name). Best effort, never throws: true when a table was deleted.
 */
bool DeletePortSecurityTable(const NetnsRef& ns, const std::string& device);

Napi::Value JsNftRun(const Napi::CallbackInfo& info);

}  // namespace macvtap
