#include "ownership.h"

#include <errno.h>
#include <unistd.h>

#include "args.h"
#include "async.h"
#include "envdata.h"
#include "errors.h"

namespace macvtap {

void Ownership::Adopt(int fd) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!closed_) {
      handles_[fd] = Entry{};
      return;
    }
  }
  ::close(fd);
}

bool Ownership::Adopt(int fd, HandleKind kind, std::shared_ptr<OwnedObject> object) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (closed_) return false;
  handles_[fd] = Entry{kind, std::move(object)};
  return true;
}

void Ownership::CloseEntry(int fd, const Entry& e) {
  if (e.object) {
    e.object->Close();
  } else {
    ::close(fd);
  }
}

bool Ownership::Close(int fd) {
  Entry e;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = handles_.find(fd);
    if (it == handles_.end()) return false;
    e = std::move(it->second);
    handles_.erase(it);
  }
  // Erased first: once closed, the number can be reused by anyone and must not still look owned.
  CloseEntry(fd, e);
  return true;
}

bool Ownership::Remove(int fd, std::shared_ptr<OwnedObject>* object) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = handles_.find(fd);
  if (it == handles_.end()) return false;
  *object = std::move(it->second.object);
  handles_.erase(it);
  return true;
}

bool Ownership::Release(int fd) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = handles_.find(fd);
  if (it == handles_.end() || it->second.kind != HandleKind::kFd) return false;
  handles_.erase(it);
  return true;
}

void Ownership::Forget(int fd, const OwnedObject* object) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = handles_.find(fd);
  if (it != handles_.end() && it->second.object.get() == object) handles_.erase(it);
}

std::optional<HandleKind> Ownership::KindOf(int fd) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = handles_.find(fd);
  if (it == handles_.end()) return std::nullopt;
  return it->second.kind;
}

std::vector<int> Ownership::List() {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<int> out;
  out.reserve(handles_.size());
  for (const auto& [fd, e] : handles_) out.push_back(fd);
  return out;
}

void Ownership::CloseHandles() {
  std::map<int, Entry> handles;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    closed_ = true;
    handles.swap(handles_);
  }
  for (const auto& [fd, e] : handles) CloseEntry(fd, e);
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

/** EBADF for a handle that is not owned, or whose kind does not allow `what` (then the detail says which it is). */
[[noreturn]] void ThrowNotOwned(Napi::Env env, const char* syscall, int fd) {
  SysError e;
  e.err = EBADF;
  e.syscall = syscall;
  std::optional<HandleKind> kind = Ownership::Of(env)->KindOf(fd);
  if (kind == HandleKind::kLinkWatch) {
    e.detail = "fd " + std::to_string(fd) + " is a link watcher's socket, which can only be closed";
  } else {
    e.detail = "fd " + std::to_string(fd) + " is not owned by the addon";
  }
  throw MakeError(env, e);
}

}  // namespace

/**
 * fdClose(handle): ends an owned handle of any kind (a link watcher stops polling first).
 * errno contract: EBADF (syscall 'close') when the addon does not own `handle` — never closed twice, never someone
 * else's fd. close()'s own errors are not reported: on Linux the fd is released either way.
 */
Napi::Value JsFdClose(const Napi::CallbackInfo& info) {
  int fd = static_cast<int>(ReqInt(info[0], "fd", 0, INT32_MAX));
  if (!Ownership::Of(info.Env())->Close(fd)) ThrowNotOwned(info.Env(), "close", fd);
  return info.Env().Undefined();
}

/**
 * fdCloseAsync(handle) → Promise<void>: like fdClose, but a plain fd's close() runs on the thread pool. Closing a
 * macvtap queue waits for an RCU grace period in the kernel (tap_put_queue → synchronize_rcu), which fdClose spends
 * blocking the event loop. Ownership ends synchronously, so a second fdClose/fdCloseAsync of the same fd throws
 * EBADF at once; the promise resolves once the fd is closed. Other kinds close on the main thread at once, as with
 * fdClose, and the promise is already resolved.
 * errno contract: EBADF (syscall 'close', thrown synchronously) when the addon does not own `handle`.
 */
Napi::Value JsFdCloseAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = static_cast<int>(ReqInt(info[0], "fd", 0, INT32_MAX));
  std::shared_ptr<OwnedObject> object;
  if (!Ownership::Of(env)->Remove(fd, &object)) ThrowNotOwned(env, "close", fd);
  if (object) {
    object->Close();
    Napi::Promise::Deferred done = Napi::Promise::Deferred::New(env);
    done.Resolve(env.Undefined());
    return done.Promise();
  }
  return PromiseWorker<Nothing>::Start(
      env, "macvtap:fdCloseAsync", [fd]() { ::close(fd); return Nothing{}; },
      [](Napi::Env env, Nothing&) -> Napi::Value { return env.Undefined(); });
}

/**
 * fdRelease(fd): stops owning a plain fd without closing it (detach()).
 * errno contract: EBADF (syscall 'release') when the addon does not own `fd`, or when it is a handle that cannot be
 * handed away (a link watcher's socket: the detail says so).
 */
Napi::Value JsFdRelease(const Napi::CallbackInfo& info) {
  int fd = static_cast<int>(ReqInt(info[0], "fd", 0, INT32_MAX));
  if (!Ownership::Of(info.Env())->Release(fd)) ThrowNotOwned(info.Env(), "release", fd);
  return info.Env().Undefined();
}

/** ownedFds() → number[]: every owned handle (plain fds and link watchers' sockets), ascending. No errors. */
Napi::Value JsOwnedFds(const Napi::CallbackInfo& info) {
  std::vector<int> fds = Ownership::Of(info.Env())->List();
  Napi::Array a = Napi::Array::New(info.Env(), fds.size());
  for (size_t i = 0; i < fds.size(); ++i) a.Set(static_cast<uint32_t>(i), fds[i]);
  return a;
}

}  // namespace macvtap
