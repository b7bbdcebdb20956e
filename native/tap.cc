#include "tap.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "args.h"
#include "async.h"
#include "errors.h"
#include "sysfs.h"
#include "vhost.h"

namespace macvtap {

namespace {

constexpr char kNodeDirPrefix[] = "macvtap-";

// A private node lives only while its queues are being opened, but a process killed in that window (SIGKILL) leaves
// its directory behind: a root-only 0600 node of a device that may be long gone. Directories are named
// macvtap-<pid>-XXXXXX; this removes those of processes that no longer exist (a live pid, even a reused one, is left
// alone). Only our own directories (same owner, a real directory) and only their tap<N> entries are touched.
// Best effort: a failure here never stops the open.
void SweepStaleNodeDirs(const std::string& base) {
  DIR* d = ::opendir(base.c_str());
  if (d == nullptr) return;
  const size_t plen = sizeof kNodeDirPrefix - 1;
  while (dirent* e = ::readdir(d)) {
    if (strncmp(e->d_name, kNodeDirPrefix, plen) != 0) continue;
    char* end = nullptr;
    long pid = strtol(e->d_name + plen, &end, 10);
    if (end == e->d_name + plen || *end != '-' || pid <= 0 || pid > INT32_MAX) continue;
    if (::kill(static_cast<pid_t>(pid), 0) == 0 || errno != ESRCH) continue;
    std::string dir = base + "/" + e->d_name;
    struct stat st {};
    if (::lstat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != ::geteuid()) continue;
    if (DIR* inner = ::opendir(dir.c_str())) {
      while (dirent* f = ::readdir(inner)) {
        if (strncmp(f->d_name, "tap", 3) == 0) ::unlink((dir + "/" + f->d_name).c_str());
      }
      ::closedir(inner);
    }
    ::rmdir(dir.c_str());
  }
  ::closedir(d);
}

// Removes the private node and its directory when the opens are done (or failed): the fds keep the device.
class PrivateNode {
 public:
  PrivateNode(const std::string& device, int ifindex, dev_t dev) {
    // /run is tmpfs on Debian (never a nodev-mounted disk shared with others); /tmp is the fallback.
    std::string base = ::access("/run", W_OK) == 0 ? "/run" : "/tmp";
    SweepStaleNodeDirs(base);
    std::string tmpl = base + "/" + kNodeDirPrefix + std::to_string(::getpid()) + "-XXXXXX";
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    if (::mkdtemp(buf.data()) == nullptr) ThrowSys(errno, "mkdtemp", tmpl, device);
    dir_ = buf.data();
    ::chmod(dir_.c_str(), 0700);
    path_ = dir_ + "/tap" + std::to_string(ifindex);
    if (::mknod(path_.c_str(), S_IFCHR | 0600, dev) < 0) {
      int err = errno;
      ::rmdir(dir_.c_str());
      ThrowSys(err, "mknod", path_, device);
    }
  }
  ~PrivateNode() {
    ::unlink(path_.c_str());
    ::rmdir(dir_.c_str());
  }
  const std::string& path() const { return path_; }

 private:
  std::string dir_;
  std::string path_;
};

int OpenQueue(const std::string& path, const std::string& device, bool nonblock) {
  int fd;
  do fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC | (nonblock ? O_NONBLOCK : 0));
  while (fd < 0 && errno == EINTR);
  // EBUSY here is the kernel's queue limit (MAX_TAP_QUEUES, 256 per device).
  if (fd < 0) ThrowSys(errno, "open", path, device);
  return fd;
}

void ConfigureQueue(int fd, const TapOpenOptions& opts, const std::string& path, const std::string& device) {
  ifreq ifr{};
  ifr.ifr_flags = static_cast<short>(IFF_TAP | IFF_NO_PI | (opts.vnet_hdr ? IFF_VNET_HDR : 0) |
                                     (opts.queues > 1 ? IFF_MULTI_QUEUE : 0));
  if (::ioctl(fd, TUNSETIFF, &ifr) < 0) ThrowSys(errno, "ioctl(TUNSETIFF)", path, device);
  if (opts.vnet_hdr && opts.vnet_hdr_size > 0) {
    int size = opts.vnet_hdr_size;
    if (::ioctl(fd, TUNSETVNETHDRSZ, &size) < 0) ThrowSys(errno, "ioctl(TUNSETVNETHDRSZ)", path, device);
  }
  if (opts.offloads >= 0) {
    if (::ioctl(fd, TUNSETOFFLOAD, static_cast<unsigned long>(opts.offloads)) < 0) {
      ThrowSys(errno, "ioctl(TUNSETOFFLOAD)", path, device);
    }
  }
}

bool IsDevice(const struct stat& st, dev_t want) { return S_ISCHR(st.st_mode) && st.st_rdev == want; }

int64_t NowMs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

}  // namespace

