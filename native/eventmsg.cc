#include "eventmsg.h"

#include <linux/rtnetlink.h>
#include <string.h>
#include <sys/socket.h>

#include <vector>

#include "netlink.h"
#include "syserror.h"

namespace macvtap {

namespace {

constexpr size_t kHdr = NLMSG_ALIGN(sizeof(nlmsghdr));

}  // namespace

bool LinkEventDecoder::RequestDump() {
  if (dump_running_) {
    restart_pending_ = true;
    return false;
  }
  return true;
}

void LinkEventDecoder::DumpSent() {
  dump_running_ = true;
  dump_intr_ = false;
}

LinkEvent LinkEventDecoder::Decode(const nlmsghdr* h, bool* send_dump) {
  LinkEvent ev;
  *send_dump = false;
  bool ours = h->nlmsg_pid == portid_ && h->nlmsg_seq != 0;
  if (ours && (h->nlmsg_seq != dump_seq_ || restart_pending_)) {
    // A superseded dump: its parts are dropped, its end (or its error) starts the dump that was asked for meanwhile.
    if (h->nlmsg_type == NLMSG_DONE || (h->nlmsg_type == NLMSG_ERROR && DecodeStatus(h).err != 0)) {
      if (h->nlmsg_seq == dump_seq_) {
        dump_running_ = false;
        restart_pending_ = false;
        *send_dump = true;
      }
    }
    return ev;
  }
  if ((h->nlmsg_type == NLMSG_DONE || h->nlmsg_type == NLMSG_ERROR) && ours) {
    // The same decoding as NetlinkSocket's: an error ends the dump (in an NLMSG_ERROR, or carried by NLMSG_DONE); a
    // bare ACK does not (the dump is not asked for with NLM_F_ACK), a clean NLMSG_DONE does.
    SysError status = DecodeStatus(h);
    if (status.err != 0) {
      dump_running_ = false;
      ev.type = LinkEvent::Type::kError;
      ev.err = status.err;
      return ev;
    }
    if (h->nlmsg_type == NLMSG_ERROR) return ev;
    dump_running_ = false;
    ev.type = LinkEvent::Type::kDone;
    ev.intr = dump_intr_ || (h->nlmsg_flags & NLM_F_DUMP_INTR) != 0;
    return ev;
  }
  if (h->nlmsg_type != RTM_NEWLINK && h->nlmsg_type != RTM_DELLINK) return ev;
  if (h->nlmsg_len < kHdr + sizeof(ifinfomsg)) return ev;
  ifinfomsg ifi;
  memcpy(&ifi, reinterpret_cast<const uint8_t*>(h) + kHdr, sizeof ifi);
  // The bridge also sends AF_BRIDGE port messages to RTNLGRP_LINK: they are not a link's state.
  if (ifi.ifi_family != AF_UNSPEC) return ev;
  if (ours && (h->nlmsg_flags & NLM_F_DUMP_INTR)) dump_intr_ = true;
  std::vector<uint8_t> msg(reinterpret_cast<const uint8_t*>(h), reinterpret_cast<const uint8_t*>(h) + h->nlmsg_len);
  bool removed = h->nlmsg_type == RTM_DELLINK;
  if (removed) {
    // ParseLink reads RTM_NEWLINK; a RTM_DELLINK carries the same attributes (the link's last state).
    nlmsghdr copy;
    memcpy(&copy, msg.data(), sizeof copy);
    copy.nlmsg_type = RTM_NEWLINK;
    memcpy(msg.data(), &copy, sizeof copy);
  }
  try {
    ev.link = ParseLink(msg);
  } catch (const SysException&) {
    return ev;  // malformed: skipped, like a parser that meets a truncated attribute
  }
  ev.type = ours ? LinkEvent::Type::kDump : removed ? LinkEvent::Type::kDel : LinkEvent::Type::kNew;
  return ev;
}

void ForEachNlmsg(const uint8_t* data, size_t len, const std::function<void(const nlmsghdr*)>& fn) {
  size_t off = 0;
  while (len - off >= sizeof(nlmsghdr)) {
    nlmsghdr h;
    memcpy(&h, data + off, sizeof h);
    if (h.nlmsg_len < sizeof(nlmsghdr) || h.nlmsg_len > len - off) break;
    // The offset stays 4-aligned, which nlmsghdr needs; the callee copies what it keeps.
    fn(reinterpret_cast<const nlmsghdr*>(data + off));
    off += NLMSG_ALIGN(h.nlmsg_len);
    if (off > len) break;
  }
}

}  // namespace macvtap
