// Traffic control over rtnetlink (qdiscs, classes, filters), with messages of our own (tcmsg.h): the kernel side of
// lib/bandwidth.ts. No `tc` process.
#pragma once

#include <napi.h>

namespace macvtap {

Napi::Value JsTcDump(const Napi::CallbackInfo& info);
Napi::Value JsTcApply(const Napi::CallbackInfo& info);

}  // namespace macvtap
