// The addon's handles: one model for every native resource JavaScript holds.
//
// A handle is a number: the fd the resource is built on, owned by the environment's Ownership registry (the main
// thread and each worker_thread have their own). It is either
//   - a plain fd (a tap queue, a tun device's fd, an fd received over SCM_RIGHTS), or
//   - an fd with more behind it, an OwnedObject tagged with its kind (a link watcher: its netlink socket plus the
//     libuv poll handle that watches it, events.cc).
// Every handle ends in exactly one of three ways:
//   - fdClose(handle) / fdCloseAsync(handle) close it (an object stops what it runs first);
//   - fdRelease(fd) hands a plain fd away (detach()): the addon never closes it again; an object cannot be handed
//     away (EBADF);
//   - the environment exits: its cleanup hook closes whatever is still registered, so nothing outlives it.
// An entry leaves the registry before its fd is closed, so a reused fd number never looks owned, and a handle
// that is not (or no longer) registered is refused with EBADF instead of closing someone else's fd.
//
// Not part of this model: the benchmark's datapath endpoints (endpoint.cc), threads with numeric ids in a registry
// of their own, which are leaving this addon for the benchmark's.
#pragma once

#include <napi.h>

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

namespace macvtap {

/** What a handle is: operations that fit only some kinds refuse the others. */
enum class HandleKind { kFd, kLinkWatch };

/**
 * A handle that is more than its fd. Close() runs on the environment's main thread, is idempotent, erases its own
 * entry (Ownership::Forget) when it closes for reasons of its own, and ends by closing the fd.
 */
class OwnedObject {
 public:
  virtual ~OwnedObject() = default;
  virtual void Close() = 0;
};

class Ownership {
 public:
  ~Ownership() { CloseHandles(); }

  /** Takes ownership of a plain fd. After CloseHandles (environment exiting) the fd is closed at once instead. */
  void Adopt(int fd);
  /** Takes ownership of `object`, registered as its fd. After CloseHandles, false: nothing taken, the caller closes. */
  bool Adopt(int fd, HandleKind kind, std::shared_ptr<OwnedObject> object);
  /** Ends a handle of any kind: erases it, then closes it. False when not owned (nothing closed). */
  bool Close(int fd);
  /**
   * Erases the entry of `fd` and returns its object (null for a plain fd, which the caller now owns and must close),
   * or false when `fd` is not owned.
   */
  bool Remove(int fd, std::shared_ptr<OwnedObject>* object);
  /** Stops owning a plain fd without closing it; false when not owned or not a plain fd. */
  bool Release(int fd);
  /** Erases the entry of `fd` if it is `object`'s (called by an object that closes itself). */
  void Forget(int fd, const OwnedObject* object);
  /** The kind of an owned handle; nothing when not owned. */
  std::optional<HandleKind> KindOf(int fd);
  /** Every owned handle, ascending. */
  std::vector<int> List();
  /** Closes every owned handle. Idempotent: reached from the cleanup hook and from the instance-data finalizer. */
  void CloseHandles();

  /** Creates the environment's instance and registers its cleanup hook (module init). */
  static void Install(Napi::Env env);
  /**
   * The environment's instance, shared: async workers capture it when they start, so a completion that runs
   * during environment teardown (after the instance data is finalized) still finds it (closed: Adopt closes).
   */
  static std::shared_ptr<Ownership> Of(Napi::Env env);

 private:
  struct Entry {
    HandleKind kind = HandleKind::kFd;
    std::shared_ptr<OwnedObject> object;  // null for a plain fd
  };
  /** Closes what an erased entry held (outside the lock: an object's Close calls Forget). */
  static void CloseEntry(int fd, const Entry& e);

  std::mutex mutex_;
  std::map<int, Entry> handles_;
  bool closed_ = false;
};

/**
 * Fds produced on a worker thread, not yet owned by anyone. Claim() moves them into the environment's Ownership on
 * the main thread (in OnOK); if that never happens (an error after opening some, or the environment torn down
 * before OnOK), the destructor closes them, so an fd is never left owned by nobody.
 */
class FdBatch {
 public:
  FdBatch() = default;
  ~FdBatch();
  FdBatch(const FdBatch&) = delete;
  FdBatch& operator=(const FdBatch&) = delete;
  FdBatch(FdBatch&& other) noexcept : fds_(std::move(other.fds_)) { other.fds_.clear(); }
  FdBatch& operator=(FdBatch&& other) noexcept;

  void Add(int fd) { fds_.push_back(fd); }
  const std::vector<int>& fds() const { return fds_; }
  size_t size() const { return fds_.size(); }
  /** Hands every fd to `owner` and returns them. */
  std::vector<int> Claim(Ownership& owner);

 private:
  std::vector<int> fds_;
};

Napi::Value JsFdClose(const Napi::CallbackInfo& info);
Napi::Value JsFdRelease(const Napi::CallbackInfo& info);
Napi::Value JsFdCloseAsync(const Napi::CallbackInfo& info);
Napi::Value JsOwnedFds(const Napi::CallbackInfo& info);

}  // namespace macvtap
