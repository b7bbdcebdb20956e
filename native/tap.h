// macvtap queues: open the link's own char device (verified by st_rdev, private node when /dev/tapN is wrong or
// missing), configure each queue with TUNSETIFF & co, read and write single frames.
#pragma once

#include <napi.h>

#include <string>

#include "link.h"
#include "netns.h"
#include "ownership.h"

namespace macvtap {

/** NativeTapOpenOptions: every field is set from JS (lib/tap.ts defaults them). */
struct TapOpenOptions {
  int queues = 0;
  bool vnet_hdr = false;
  /** 0 leaves the kernel's 10. */
  int vnet_hdr_size = 0;
  /** -1 leaves the offloads alone. */
  long offloads = -1;
  bool nonblock = false;
  /** Also open one `/dev/vhost-net` fd per queue. */
  bool vhost = false;
};

/** NativeTapOpenResult; `fds` are closed unless claimed. */
struct TapOpenResult {
  FdBatch fds;
  /** One `/dev/vhost-net` fd per queue with `vhost`, else empty; closed with `fds` unless claimed. */
  FdBatch vhost_fds;
  int ifindex = 0;
  std::string name;
  std::string path;
  unsigned major = 0;
  unsigned minor = 0;
  bool private_node = false;
};

TapOpenResult TapOpen(const LinkKey& key, const TapOpenOptions& opts, const NetnsRef& ns);

Napi::Value JsTapOpen(const Napi::CallbackInfo& info);
Napi::Value JsTapRead(const Napi::CallbackInfo& info);
Napi::Value JsTapWrite(const Napi::CallbackInfo& info);
Napi::Value JsMknodChar(const Napi::CallbackInfo& info);

}  // namespace macvtap
