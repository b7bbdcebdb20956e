// The link watcher's message decoding, apart from its socket and libuv: what one message on an RTNLGRP_LINK socket
// means (a notification, a part or the end of our own RTM_GETLINK dump, a dump's error) and which dump is current.
// Pure C++ (no N-API, no syscalls): events.cc turns the results into JS batch items; native/fuzz feeds it arbitrary
// datagrams.
#pragma once

#include <linux/netlink.h>
#include <stddef.h>
#include <stdint.h>

#include <functional>

#include "linkmsg.h"

namespace macvtap {

/** One decoded message. */
struct LinkEvent {
  enum class Type {
    kSkip,   // not for JS: foreign family (AF_BRIDGE), other message types, a superseded dump, undecodable
    kDone,   // our dump ended (`intr`: some part of it carried NLM_F_DUMP_INTR)
    kError,  // our dump failed with `err` (positive errno)
    kDump,   // one link of our dump
    kNew,    // RTM_NEWLINK notification
    kDel,    // RTM_DELLINK notification (the link's last state)
  };
  Type type = Type::kSkip;
  bool intr = false;
  int err = 0;
  LinkInfo link;
};

/**
 * The dump bookkeeping of one watcher socket: the kernel runs one dump per socket at a time, so a dump asked for
 * while one runs is deferred, and the running one's parts are dropped; its end starts the deferred one.
 */
class LinkEventDecoder {
 public:
  explicit LinkEventDecoder(uint32_t portid) : portid_(portid) {}

  /** A dump was asked for: true when it must be sent now, false when it was deferred behind the running one. */
  bool RequestDump();
  /** The sequence number of the dump about to be sent (it becomes the current one). */
  uint32_t NextDumpSeq() { return dump_seq_ = ++seq_; }
  /** The dump request went out: it is running, and not (yet) interrupted. */
  void DumpSent();
  bool dump_running() const { return dump_running_; }

  /**
   * Decodes one message whose nlmsg_len was checked against the datagram (ForEachNlmsg). Sets `*send_dump` when the
   * deferred dump must be sent now (then call NextDumpSeq and DumpSent).
   */
  LinkEvent Decode(const nlmsghdr* h, bool* send_dump);

 private:
  uint32_t portid_;
  uint32_t seq_ = 0;
  uint32_t dump_seq_ = 0;
  bool dump_running_ = false;
  bool restart_pending_ = false;
  bool dump_intr_ = false;
};

/**
 * Calls `fn` for every whole message of the datagram [data, data+len) in order; a header that claims less than
 * itself or more than what is left ends the walk (the rest of that datagram is dropped). `data` must be 4-aligned.
 */
void ForEachNlmsg(const uint8_t* data, size_t len, const std::function<void(const nlmsghdr*)>& fn);

}  // namespace macvtap
