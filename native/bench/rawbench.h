// The control-plane benchmark's floor: the kernel's own cost of a cheap request, timed in C with nothing of ours on
// the path (no JS, no N-API, no parser), so the addon's per-call overhead can be stated as a difference.
#pragma once

#include <napi.h>

namespace macvtap {

Napi::Value JsRawGetLinkLoop(const Napi::CallbackInfo& info);

}  // namespace macvtap
