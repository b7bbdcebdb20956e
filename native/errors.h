// The one error factory. Worker threads never touch JS: they throw/stash a plain SysError, and the main thread turns
// it into a JS Error shaped like Node's SystemError (code, negative errno, syscall, path, device, extack).
#pragma once

#include <napi.h>

#include <exception>
#include <string>

namespace macvtap {

/** A failed syscall or netlink request, as produced on any thread. `err` is a positive errno value. */
struct SysError {
  int err = 0;
  std::string syscall;
  std::string path;
  std::string device;
  /** The kernel's extended-ack text (NLMSGERR_ATTR_MSG). */
  std::string extack;
  /** Our own explanation, for refusals that do not come from the kernel (e.g. "not a macvtap link"). */
  std::string detail;
};

/** Thrown by the C++ operations (never across a N-API boundary: workers catch it in Execute()). */
class SysException : public std::exception {
 public:
  explicit SysException(SysError error);
  const char* what() const noexcept override { return what_.c_str(); }
  const SysError& error() const { return error_; }

 private:
  SysError error_;
  std::string what_;
};

/** Throws a SysException built from `err` (positive errno) and the context. */
[[noreturn]] void ThrowSys(int err, std::string syscall, std::string path = {}, std::string device = {},
                           std::string detail = {});

/** The errno name ("EEXIST"); "E<number>" for numbers glibc does not name. */
std::string ErrnoName(int err);

/** The message text: `EEXIST: File exists, RTM_NEWLINK 'macvtap0' — kernel: <extack>`. */
std::string FormatMessage(const SysError& e);

/**
 * Whether `env` can still run JavaScript. False while a worker_thread is being terminated: N-API calls that may run
 * JS then fail with napi_pending_exception, and node-addon-api turns that failure into a fatal error (it wraps the
 * non-object termination exception, which fails again). Every libuv-driven callback of ours (async work
 * completions, the link watcher's poll, thread-safe function calls) checks this before touching JS, and gives up
 * quietly: nobody is left to observe the result, and the environment's cleanup hooks release what it held.
 */
bool CanCallIntoJs(napi_env env);

/** Builds the JS Error (main thread only). */
Napi::Error MakeError(Napi::Env env, const SysError& e);

/** Throws a JS TypeError with Node's `ERR_INVALID_ARG_TYPE` code (for garbage that got past lib/'s validation). */
[[noreturn]] void ThrowTypeError(Napi::Env env, const std::string& message);

}  // namespace macvtap
