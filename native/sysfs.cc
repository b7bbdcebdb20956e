#include "sysfs.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <functional>
#include <memory>
#include <mutex>
#include <thread>

namespace macvtap {

namespace {

SysError Fail(int err, std::string syscall, std::string path = {}) {
  SysError e;
  e.err = err;
  e.syscall = std::move(syscall);
  e.path = std::move(path);
  return e;
}

// Reads every query relative to `dirfd` (a sysfs root, or AT_FDCWD with `root` = "/sys/").
void ReadAll(int dirfd, const std::string& root, std::vector<TapDevQuery>& queries) {
  for (TapDevQuery& q : queries) {
    if (q.found) continue;
    std::string rel = "class/net/" + q.name + "/macvtap/tap" + std::to_string(q.ifindex) + "/dev";
    std::string path = root + rel;
    int fd = ::openat(dirfd, path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    FileDescriptor owner(fd);
    char buf[64];
    ssize_t n;
    do n = ::read(fd, buf, sizeof buf - 1);
    while (n < 0 && errno == EINTR);
    if (n <= 0) continue;
    buf[n] = '\0';
    unsigned maj = 0, min = 0;
    if (sscanf(buf, "%u:%u", &maj, &min) == 2) {
      q.found = true;
      q.major = maj;
      q.minor = min;
    }
  }
}

// New mount API: a sysfs instance that is never attached anywhere, so nothing else can see it and closing the fd
// frees it. sysfs takes the namespace of the task calling fsopen(), hence the guard around it only.
SysError MountDetached(const NetnsRef& ns, FileDescriptor* out) {
  FileDescriptor ctx;
  {
    NetnsGuard guard(ns);
    int fd = static_cast<int>(::syscall(SYS_fsopen, "sysfs", FSOPEN_CLOEXEC));
    if (fd < 0) return Fail(errno, "fsopen", "sysfs");
    ctx.reset(fd);
  }
  CheckThreadNetns();
  if (::syscall(SYS_fsconfig, ctx.get(), FSCONFIG_CMD_CREATE, nullptr, nullptr, 0) < 0) {
    return Fail(errno, "fsconfig", "sysfs");
  }
  int mnt = static_cast<int>(::syscall(SYS_fsmount, ctx.get(), FSMOUNT_CLOEXEC,
                                       MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC));
  if (mnt < 0) return Fail(errno, "fsmount", "sysfs");
  out->reset(mnt);
  return {};
}

// Fallback for kernels without fsopen (< 5.2): a short-lived thread joins the namespace, makes itself a private
// mount namespace and mounts sysfs on /sys there; when the thread exits its mount namespace dies with it.
SysError ReadInThread(const NetnsRef& ns, const std::function<void(int, const std::string&)>& read) {
  SysError result;
  int nsfd = -1;
  FileDescriptor owned;
  try {
    NetnsHandle handle(ns);
    nsfd = handle.fd();
    // The thread needs its own copy: a borrowed fd could be closed by its owner while the thread runs.
    if (nsfd >= 0) {
      int copy = ::fcntl(nsfd, F_DUPFD_CLOEXEC, 0);
      if (copy < 0) return Fail(errno, "dup", ns.Describe());
      owned.reset(copy);
    }
  } catch (const SysException& e) {
    return e.error();
  }
  std::thread worker([&]() {
    if (owned.valid() && ::setns(owned.get(), CLONE_NEWNET) < 0) {
      result = Fail(errno, "setns", ns.Describe());
      return;
    }
    if (::unshare(CLONE_NEWNS) < 0) {
      result = Fail(errno, "unshare(CLONE_NEWNS)");
      return;
    }
    // Private first: without it the sysfs mount below would propagate to the host's mount namespace.
    if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) < 0) {
      result = Fail(errno, "mount", "/");
      return;
    }
    if (::mount("sysfs", "/sys", "sysfs", 0, nullptr) < 0) {
      result = Fail(errno, "mount", "/sys");
      return;
    }
    read(AT_FDCWD, "/sys/");
  });
  worker.join();
  return result;
}

// PID 1's namespace: the one whose view the process's own /sys shows. Constant for the process's lifetime.
bool InitNetnsId(NetnsId* out) {
  static NetnsId id;
  static bool known = [] {
    struct stat st {};
    if (::stat("/proc/1/ns/net", &st) < 0) return false;
    id.dev = st.st_dev;
    id.ino = st.st_ino;
    return true;
  }();
  *out = id;
  return known;
}

// Mounting and dissolving a sysfs costs more than the rest of a get (releasing it waits for an expedited RCU sync),
// so up to kCapacity live namespaces keep theirs (one O_CLOEXEC fd each, never in ownedFds). This does not keep a
// namespace alive: sysfs holds only a passive reference, so links still go away with it. A namespace inode number can
// be reused after the namespace dies; the stale sysfs then shows no links at all, so a lookup that finds nothing in a
// cached mount remounts once and retries.
class MountCache {
 public:
  static constexpr size_t kCapacity = 16;

