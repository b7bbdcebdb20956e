#include "ownership.h"

#include <errno.h>
#include <unistd.h>

#include "args.h"
#include "async.h"
#include "envdata.h"
#include "errors.h"

namespace macvtap {

void Ownership::Adopt(int fd) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (closed_) {
    ::close(fd);
    return;
  }
  fds_.insert(fd);
}

bool Ownership::Close(int fd) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (fds_.erase(fd) == 0) return false;
  }
  // Erased first: once closed, the number can be reused by anyone and must not still look owned.
  ::close(fd);
  return true;
}

bool Ownership::Release(int fd) {
  std::lock_guard<std::mutex> lock(mutex_);
  return fds_.erase(fd) != 0;
}

std::vector<int> Ownership::List() {
  std::lock_guard<std::mutex> lock(mutex_);
  return std::vector<int>(fds_.begin(), fds_.end());
}

void Ownership::CloseHandles() {
  std::set<int> fds;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    closed_ = true;
    fds.swap(fds_);
  }
  for (int fd : fds) ::close(fd);
}

EnvData::~EnvData() { ownership->CloseHandles(); }

EnvData& InstallEnvData(Napi::Env env) {
  auto* data = new EnvData{std::make_shared<Ownership>(), {}};
  env.SetInstanceData<EnvData>(data);  // deleted (→ CloseHandles) by node-addon-api's finalizer
  return *data;
}

EnvData& GetEnvData(Napi::Env env) { return *env.GetInstanceData<EnvData>(); }

void Ownership::Install(Napi::Env env) {
  std::shared_ptr<Ownership> data = InstallEnvData(env).ownership;
  env.AddCleanupHook([data]() { data->CloseHandles(); });
}

std::shared_ptr<Ownership> Ownership::Of(Napi::Env env) { return GetEnvData(env).ownership; }

FdBatch::~FdBatch() {
  for (int fd : fds_) ::close(fd);
}

FdBatch& FdBatch::operator=(FdBatch&& other) noexcept {
  if (this != &other) {
    for (int fd : fds_) ::close(fd);
    fds_ = std::move(other.fds_);
    other.fds_.clear();
  }
  return *this;
}

std::vector<int> FdBatch::Claim(Ownership& owner) {
  std::vector<int> out;
  out.swap(fds_);
  for (int fd : out) owner.Adopt(fd);
  return out;
}

namespace {

[[noreturn]] void ThrowNotOwned(Napi::Env env, const char* syscall, int fd) {
  SysError e;
  e.err = EBADF;
  e.syscall = syscall;
  e.detail = "fd " + std::to_string(fd) + " is not owned by the addon";
  throw MakeError(env, e);
}

}  // namespace

/**
 * fdClose(fd): closes an owned fd.
 * errno contract: EBADF (syscall 'close') when the addon does not own `fd` — never closed twice, never someone
 * else's fd. close()'s own errors are not reported: on Linux the fd is released either way.
 */
Napi::Value JsFdClose(const Napi::CallbackInfo& info) {
  int fd = static_cast<int>(ReqInt(info[0], "fd", 0, INT32_MAX));
  if (!Ownership::Of(info.Env())->Close(fd)) ThrowNotOwned(info.Env(), "close", fd);
  return info.Env().Undefined();
}

/**
 * fdCloseAsync(fd) → Promise<void> (not in binding.d.ts yet): like fdClose, but the close() itself runs on the
 * thread pool. Closing a macvtap queue waits for an RCU grace period in the kernel (tap_put_queue →
 * synchronize_rcu, ~11 ms here), which fdClose spends blocking the event loop. Ownership ends synchronously, so a
 * second fdClose/fdCloseAsync of the same fd throws EBADF at once; the promise resolves once the fd is closed.
 * errno contract: EBADF (syscall 'close', thrown synchronously) when the addon does not own `fd`.
 */
Napi::Value JsFdCloseAsync(const Napi::CallbackInfo& info) {
  int fd = static_cast<int>(ReqInt(info[0], "fd", 0, INT32_MAX));
  if (!Ownership::Of(info.Env())->Take(fd)) ThrowNotOwned(info.Env(), "close", fd);
  return PromiseWorker<Nothing>::Start(
      info.Env(), "macvtap:fdCloseAsync", [fd]() { ::close(fd); return Nothing{}; },
      [](Napi::Env env, Nothing&) -> Napi::Value { return env.Undefined(); });
}

/**
 * fdRelease(fd): stops owning `fd` without closing it (detach()).
 * errno contract: EBADF (syscall 'release') when the addon does not own `fd`.
 */
Napi::Value JsFdRelease(const Napi::CallbackInfo& info) {
  int fd = static_cast<int>(ReqInt(info[0], "fd", 0, INT32_MAX));
  if (!Ownership::Of(info.Env())->Release(fd)) ThrowNotOwned(info.Env(), "release", fd);
  return info.Env().Undefined();
}

/** ownedFds() → number[], ascending. No errors. */
Napi::Value JsOwnedFds(const Napi::CallbackInfo& info) {
  std::vector<int> fds = Ownership::Of(info.Env())->List();
  Napi::Array a = Napi::Array::New(info.Env(), fds.size());
  for (size_t i = 0; i < fds.size(); ++i) a.Set(static_cast<uint32_t>(i), fds[i]);
  return a;
}

}  // namespace macvtap
