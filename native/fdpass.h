// Handing fds to another process: SCM_RIGHTS over Unix stream sockets, and execvp with chosen fds inherited.
#pragma once

#include <napi.h>

namespace macvtap {

Napi::Value JsSendFds(const Napi::CallbackInfo& info);
Napi::Value JsRecvFds(const Napi::CallbackInfo& info);
Napi::Value JsExecvp(const Napi::CallbackInfo& info);

}  // namespace macvtap
