// Network namespaces for worker threads. A request for namespace X enters X with setns(CLONE_NEWNET) on the worker
// thread only long enough to create what must be born there (a netlink socket, a sysfs mount) and leaves at once:
// sockets keep the namespace they were created in, so the rest of the work runs back in the original namespace.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "fd.h"
#include "netlink.h"

namespace macvtap {

/** A `NativeNetns` read from JS on the main thread: the current namespace, a path, or a borrowed fd. */
struct NetnsRef {
  enum class Kind { kCurrent, kPath, kFd };
  Kind kind = Kind::kCurrent;
  std::string path;
  int fd = -1;

  bool current() const { return kind == Kind::kCurrent; }
  /** For error messages: the path, "fd N", or empty for the current namespace. */
  std::string Describe() const;
};

/**
 * An fd referring to the namespace: opened O_RDONLY|O_CLOEXEC for a path (owned here), the caller's own fd for kFd
 * (borrowed: the caller keeps it open), -1 for kCurrent. Throws SysException (syscall 'open', path).
 */
class NetnsHandle {
 public:
  explicit NetnsHandle(const NetnsRef& ns);
  int fd() const { return fd_; }

 private:
  FileDescriptor owned_;
  int fd_ = -1;
};

/**
 * Enters `ns` on the calling thread for the guard's lifetime (no-op for the current namespace). If leaving fails,
 * the thread is marked poisoned and every later NetnsGuard/OpenNetlink on it fails instead of silently working in
 * the wrong namespace. Throws SysException ('open' with the path, or 'setns').
 */
class NetnsGuard {
 public:
  explicit NetnsGuard(const NetnsRef& ns);
  ~NetnsGuard();
  NetnsGuard(const NetnsGuard&) = delete;
  NetnsGuard& operator=(const NetnsGuard&) = delete;

 private:
  FileDescriptor saved_;
};

/** What stat() says about a namespace file (/proc/PID/ns/net, a bind mount of it, or an fd of it). */
struct NetnsId {
  dev_t dev = 0;
  ino_t ino = 0;
  bool operator==(const NetnsId& o) const { return dev == o.dev && ino == o.ino; }
};

/** Identifies `ns` (the calling thread's own for kCurrent); false with errno set when it cannot be stat'ed. */
bool IdentifyNetns(const NetnsRef& ns, NetnsId* out);

/** Throws if an earlier namespace switch on this thread could not be undone. */
void CheckThreadNetns();

/** A netlink socket created inside `ns`; the thread is back in its own namespace when this returns. */
std::unique_ptr<NetlinkSocket> OpenNetlink(const NetnsRef& ns);

/**
 * A netlink socket of a namespace, borrowed from a small per-namespace pool (see AcquireNetlink). It goes back to the
 * pool when the lease ends normally; when an exception is unwinding through the lease (a timeout, a truncated
 * exchange, the namespace going away) the socket is closed instead, so a socket with unread replies is never reused.
 */
class NetlinkLease {
 public:
  NetlinkLease(std::unique_ptr<NetlinkSocket> sock, const NetnsId& id, bool cacheable, std::string path);
  ~NetlinkLease();
  NetlinkLease(NetlinkLease&& other) noexcept;
  NetlinkLease(const NetlinkLease&) = delete;
  NetlinkLease& operator=(const NetlinkLease&) = delete;
  NetlinkLease& operator=(NetlinkLease&&) = delete;

  NetlinkSocket* operator->() const { return sock_.get(); }
  NetlinkSocket& operator*() const { return *sock_; }
  /** The identity of the socket's namespace as stat'ed when it was leased, or null when it could not be. */
  const NetnsId* id() const { return cacheable_ ? &id_ : nullptr; }

 private:
  std::unique_ptr<NetlinkSocket> sock_;
  NetnsId id_;
  bool cacheable_;
  std::string path_;
  int uncaught_;
};

/**
 * A netlink socket in `ns`: a pooled one when there is one (no setns at all), otherwise a new one (OpenNetlink)
 * that joins the pool when the lease ends. The pool is keyed by the namespace's identity (st_dev/st_ino), holds at
 * most kNetlinkPoolNamespaces namespaces (LRU) × kNetlinkPoolSockets idle sockets, and every concurrent operation
 * gets its own socket. A netlink socket keeps its namespace alive, so entries reached through a path (/run/netns/X)
 * are dropped once that path no longer names the namespace (`ip netns del`); see netns.cc.
 */
NetlinkLease AcquireNetlink(const NetnsRef& ns);

constexpr size_t kNetlinkPoolNamespaces = 16;
constexpr size_t kNetlinkPoolSockets = 4;

}  // namespace macvtap
