#include "errors.h"

namespace macvtap {

bool CanCallIntoJs(napi_env env) {
  if (env == nullptr) return false;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return false;
  napi_value obj;
  napi_value val;
  // napi_set_named_property is one of the calls guarded by Node's NAPI_PREAMBLE (it may run setters), which refuses
  // with napi_pending_exception once the environment cannot call into JS; creating the two values is always allowed.
  bool ok = napi_create_object(env, &obj) == napi_ok && napi_get_boolean(env, true, &val) == napi_ok &&
            napi_set_named_property(env, obj, "probe", val) == napi_ok;
  napi_close_handle_scope(env, scope);
  return ok;
}

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
