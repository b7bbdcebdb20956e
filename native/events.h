// Link events: a non-blocking NETLINK_ROUTE socket joined to RTNLGRP_LINK, watched by libuv on the main thread
// (uv_poll_t on its fd: no thread per watcher, no polling). Messages are decoded by eventmsg.h (pure, fuzzed) and
// handed to JS in batches; the policy (snapshot, reconciliation, resync after ENOBUFS, change detection) lives in
// lib/events.ts.
#pragma once

#include <napi.h>

namespace macvtap {

Napi::Value JsLinkWatch(const Napi::CallbackInfo& info);

}  // namespace macvtap
