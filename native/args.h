// Reading JS inputs on the main thread. lib/ validates and defaults everything first (binding.d.ts says what it
// guarantees); these readers only convert, and refuse what cannot be converted: a missing required value, a value of
// the wrong type, a number outside the C type it becomes (the ranges are the types', not the kernel's limits, which
// lib/ checks), a MAC that is not six octets. Garbage from any other caller becomes a TypeError/RangeError instead of
// undefined behaviour or an abort; it is never given a default here.
#pragma once

#include <napi.h>
#include <stdint.h>

#include <optional>
#include <string>
#include <vector>

#include "netns.h"

namespace macvtap {

/** An argument that must be an object. */
Napi::Object ReqObject(const Napi::Value& v, const char* what);
/** An integer in [min, max] (TypeError when not a number or not an integer, RangeError when out of range). */
int64_t ReqInt(const Napi::Value& v, const char* what, int64_t min, int64_t max);
std::string ReqString(const Napi::Value& v, const char* what);
/** A boolean (TypeError otherwise). */
bool ReqBool(const Napi::Value& v, const char* what);

/** Object properties: `undefined` (and `null`) mean absent. */
std::optional<int64_t> OptInt(const Napi::Object& o, const char* key, int64_t min, int64_t max);
std::optional<std::string> OptString(const Napi::Object& o, const char* key);
std::optional<bool> OptBool(const Napi::Object& o, const char* key);
/** "aa:bb:cc:dd:ee:ff" → 6 bytes. */
std::optional<std::vector<uint8_t>> OptMac(const Napi::Object& o, const char* key);
std::vector<uint8_t> ParseMac(Napi::Env env, const std::string& s, const char* what);
/** An IPv4 (family AF_INET, 4 bytes) or IPv6 (AF_INET6, 16 bytes) address in text form (TypeError otherwise). */
std::vector<uint8_t> ParseIp(Napi::Env env, int family, const std::string& text, const char* what);

/** A NativeNetns: null/undefined → current, string → path, number → fd. */
NetnsRef ReadNetns(const Napi::Value& v, const char* what);

/** An array of fds (non-negative int32). */
std::vector<int> ReadFdArray(const Napi::Value& v, const char* what);

/** RangeError with Node's `ERR_OUT_OF_RANGE`. */
[[noreturn]] void ThrowRangeError(Napi::Env env, const std::string& message);

}  // namespace macvtap