TapOpenResult TapOpen(const LinkKey& key, const TapOpenOptions& opts, const NetnsRef& ns) {
  LinkInfo link = LinkGet(key, ns, false);
  if (!link.kind || *link.kind != "macvtap") {
    ThrowSys(EINVAL, "open", {}, link.name,
             "not a macvtap link (kind " + (link.kind ? *link.kind : std::string("none")) + ")");
  }
  std::vector<TapDevQuery> q(1);
  q[0].name = link.name;
  q[0].ifindex = link.ifindex;
  SysError e = ReadTapDevs(ns, q);
  if (e.err != 0) {
    e.device = link.name;
    throw SysException(e);
  }
  std::string sysfs_path = "/sys/class/net/" + link.name + "/macvtap/tap" + std::to_string(link.ifindex) + "/dev";
  if (!q[0].found) ThrowSys(ENODEV, "open", sysfs_path, link.name, "the macvtap has no char device (deleted?)");

  TapOpenResult r;
  r.ifindex = link.ifindex;
  r.name = link.name;
  r.major = q[0].major;
  r.minor = q[0].minor;
  dev_t want = makedev(q[0].major, q[0].minor);

  // /dev/tapN is named by ifindex, which is only unique per namespace: it may be another namespace's device (or a
  // stale node). stat() before open() so a wrong node is never opened (opening adds a queue to that device).
  std::string dev_path = "/dev/tap" + std::to_string(link.ifindex);
  struct stat st {};
  bool use_dev = ::stat(dev_path.c_str(), &st) == 0 && IsDevice(st, want);
  if (use_dev) {
    int fd = OpenQueue(dev_path, link.name, opts.nonblock);
    r.fds.Add(fd);
    // The node could have been replaced between stat and open: trust only the opened fd.
    if (::fstat(fd, &st) < 0 || !IsDevice(st, want)) {
      r.fds = FdBatch();
      use_dev = false;
    }
  }
  std::optional<PrivateNode> node;
  if (use_dev) {
    r.path = dev_path;
  } else {
    node.emplace(link.name, link.ifindex, want);
    r.path = node->path();
    r.private_node = true;
  }
  while (static_cast<int>(r.fds.size()) < opts.queues) r.fds.Add(OpenQueue(r.path, link.name, opts.nonblock));
  node.reset();  // unlink + rmdir now: the fds hold the device
  for (int fd : r.fds.fds()) ConfigureQueue(fd, opts, r.path, link.name);
  if (opts.vhost) VhostOpen(opts.queues, link.name, r.vhost_fds);
  return r;
}

/**
 * tapOpen(key, opts, ns) → Promise<NativeTapOpenResult>. All fds are closed again on any failure.
 * errno contract:
 *   'RTM_GETLINK' ENODEV      no such link            'open' EINVAL (device)  the link is not a macvtap
 *   'open' ENODEV (sysfs path) the char device is gone
 *   'open' EBUSY (path)       more than 256 queues    'open' EACCES/EPERM     no permission on the node
 *   'mkdtemp'/'mknod' (path)  the private node could not be made (e.g. EPERM without CAP_MKNOD)
 *   'ioctl(TUNSETIFF)' / 'ioctl(TUNSETVNETHDRSZ)' / 'ioctl(TUNSETOFFLOAD)' EINVAL  a value the kernel refused
 *   'fsopen'/'setns'/'open' with path  the link's namespace or its sysfs is unusable
 *   with vhost: 'open' (/dev/vhost-net) ENOENT no such node, EOPNOTSUPP a node without its driver (both: the kernel
 *   has no vhost-net), EACCES…; 'ioctl(VHOST_GET_FEATURES)' ENOTTY the node is not vhost-net (see vhost.h)
 */
