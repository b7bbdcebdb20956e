// Which fds the addon owns, per Node environment (main thread and each worker_thread separately). An owned fd is
// closed by fdClose, handed away by fdRelease, or closed when the environment exits (cleanup hook), so a forgotten
// TapQueue never outlives its environment.
#pragma once

#include <napi.h>

#include <memory>
#include <mutex>
#include <set>
#include <vector>

namespace macvtap {

class Ownership {
 public:
  ~Ownership() { CloseHandles(); }

  /** Takes ownership. After CloseHandles (environment exiting) the fd is closed at once instead. */
  void Adopt(int fd);
  /** Closes an owned fd; false when not owned (nothing closed). */
  bool Close(int fd);
  /** Stops owning (like Release) so the caller can close it elsewhere; false when not owned. */
  bool Take(int fd) { return Release(fd); }
  /** Stops owning without closing; false when not owned. */
  bool Release(int fd);
  std::vector<int> List();
  /** Closes every owned fd. Idempotent: reached from the cleanup hook and from the instance-data finalizer. */
  void CloseHandles();

  /** Creates the environment's instance and registers its cleanup hook (module init). */
  static void Install(Napi::Env env);
  /**
   * The environment's instance, shared: async workers capture it when they start, so a completion that runs
   * during environment teardown (after the instance data is finalized) still finds it (closed: Adopt closes).
   */
  static std::shared_ptr<Ownership> Of(Napi::Env env);

 private:
  std::mutex mutex_;
  std::set<int> fds_;
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
