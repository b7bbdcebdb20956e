// The one place that registers the library addon's exports (typed in binding.d.ts); the benchmark's natives are a
// separate addon (native/bench/addon.cc). Each function's errno contract is
// documented next to its definition.
#include <napi.h>

#include "address.h"
#include "ethtool.h"
#include "events.h"
#include "fdpass.h"
#include "link.h"
#include "multicast.h"
#include "nft.h"
#include "ownership.h"
#include "route.h"
#include "sysctl.h"
#include "tap.h"
#include "tc.h"
#include "tun.h"
#include "vhost.h"

namespace macvtap {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  Ownership::Install(env);
  exports.Set("setLinkFactory", Napi::Function::New(env, JsSetLinkFactory, "setLinkFactory"));
  exports.Set("linkCreate", Napi::Function::New(env, JsLinkCreate, "linkCreate"));
  exports.Set("linkGet", Napi::Function::New(env, JsLinkGet, "linkGet"));
  exports.Set("linkGetSync", Napi::Function::New(env, JsLinkGetSync, "linkGetSync"));
  exports.Set("linkList", Napi::Function::New(env, JsLinkList, "linkList"));
  exports.Set("linkSet", Napi::Function::New(env, JsLinkSet, "linkSet"));
  exports.Set("linkDelete", Napi::Function::New(env, JsLinkDelete, "linkDelete"));
  exports.Set("linkDeleteGroup", Napi::Function::New(env, JsLinkDeleteGroup, "linkDeleteGroup"));
  exports.Set("linkSetBridgePort", Napi::Function::New(env, JsLinkSetBridgePort, "linkSetBridgePort"));
  exports.Set("linkWatch", Napi::Function::New(env, JsLinkWatch, "linkWatch"));
  exports.Set("linkMulticastSync", Napi::Function::New(env, JsLinkMulticastSync, "linkMulticastSync"));
  exports.Set("addrAdd", Napi::Function::New(env, JsAddrAdd, "addrAdd"));
  exports.Set("routeAdd", Napi::Function::New(env, JsRouteAdd, "routeAdd"));
  exports.Set("tunCreate", Napi::Function::New(env, JsTunCreate, "tunCreate"));
  exports.Set("ethtoolSetOffloads", Napi::Function::New(env, JsEthtoolSetOffloads, "ethtoolSetOffloads"));
  exports.Set("tapOpen", Napi::Function::New(env, JsTapOpen, "tapOpen"));
  exports.Set("tapRead", Napi::Function::New(env, JsTapRead, "tapRead"));
  exports.Set("tapWrite", Napi::Function::New(env, JsTapWrite, "tapWrite"));
  exports.Set("mknodChar", Napi::Function::New(env, JsMknodChar, "mknodChar"));
  exports.Set("vhostGetFeatures", Napi::Function::New(env, JsVhostGetFeatures, "vhostGetFeatures"));
  exports.Set("vhostSetOwner", Napi::Function::New(env, JsVhostSetOwner, "vhostSetOwner"));
  exports.Set("fdClose", Napi::Function::New(env, JsFdClose, "fdClose"));
  exports.Set("fdCloseAsync", Napi::Function::New(env, JsFdCloseAsync, "fdCloseAsync"));
  exports.Set("fdRelease", Napi::Function::New(env, JsFdRelease, "fdRelease"));
  exports.Set("ownedFds", Napi::Function::New(env, JsOwnedFds, "ownedFds"));
  exports.Set("sendFds", Napi::Function::New(env, JsSendFds, "sendFds"));
  exports.Set("recvFds", Napi::Function::New(env, JsRecvFds, "recvFds"));
  exports.Set("tcDump", Napi::Function::New(env, JsTcDump, "tcDump"));
  exports.Set("tcApply", Napi::Function::New(env, JsTcApply, "tcApply"));
  exports.Set("nftRun", Napi::Function::New(env, JsNftRun, "nftRun"));
  exports.Set("sysctlWrite", Napi::Function::New(env, JsSysctlWrite, "sysctlWrite"));
  exports.Set("execvp", Napi::Function::New(env, JsExecvp, "execvp"));
  return exports;
}

}  // namespace macvtap

// The macro pastes its argument into a symbol name, so it needs an unqualified function.
static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) { return macvtap::Init(env, exports); }

NODE_API_MODULE(macvtap, InitAddon)