Napi::Value JsTapOpen(const Napi::CallbackInfo& info) {
  LinkKey key = ReadLinkKey(info[0]);
  // Every option is required: lib/tap.ts defaults and validates them (queues up to MAX_TAP_QUEUES, a vnet header size
  // of at least 10, offload bits the kernel takes together); here only the C types are checked.
  Napi::Object o = ReqObject(info[1], "opts");
  TapOpenOptions opts;
  opts.queues = static_cast<int>(ReqInt(o.Get("queues"), "queues", 1, INT32_MAX));
  opts.vnet_hdr = ReqBool(o.Get("vnetHdr"), "vnetHdr");
  opts.vnet_hdr_size = static_cast<int>(ReqInt(o.Get("vnetHdrSize"), "vnetHdrSize", 0, INT32_MAX));
  opts.offloads = static_cast<long>(ReqInt(o.Get("offloads"), "offloads", -1, UINT32_MAX));
  opts.nonblock = ReqBool(o.Get("nonblock"), "nonblock");
  opts.vhost = ReqBool(o.Get("vhost"), "vhost");
  NetnsRef ns = ReadNetns(info[2], "ns");
  std::shared_ptr<Ownership> owner = Ownership::Of(info.Env());
  return PromiseWorker<TapOpenResult>::Start(
      info.Env(), "macvtap:tapOpen", [key, opts, ns]() { return TapOpen(key, opts, ns); },
      [owner](Napi::Env env, TapOpenResult& r) -> Napi::Value {
        Napi::Object o = Napi::Object::New(env);
        std::vector<int> fds = r.fds.Claim(*owner);
        Napi::Array a = Napi::Array::New(env, fds.size());
        for (size_t i = 0; i < fds.size(); ++i) a.Set(static_cast<uint32_t>(i), fds[i]);
        o.Set("fds", a);
        std::vector<int> vfds = r.vhost_fds.Claim(*owner);
        Napi::Array va = Napi::Array::New(env, vfds.size());
        for (size_t i = 0; i < vfds.size(); ++i) va.Set(static_cast<uint32_t>(i), vfds[i]);
        o.Set("vhostFds", va);
        o.Set("ifindex", r.ifindex);
        o.Set("name", r.name);
        o.Set("path", r.path);
        o.Set("major", r.major);
        o.Set("minor", r.minor);
        o.Set("privateNode", r.private_node);
        return o;
      });
}

/**
 * tapRead(fd, maxLength, timeoutMs) → Promise<Buffer | null>; null after `timeoutMs` without a frame (a negative
 * timeout waits forever). errno contract: 'poll' EBADF when fd is not open (POLLNVAL); 'read' with the read's
 * errno (EBADFD when the device went away, EFAULT/EINVAL for a bad buffer). EAGAIN/EINTR are retried within the
 * timeout, never reported.
 */
