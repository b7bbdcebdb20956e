// Packet capture for the anti-spoofing probe: an AF_PACKET socket bound to one link of a given namespace (the peer's
// view of the wire), and a bounded wait for frames that carry a marker, on that socket or on any other frame fd (a
// tap queue). Writing a frame on the socket sends it out of the bound link, as a host on that wire would.
#pragma once

#include <napi.h>

#include <string>

#include "netns.h"
#include "ownership.h"

namespace macvtap {

/** NativePacketSocket; `fds` holds the one fd until claimed. */
struct PacketSocketResult {
  FdBatch fds;
  int ifindex = 0;
};

/** Opens an AF_PACKET/SOCK_RAW socket inside `ns`, bound to `ifname` for every protocol; see JsPacketOpen. */
PacketSocketResult PacketOpen(const std::string& ifname, const NetnsRef& ns);

Napi::Value JsPacketOpen(const Napi::CallbackInfo& info);
Napi::Value JsFrameCapture(const Napi::CallbackInfo& info);

}  // namespace macvtap
