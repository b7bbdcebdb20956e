#include "errors.h"

namespace macvtap {

Napi::Error MakeError(Napi::Env env, const SysError& e) {
  Napi::Error error = Napi::Error::New(env, FormatMessage(e));
  Napi::Object obj = error.Value();
  obj.Set("code", ErrnoName(e.err));
  obj.Set("errno", Napi::Number::New(env, -e.err));
  obj.Set("syscall", e.syscall);
  if (!e.path.empty()) obj.Set("path", e.path);
  if (!e.device.empty()) obj.Set("device", e.device);
  if (!e.extack.empty()) obj.Set("extack", e.extack);
  return error;
}

void ThrowTypeError(Napi::Env env, const std::string& message) {
  Napi::TypeError error = Napi::TypeError::New(env, message);
  error.Value().Set("code", "ERR_INVALID_ARG_TYPE");
  throw error;
}

}  // namespace macvtap
