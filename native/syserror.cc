#include "syserror.h"

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

}  // namespace macvtap
