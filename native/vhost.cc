#include "vhost.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/ioctl.h>
#include <linux/types.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "args.h"
#include "errors.h"

namespace macvtap {

namespace {

// From <linux/vhost.h>, which C++ cannot include (its virtio_ring.h converts void* implicitly). Stable uapi numbers.
#ifndef VHOST_VIRTIO
#define VHOST_VIRTIO 0xAF
#define VHOST_GET_FEATURES _IOR(VHOST_VIRTIO, 0x00, __u64)
#define VHOST_SET_OWNER _IO(VHOST_VIRTIO, 0x01)
#endif

constexpr char kVhostNet[] = "/dev/vhost-net";

// Said with every refusal that means "this kernel has no vhost-net", so the reader knows what to load or build.
constexpr char kNoVhost[] =
    "this kernel has no vhost-net (CONFIG_VHOST_NET; load the module vhost_net: modprobe vhost_net)";

uint64_t GetFeatures(int fd, const std::string& path, const std::string& device) {
  uint64_t features = 0;
  if (::ioctl(fd, VHOST_GET_FEATURES, &features) < 0) {
    int err = errno;
    ThrowSys(err, "ioctl(VHOST_GET_FEATURES)", path, device, "not a vhost-net device");
  }
  return features;
}

}  // namespace

void VhostOpen(int count, const std::string& device, FdBatch& out) {
  for (int i = 0; i < count; ++i) {
    int fd;
    do fd = ::open(kVhostNet, O_RDWR | O_CLOEXEC);
    while (fd < 0 && errno == EINTR);
    if (fd < 0) {
      int err = errno;
      // No node: vhost-net neither built in nor loaded (devtmpfs makes the node when the driver registers; a distro's
      // kmod-static-nodes makes it ahead of the module). A node without a driver: the misc core found no module to
      // load for char-major-10-238 (ENODEV); an unregistered char major gives ENXIO.
      if (err == ENOENT) ThrowSys(ENOENT, "open", kVhostNet, device, kNoVhost);
      if (err == ENODEV || err == ENXIO) ThrowSys(EOPNOTSUPP, "open", kVhostNet, device, kNoVhost);
      ThrowSys(err, "open", kVhostNet, device);
    }
    out.Add(fd);
    // Not a vhost device (a stray node under that name) answers ENOTTY: better now than from QEMU later.
    GetFeatures(fd, kVhostNet, device);
  }
}

/**
 * vhostGetFeatures(fd) → bigint: VHOST_GET_FEATURES, the virtio feature bits the kernel's vhost-net offers (needs no
 * owner). For tests and diagnostics: it shows an fd is a live vhost-net device without changing it.
 * errno contract: 'ioctl(VHOST_GET_FEATURES)' ENOTTY (or EINVAL) not a vhost device, EBADF not an open fd.
 */
Napi::Value JsVhostGetFeatures(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = static_cast<int>(ReqInt(info[0], "fd", 0, INT32_MAX));
  try {
    return Napi::BigInt::New(env, GetFeatures(fd, "fd " + std::to_string(fd), {}));
  } catch (const SysException& e) {
    throw MakeError(env, e.error());
  }
}

/**
 * vhostSetOwner(fd) → undefined: VHOST_SET_OWNER, which binds the vhost device to the calling process's memory and
 * starts its worker — what QEMU does first with each vhostfd. For tests: once any process (QEMU) has done it, the
 * same open file answers EBUSY, which shows that process took this very fd.
 * errno contract: 'ioctl(VHOST_SET_OWNER)' EBUSY already owned, ENOTTY not a vhost device, EBADF not an open fd.
 */
Napi::Value JsVhostSetOwner(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = static_cast<int>(ReqInt(info[0], "fd", 0, INT32_MAX));
  if (::ioctl(fd, VHOST_SET_OWNER) < 0) {
    SysError e;
    e.err = errno;
    e.syscall = "ioctl(VHOST_SET_OWNER)";
    throw MakeError(env, e);
  }
  return env.Undefined();
}

}  // namespace macvtap
