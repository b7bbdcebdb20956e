// Writing one network sysctl (/proc/sys/net/...) as a given network namespace sees it.
#pragma once

#include <napi.h>

#include <string>

#include "netns.h"

namespace macvtap {

/**
 * Writes `value` to `/proc/sys/<key>` from inside `ns` (a /proc/sys/net file belongs to the network namespace of the
 * thread that opens it, so the open happens after setns on this worker thread). `key` is already validated by lib/.
 */
void SysctlWrite(const std::string& key, const std::string& value, const NetnsRef& ns);

Napi::Value JsSysctlWrite(const Napi::CallbackInfo& info);

}  // namespace macvtap
