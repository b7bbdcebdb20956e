#include "sysctl.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "args.h"
#include "async.h"
#include "errors.h"
#include "fd.h"

namespace macvtap {

void SysctlWrite(const std::string& key, const std::string& value, const NetnsRef& ns) {
  std::string path = "/proc/sys/" + key;
  FileDescriptor fd;
  {
    // Opened inside the namespace: the file is bound to it from then on, so the write may happen after leaving.
    NetnsGuard guard(ns);
    int raw = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
    if (raw < 0) ThrowSys(errno, "open", path);
    fd = FileDescriptor(raw);
  }
  ssize_t n;
  do n = ::write(fd.get(), value.data(), value.size());
  while (n < 0 && errno == EINTR);
  if (n < 0) ThrowSys(errno, "write", path);
  if (static_cast<size_t>(n) != value.size()) ThrowSys(EIO, "write", path);
}

/**
 * sysctlWrite(key, value, ns) → Promise<void>. Equivalent to `ip netns exec NS sysctl -w KEY=VALUE` (key with `/`).
 * errno contract: ENOENT (syscall 'open', path) no such sysctl (e.g. the device is gone); EACCES/EPERM not allowed;
 * EINVAL (syscall 'write') a value the kernel refuses; 'open'/'setns' errors of entering `ns`.
 */
Napi::Value JsSysctlWrite(const Napi::CallbackInfo& info) {
  std::string key = ReqString(info[0], "key");
  std::string value = ReqString(info[1], "value");
  NetnsRef ns = ReadNetns(info[2], "ns");
  return PromiseWorker<bool>::Start(
      info.Env(), "macvtap:sysctlWrite", [key, value, ns]() { SysctlWrite(key, value, ns); return true; },
      [](Napi::Env env, bool&) -> Napi::Value { return env.Undefined(); });
}

}  // namespace macvtap
