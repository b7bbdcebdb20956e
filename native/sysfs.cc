#include "sysfs.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <unistd.h>

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
SysError ReadInThread(const NetnsRef& ns, std::vector<TapDevQuery>& queries) {
  SysError result;
  int nsfd = -1;
  FileDescriptor owned;
  try {
    NetnsHandle handle(ns);
    nsfd = handle.fd();
    if (nsfd >= 0) owned.reset(::dup(nsfd));
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
    ReadAll(AT_FDCWD, "/sys/", queries);
  });
  worker.join();
  return result;
}

}  // namespace

SysError ReadTapDevs(const NetnsRef& ns, std::vector<TapDevQuery>& queries) {
  if (queries.empty()) return {};
  if (IsInitNetns(ns)) {
    ReadAll(AT_FDCWD, "/sys/", queries);
    return {};
  }
  FileDescriptor mnt;
  SysError e;
  try {
    e = MountDetached(ns, &mnt);
  } catch (const SysException& ex) {
    return ex.error();
  }
  if (e.err == 0) {
    ReadAll(mnt.get(), "", queries);
    return {};
  }
  if (e.err == ENOSYS) return ReadInThread(ns, queries);
  return e;
}

}  // namespace macvtap
