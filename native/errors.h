// The one error factory. Worker threads never touch JS: they throw/stash a plain SysError (syserror.h, free of
// N-API), and the main thread turns it into a JS Error shaped like Node's SystemError (code, negative errno, syscall,
// path, device, extack).
#pragma once

#include <napi.h>

#include <string>

#include "syserror.h"

namespace macvtap {

/** Builds the JS Error (main thread only). */
Napi::Error MakeError(Napi::Env env, const SysError& e);

/** Throws a JS TypeError with Node's `ERR_INVALID_ARG_TYPE` code (for garbage that got past lib/'s validation). */
[[noreturn]] void ThrowTypeError(Napi::Env env, const std::string& message);

}  // namespace macvtap