  std::shared_ptr<FileDescriptor> Find(const NetnsId& id) {
    std::lock_guard<std::mutex> lock(mutex_);
    for (Entry& e : entries_) {
      if (e.id == id) {
        e.used = ++clock_;
        return e.mnt;
      }
    }
    return nullptr;
  }

  void Put(const NetnsId& id, std::shared_ptr<FileDescriptor> mnt) {
    std::lock_guard<std::mutex> lock(mutex_);
    for (Entry& e : entries_) {
      if (e.id == id) {
        e.mnt = std::move(mnt);
        e.used = ++clock_;
        return;
      }
    }
    // Entries of namespaces that died since are dropped first, so the number of cached mounts (and fds) follows
    // the namespaces in use rather than every namespace ever seen. Every live namespace has lo.
    for (auto it = entries_.begin(); it != entries_.end();) {
      if (::faccessat(it->mnt->get(), "class/net/lo", F_OK, 0) < 0) {
        it = entries_.erase(it);
      } else {
        ++it;
      }
    }
    if (entries_.size() >= kCapacity) {
      auto oldest = entries_.begin();
      for (auto it = entries_.begin(); it != entries_.end(); ++it) {
        if (it->used < oldest->used) oldest = it;
      }
      entries_.erase(oldest);  // closed when the last reader lets go of its shared_ptr
    }
    entries_.push_back(Entry{id, std::move(mnt), ++clock_});
  }

 private:
  struct Entry {
    NetnsId id;
    std::shared_ptr<FileDescriptor> mnt;
    uint64_t used;
  };
  std::mutex mutex_;
  std::vector<Entry> entries_;
  uint64_t clock_ = 0;
};

MountCache& Cache() {
  // Never destroyed: worker threads may still use it while the process exits.
  static MountCache* cache = new MountCache();
  return *cache;
}

bool AllFound(const std::vector<TapDevQuery>& queries) {
  for (const TapDevQuery& q : queries) {
    if (!q.found) return false;
  }
  return true;
}

}  // namespace

// Runs `read(dirfd, root)` over the sysfs of namespace `ns` (identity `known`, or found here): the real /sys for the
// initial namespace, else a cached detached mount of that namespace's sysfs — tried first, kept when `read` says it
// found everything — else a fresh one (cached), else, where detached mounts are not supported (ENOSYS), a private
// mount in a helper thread.
static SysError ReadSysfs(const NetnsRef& ns, const NetnsId* known,
                          const std::function<bool(int, const std::string&)>& read) {
  NetnsId target, init;
  if (known != nullptr) {
    target = *known;
  } else if (!IdentifyNetns(ns, &target)) {
    return Fail(errno, ns.kind == NetnsRef::Kind::kFd ? "fstat" : "stat",
                ns.current() ? "/proc/thread-self/ns/net" : ns.Describe());
  }
  if (InitNetnsId(&init) && target == init) {
    read(AT_FDCWD, "/sys/");
    return {};
  }
  std::shared_ptr<FileDescriptor> mnt = Cache().Find(target);
  if (mnt && read(mnt->get(), "")) return {};
  auto fresh = std::make_shared<FileDescriptor>();
  SysError e;
  try {
    e = MountDetached(ns, fresh.get());
  } catch (const SysException& ex) {
    return ex.error();
  }
  if (e.err == ENOSYS) return ReadInThread(ns, [&](int dirfd, const std::string& root) { read(dirfd, root); });
  if (e.err != 0) return e;
  Cache().Put(target, fresh);
  read(fresh->get(), "");
  return {};
}

SysError ReadTapDevs(const NetnsRef& ns, std::vector<TapDevQuery>& queries, const NetnsId* known) {
  if (queries.empty()) return {};
  return ReadSysfs(ns, known, [&](int dirfd, const std::string& root) {
    ReadAll(dirfd, root, queries);
    return AllFound(queries);
  });
}

// True when `root`class/net/`name` exists, and then `*wireless` says whether it has a `wireless` directory (cfg80211
// adds it, and wext) or a `phy80211` link (mac80211): what iw and NetworkManager look at.
static bool ProbeWireless(int dirfd, const std::string& root, const std::string& name, bool* wireless) {
  std::string base = root + "class/net/" + name;
  struct stat st {};
  if (::fstatat(dirfd, base.c_str(), &st, 0) < 0) return false;
  *wireless = ::fstatat(dirfd, (base + "/wireless").c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 ||
              ::fstatat(dirfd, (base + "/phy80211").c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0;
  return true;
}

SysError LowerIsWireless(const NetnsRef& ns, const std::string& name, bool* wireless) {
  *wireless = false;
  // Test seam: a directory laid out like /sys (the only way to test the refusal on a machine with no 802.11 device
  // and no loadable mac80211_hwsim). Read per call, so a test can set and clear it.
  const char* fake = ::getenv("MACVTAP_TEST_SYSFS_ROOT");
  if (fake != nullptr && fake[0] != '\0') {
    ProbeWireless(AT_FDCWD, std::string(fake) + "/", name, wireless);
    return {};
  }
  return ReadSysfs(ns, nullptr,
                   [&](int dirfd, const std::string& root) { return ProbeWireless(dirfd, root, name, wireless); });
}

}  // namespace macvtap
