#include "errors.h"

#include <string.h>

#include <utility>

namespace macvtap {

SysException::SysException(SysError error) : error_(std::move(error)), what_(FormatMessage(error_)) {}

void ThrowSys(int err, std::string syscall, std::string path, std::string device, std::string detail) {
  SysError e;
  e.err = err;
  e.syscall = std::move(syscall);
  e.path = std::move(path);
  e.device = std::move(device);
  e.detail = std::move(detail);
  throw SysException(std::move(e));
}

std::string ErrnoName(int err) {
  // strerrorname_np exists since glibc 2.32 (Debian 12 has 2.36); it returns NULL for numbers it does not know.
  const char* name = strerrorname_np(err);
  if (name != nullptr) return name;
  return "E" + std::to_string(err);
}

std::string FormatMessage(const SysError& e) {
  std::string msg = ErrnoName(e.err);
  msg += ": ";
  char buf[256];
  // GNU strerror_r: returns a pointer that may or may not be buf; thread-safe, unlike strerror.
  msg += strerror_r(e.err, buf, sizeof buf);
  if (!e.syscall.empty()) msg += ", " + e.syscall;
  if (!e.path.empty()) {
    msg += " '" + e.path + "'";
    if (!e.device.empty()) msg += " (" + e.device + ")";
  } else if (!e.device.empty()) {
    msg += " '" + e.device + "'";
  }
  if (!e.detail.empty()) msg += ": " + e.detail;
  if (!e.extack.empty()) msg += " \u2014 kernel: " + e.extack;
  return msg;
}

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
