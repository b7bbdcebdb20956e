#include "netns.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <string.h>
#include <sys/stat.h>

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

}  // namespace macvtap