Napi::Value JsTapRead(const Napi::CallbackInfo& info) {
  int fd = static_cast<int>(ReqInt(info[0], "fd", 0, INT32_MAX));
  size_t max_len = static_cast<size_t>(ReqInt(info[1], "maxLength", 1, 16 * 1024 * 1024));
  int64_t timeout = ReqInt(info[2], "timeoutMs", -1, INT32_MAX);
  using Frame = std::optional<std::vector<uint8_t>>;
  return PromiseWorker<Frame>::Start(
      info.Env(), "macvtap:tapRead",
      [fd, max_len, timeout]() -> Frame {
        int64_t deadline = timeout >= 0 ? NowMs() + timeout : -1;
        std::vector<uint8_t> buf(max_len);
        for (;;) {
          int wait = -1;
          if (deadline >= 0) {
            int64_t left = deadline - NowMs();
            if (left < 0) left = 0;
            wait = static_cast<int>(left);
          }
          pollfd p{fd, POLLIN, 0};
          int rc = ::poll(&p, 1, wait);
          if (rc < 0) {
            if (errno == EINTR) continue;
            ThrowSys(errno, "poll");
          }
          if (rc == 0) return std::nullopt;
          if (p.revents & POLLNVAL) ThrowSys(EBADF, "poll", {}, {}, "fd " + std::to_string(fd));
          ssize_t n = ::read(fd, buf.data(), buf.size());
          if (n >= 0) {
            buf.resize(static_cast<size_t>(n));
            return buf;
          }
          // Another reader may have taken the frame, or the fd is O_NONBLOCK: wait again within the timeout.
          if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
            if (deadline >= 0 && NowMs() >= deadline) return std::nullopt;
            continue;
          }
          ThrowSys(errno, "read");
        }
      },
      [](Napi::Env env, Frame& frame) -> Napi::Value {
        if (!frame) return env.Null();
        return Napi::Buffer<uint8_t>::Copy(env, frame->data(), frame->size());
      });
}

/**
 * tapWrite(fd, frame) → bytes written (sync). On a blocking fd it first waits in poll() for POLLOUT: a frame written
 * to a tap fd is charged to the queue's send buffer until the device has sent it, so with a qdisc holding frames (a
 * shaped macvtap) the buffer fills, and a write that then sleeps in the kernel (sock_alloc_send_pskb) is never woken
 * by the tap driver's write-space callback, which wakes only waiters that poll() announced — it sleeps until a frame
 * for the guest happens to wake the queue. poll() is woken when the buffer drains, so the write waits only as long as
 * the shaper holds it.
 * errno contract (syscall 'write'): EAGAIN O_NONBLOCK queue full; EINVAL frame too short/long or bad vnet header;
 * EIO/EBADFD the device is gone or down; EBADF not an open fd.
 */
Napi::Value JsTapWrite(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = static_cast<int>(ReqInt(info[0], "fd", 0, INT32_MAX));
  if (!info[1].IsBuffer()) ThrowTypeError(env, "The \"frame\" argument must be a Buffer");
  Napi::Buffer<uint8_t> frame = info[1].As<Napi::Buffer<uint8_t>>();
  int fl = ::fcntl(fd, F_GETFL);
  if (fl >= 0 && !(fl & O_NONBLOCK)) {
    pollfd p{fd, POLLOUT, 0};
    while (::poll(&p, 1, -1) < 0 && errno == EINTR) {
    }
  }
  ssize_t n;
  do n = ::write(fd, frame.Data(), frame.Length());
  while (n < 0 && errno == EINTR);
  if (n < 0) {
    SysError e;
    e.err = errno;
    e.syscall = "write";
    throw MakeError(env, e);
  }
  return Napi::Number::New(env, static_cast<double>(n));
}

/**
 * mknodChar(path, major, minor) → undefined, on the calling thread (one syscall): a character node for major:minor,
 * mode 0600 owned by the caller, O_EXCL-like (an existing path is EEXIST, never replaced). lib/tapnode.ts sets owner and
 * mode afterwards, so the node is never open to anyone else before it is what was asked for.
 * errno contract (syscall 'mknod', path): EEXIST path exists; ENOENT/ENOTDIR no such directory; EPERM no CAP_MKNOD
 * (or a user namespace that may not create devices); EACCES the directory is not writable.
 */
Napi::Value JsMknodChar(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = ReqString(info[0], "path");
  unsigned major = static_cast<unsigned>(ReqInt(info[1], "major", 0, 0xfff));
  unsigned minor = static_cast<unsigned>(ReqInt(info[2], "minor", 0, 0xfffff));
  if (::mknod(path.c_str(), S_IFCHR | 0600, makedev(major, minor)) < 0) {
    SysError e;
    e.err = errno;
    e.syscall = "mknod";
    e.path = path;
    throw MakeError(env, e);
  }
  return env.Undefined();
}

}  // namespace macvtap
