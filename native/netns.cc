#include "netns.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <cstdint>
#include <exception>
#include <mutex>
#include <vector>

#include "errors.h"

namespace macvtap {

namespace {

// Set when a worker thread could not return to its namespace (should never happen: we hold an fd of it).
thread_local int poisoned_errno = 0;

}  // namespace

std::string NetnsRef::Describe() const {
  switch (kind) {
    case Kind::kPath: return path;
    case Kind::kFd: return "fd " + std::to_string(fd);
    default: return {};
  }
}

NetnsHandle::NetnsHandle(const NetnsRef& ns) {
  if (ns.kind == NetnsRef::Kind::kPath) {
    int fd = ::open(ns.path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) ThrowSys(errno, "open", ns.path);
    owned_.reset(fd);
    fd_ = fd;
  } else if (ns.kind == NetnsRef::Kind::kFd) {
    fd_ = ns.fd;
  }
}

void CheckThreadNetns() {
  if (poisoned_errno != 0) {
    ThrowSys(poisoned_errno, "setns", {}, {}, "this worker thread could not return to its network namespace earlier");
  }
}

NetnsGuard::NetnsGuard(const NetnsRef& ns) {
  CheckThreadNetns();
  if (ns.current()) return;
  NetnsHandle target(ns);
  int saved = ::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  if (saved < 0) ThrowSys(errno, "open", "/proc/thread-self/ns/net");
  saved_.reset(saved);
  if (::setns(target.fd(), CLONE_NEWNET) < 0) {
    int err = errno;
    saved_.reset();
    ThrowSys(err, "setns", ns.kind == NetnsRef::Kind::kPath ? ns.path : std::string(), {},
             ns.kind == NetnsRef::Kind::kFd ? "fd " + std::to_string(ns.fd) + " is not a usable network namespace"
                                            : std::string());
  }
}

NetnsGuard::~NetnsGuard() {
  if (!saved_.valid()) return;
  if (::setns(saved_.get(), CLONE_NEWNET) < 0) poisoned_errno = errno ? errno : EINVAL;
}

bool IdentifyNetns(const NetnsRef& ns, NetnsId* out) {
  struct stat st {};
  int rc;
  switch (ns.kind) {
    case NetnsRef::Kind::kPath: rc = ::stat(ns.path.c_str(), &st); break;
    case NetnsRef::Kind::kFd: rc = ::fstat(ns.fd, &st); break;
    default: rc = ::stat("/proc/thread-self/ns/net", &st); break;
  }
  if (rc < 0) return false;
  out->dev = st.st_dev;
  out->ino = st.st_ino;
  return true;
}

std::unique_ptr<NetlinkSocket> OpenNetlink(const NetnsRef& ns) {
  std::unique_ptr<Transport> transport;
  {
    NetnsGuard guard(ns);
    transport = std::make_unique<SocketTransport>();
  }
  // A failed return to our namespace is only noticed by the destructor: check before trusting anything.
  CheckThreadNetns();
  return std::make_unique<NetlinkSocket>(std::move(transport));
}


// ---- The per-namespace socket pool ----

namespace {

class NetlinkPool {
 public:
  // Returns an idle socket of `id`, or null. `path` (may be empty) is remembered as a way to check liveness.
  std::unique_ptr<NetlinkSocket> Take(const NetnsId& id, const std::string& path) {
    std::vector<std::unique_ptr<NetlinkSocket>> dead;
    std::unique_ptr<NetlinkSocket> out;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (SweepDue()) SweepSome(&dead, entries_.size());
      for (Entry& e : entries_) {
        if (!(e.id == id)) continue;
        e.used = ++clock_;
        if (!path.empty()) e.path = path;
        if (!e.idle.empty()) {
          out = std::move(e.idle.back());
          e.idle.pop_back();
        }
        break;
      }
    }
    return out;  // `dead` closes outside the lock
  }

