#include "args.h"

#include <arpa/inet.h>
#include <math.h>
#include <stdio.h>

#include "errors.h"

namespace macvtap {

void ThrowRangeError(Napi::Env env, const std::string& message) {
  Napi::RangeError error = Napi::RangeError::New(env, message);
  error.Value().Set("code", "ERR_OUT_OF_RANGE");
  throw error;
}

Napi::Object ReqObject(const Napi::Value& v, const char* what) {
  if (!v.IsObject() || v.IsNull()) ThrowTypeError(v.Env(), std::string("The \"") + what + "\" argument must be an object");
  return v.As<Napi::Object>();
}

int64_t ReqInt(const Napi::Value& v, const char* what, int64_t min, int64_t max) {
  if (!v.IsNumber()) ThrowTypeError(v.Env(), std::string("The \"") + what + "\" argument must be a number");
  double d = v.As<Napi::Number>().DoubleValue();
  if (!isfinite(d) || d != floor(d)) ThrowRangeError(v.Env(), std::string("\"") + what + "\" must be an integer");
  if (d < static_cast<double>(min) || d > static_cast<double>(max)) {
    ThrowRangeError(v.Env(), std::string("\"") + what + "\" must be >= " + std::to_string(min) + " and <= " +
                                 std::to_string(max));
  }
  return static_cast<int64_t>(d);
}

std::string ReqString(const Napi::Value& v, const char* what) {
  if (!v.IsString()) ThrowTypeError(v.Env(), std::string("The \"") + what + "\" argument must be a string");
  return v.As<Napi::String>().Utf8Value();
}

bool ReqBool(const Napi::Value& v, const char* what) {
  if (!v.IsBoolean()) ThrowTypeError(v.Env(), std::string("The \"") + what + "\" option must be a boolean");
  return v.As<Napi::Boolean>().Value();
}

namespace {
bool Absent(const Napi::Value& v) { return v.IsUndefined() || v.IsNull(); }
}  // namespace

std::optional<int64_t> OptInt(const Napi::Object& o, const char* key, int64_t min, int64_t max) {
  Napi::Value v = o.Get(key);
  if (Absent(v)) return std::nullopt;
  return ReqInt(v, key, min, max);
}

std::optional<std::string> OptString(const Napi::Object& o, const char* key) {
  Napi::Value v = o.Get(key);
  if (Absent(v)) return std::nullopt;
  return ReqString(v, key);
}

std::optional<bool> OptBool(const Napi::Object& o, const char* key) {
  Napi::Value v = o.Get(key);
  if (Absent(v)) return std::nullopt;
  return ReqBool(v, key);
}

std::vector<uint8_t> ParseMac(Napi::Env env, const std::string& s, const char* what) {
  unsigned b[6];
  char tail;
  if (s.size() != 17 ||
      sscanf(s.c_str(), "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5], &tail) != 6) {
    ThrowTypeError(env, std::string("The \"") + what + "\" option must be a MAC address like aa:bb:cc:dd:ee:ff");
  }
  return std::vector<uint8_t>(b, b + 6);
}

std::vector<uint8_t> ParseIp(Napi::Env env, int family, const std::string& text, const char* what) {
  std::vector<uint8_t> out(family == AF_INET ? 4 : 16);
  if (inet_pton(family, text.c_str(), out.data()) != 1) {
    ThrowTypeError(env, std::string("The \"") + what + "\" option must be an IPv" + (family == AF_INET ? "4" : "6") + " address");
  }
  return out;
}

std::optional<std::vector<uint8_t>> OptMac(const Napi::Object& o, const char* key) {
  std::optional<std::string> s = OptString(o, key);
  if (!s) return std::nullopt;
  return ParseMac(o.Env(), *s, key);
}

NetnsRef ReadNetns(const Napi::Value& v, const char* what) {
  NetnsRef ns;
  if (Absent(v)) return ns;
  if (v.IsString()) {
    ns.kind = NetnsRef::Kind::kPath;
    ns.path = v.As<Napi::String>().Utf8Value();
    if (ns.path.empty() || ns.path.find('\0') != std::string::npos) {
      ThrowTypeError(v.Env(), std::string("The \"") + what + "\" path must be a non-empty string without NUL");
    }
    return ns;
  }
  if (v.IsNumber()) {
    ns.kind = NetnsRef::Kind::kFd;
    ns.fd = static_cast<int>(ReqInt(v, what, 0, INT32_MAX));
    return ns;
  }
  ThrowTypeError(v.Env(), std::string("The \"") + what + "\" argument must be null, a path or an fd");
}

std::vector<int> ReadFdArray(const Napi::Value& v, const char* what) {
  if (!v.IsArray()) ThrowTypeError(v.Env(), std::string("The \"") + what + "\" argument must be an array of fds");
  Napi::Array a = v.As<Napi::Array>();
  std::vector<int> fds;
  fds.reserve(a.Length());
  for (uint32_t i = 0; i < a.Length(); ++i) fds.push_back(static_cast<int>(ReqInt(a.Get(i), what, 0, INT32_MAX)));
  return fds;
}

}  // namespace macvtap
