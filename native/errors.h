// The one error factory. Worker threads never touch JS: they throw/stash a plain SysError (syserror.h, free of
// N-API), and the main thread turns it into a JS Error shaped like Node's SystemError (code, negative errno, syscall,
// path, device, extack).
#pragma once

#include <napi.h>

#include <string>

#include "syserror.h"

namespace macvtap {

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