  void Give(const NetnsId& id, const std::string& path, std::unique_ptr<NetlinkSocket> sock) {
    std::vector<std::unique_ptr<NetlinkSocket>> dead;
    std::lock_guard<std::mutex> lock(mutex_);
    for (Entry& e : entries_) {
      if (!(e.id == id)) continue;
      if (e.idle.size() < kNetlinkPoolSockets) e.idle.push_back(std::move(sock));
      return;  // else `sock` closes: more were in flight at once than the pool keeps
    }
    // A new namespace: check every entry first, so dead namespaces make room before a live one is evicted.
    SweepSome(&dead, entries_.size());
    if (entries_.size() >= kNetlinkPoolNamespaces) {
      auto oldest = entries_.begin();
      for (auto it = entries_.begin(); it != entries_.end(); ++it) {
        if (it->used < oldest->used) oldest = it;
      }
      for (auto& s : oldest->idle) dead.push_back(std::move(s));
      entries_.erase(oldest);
    }
    Entry e;
    e.id = id;
    e.path = path;
    e.used = ++clock_;
    e.idle.push_back(std::move(sock));
    entries_.push_back(std::move(e));
  }

 private:
  struct Entry {
    NetnsId id;
    std::string path;
    uint64_t used = 0;
    std::vector<std::unique_ptr<NetlinkSocket>> idle;
  };

  // A take checks the entries' paths at most every kSweepIntervalMs (a stat per entry is a system call, and two per
  // take were a visible part of a cheap getLinkSync), read from the coarse clock, which costs no system call.
  bool SweepDue() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    int64_t now_ms = static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1'000'000;
    if (now_ms - last_sweep_ms_ < kSweepIntervalMs) return false;
    last_sweep_ms_ = now_ms;
    return true;
  }

  // Checks up to `n` entries (round robin) that were reached through a path: when the path no longer names the
  // namespace (`ip netns del` unmounted it, or a new namespace took the name) our sockets may be all that keeps it
  // alive, with its devices and /dev/tapN nodes, so they are closed. Namespaces only reached by fd or as the current
  // one cannot be checked this way; the LRU bound limits them.
  void SweepSome(std::vector<std::unique_ptr<NetlinkSocket>>* dead, size_t n) {
    for (size_t i = 0; i < n && !entries_.empty(); ++i) {
      if (cursor_ >= entries_.size()) cursor_ = 0;
      Entry& e = entries_[cursor_];
      struct stat st {};
      bool gone = !e.path.empty() && (::stat(e.path.c_str(), &st) < 0 || st.st_dev != e.id.dev || st.st_ino != e.id.ino);
      if (gone) {
        for (auto& s : e.idle) dead->push_back(std::move(s));
        entries_.erase(entries_.begin() + static_cast<std::ptrdiff_t>(cursor_));
      } else {
        ++cursor_;
      }
    }
  }

  std::mutex mutex_;
  std::vector<Entry> entries_;
  uint64_t clock_ = 0;
  size_t cursor_ = 0;
  int64_t last_sweep_ms_ = INT64_MIN / 2;
  static constexpr int64_t kSweepIntervalMs = 50;
};

NetlinkPool& Pool() {
  // Never destroyed: worker threads may still return sockets while the process exits.
  static NetlinkPool* pool = new NetlinkPool();
  return *pool;
}

}  // namespace

NetlinkLease::NetlinkLease(std::unique_ptr<NetlinkSocket> sock, const NetnsId& id, bool cacheable, std::string path)
    : sock_(std::move(sock)), id_(id), cacheable_(cacheable), path_(std::move(path)),
      uncaught_(std::uncaught_exceptions()) {}

NetlinkLease::NetlinkLease(NetlinkLease&& other) noexcept
    : sock_(std::move(other.sock_)), id_(other.id_), cacheable_(other.cacheable_), path_(std::move(other.path_)),
      uncaught_(other.uncaught_) {}

NetlinkLease::~NetlinkLease() {
  if (!sock_ || !cacheable_) return;
  // Unwinding: the exchange may have been cut short (replies left unread), or the namespace is going away.
  if (std::uncaught_exceptions() > uncaught_) return;
  try {
    Pool().Give(id_, path_, std::move(sock_));
  } catch (...) {
    // Out of memory while pooling: the socket is simply closed.
  }
}

NetlinkLease AcquireNetlink(const NetnsRef& ns) {
  NetnsId id;
  if (!IdentifyNetns(ns, &id)) {
    // Unidentifiable (e.g. a path that does not exist): OpenNetlink reports it as the operation's error.
    return NetlinkLease(OpenNetlink(ns), id, false, {});
  }
  std::string path = ns.kind == NetnsRef::Kind::kPath ? ns.path : std::string();
  std::unique_ptr<NetlinkSocket> sock = Pool().Take(id, path);
  if (!sock) sock = OpenNetlink(ns);
  return NetlinkLease(std::move(sock), id, true, std::move(path));
}

}  // namespace macvtap
