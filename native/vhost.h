// vhost-net: the in-kernel virtio-net backend QEMU drives through `/dev/vhost-net`, one fd per queue next to the tap
// queue it serves (QEMU's `-netdev tap,…,vhost=on,vhostfds=…`).
#pragma once

#include <napi.h>
#include <stdint.h>

#include <string>

#include "ownership.h"

namespace macvtap {

/**
 * Opens `count` fds of `/dev/vhost-net` into `out` (O_RDWR | O_CLOEXEC, as QEMU opens it), each checked to be a
 * vhost-net device by VHOST_GET_FEATURES. `device` names the link they are for, in errors.
 * Throws 'open' ENOENT (path /dev/vhost-net) when the node does not exist and 'open' EOPNOTSUPP when it exists without
 * a driver behind it (ENODEV/ENXIO from the kernel: the module cannot be loaded), both with a detail naming
 * CONFIG_VHOST_NET and the module vhost_net; any other open errno as is (EACCES, EMFILE…);
 * 'ioctl(VHOST_GET_FEATURES)' ENOTTY/EINVAL when the node is something else. On a throw, what `out` holds is closed
 * by its owner (FdBatch), so nothing is left open.
 */
void VhostOpen(int count, const std::string& device, FdBatch& out);

/** vhostGetFeatures(fd) → bigint; see vhost.cc. */
Napi::Value JsVhostGetFeatures(const Napi::CallbackInfo& info);
/** vhostSetOwner(fd) → undefined; see vhost.cc. */
Napi::Value JsVhostSetOwner(const Napi::CallbackInfo& info);

}  // namespace macvtap
