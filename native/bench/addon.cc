// The harness's addon (macvtap_bench.node, package macvtap-bench): the one place that registers its exports, typed in
// bench/binding.d.ts. Datapath endpoints, packet capture and the raw netlink floor loop live here so that the
// library's addon, which every driver loads, carries none of them. It links the library's objects (namespaces,
// netlink, fd ownership), with state of its own per environment: fds it opens (packet sockets) are owned and closed
// by this addon, never by the library's.
#include <napi.h>

#include "endpoint.h"
#include "ownership.h"
#include "rawbench.h"
#include "sniff.h"
#include "tap.h"

namespace macvtap {

Napi::Object InitBench(Napi::Env env, Napi::Object exports) {
  Ownership::Install(env);
  exports.Set("rawGetLinkLoop", Napi::Function::New(env, JsRawGetLinkLoop, "rawGetLinkLoop"));
  exports.Set("packetOpen", Napi::Function::New(env, JsPacketOpen, "packetOpen"));
  exports.Set("frameCapture", Napi::Function::New(env, JsFrameCapture, "frameCapture"));
  exports.Set("frameWrite", Napi::Function::New(env, JsTapWrite, "frameWrite"));
  exports.Set("fdClose", Napi::Function::New(env, JsFdClose, "fdClose"));
  exports.Set("ownedFds", Napi::Function::New(env, JsOwnedFds, "ownedFds"));
  InstallEndpoints(env, exports);
  return exports;
}

}  // namespace macvtap

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) { return macvtap::InitBench(env, exports); }

NODE_API_MODULE(macvtap_bench, InitAddon)
