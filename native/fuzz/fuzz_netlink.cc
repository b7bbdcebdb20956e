// libFuzzer target (a): NetlinkSocket's request/ack/dump/echo logic with the kernel's replies played from fuzz bytes
// (ScriptTransport): messages, NLMSG_ERROR with extended acks, multipart dumps with NLM_F_DUMP_INTR, replies with
// wrong sequence numbers or port ids, receive errors, short sends. Every outcome must be a returned answer that
// belongs to the request, or a SysException with a positive errno and the request's name as syscall.
#include <linux/rtnetlink.h>
#include <string.h>

#include <memory>

#include "check.h"
#include "netlink.h"
#include "script.h"
#include "syserror.h"

using macvtap::MessageBuilder;
using macvtap::NetlinkSocket;
using macvtap::SysException;
using macvtap::fuzz::ScriptTransport;

namespace {

void CheckOwn(const std::vector<uint8_t>& msg, uint32_t seq, const char* what) {
  MVT_CHECK(msg.size() >= sizeof(nlmsghdr), "%s: %zu-byte message", what, msg.size());
  nlmsghdr h;
  memcpy(&h, msg.data(), sizeof h);
  MVT_CHECK(h.nlmsg_len == msg.size(), "%s: nlmsg_len %u for %zu bytes", what, h.nlmsg_len, msg.size());
  MVT_CHECK(h.nlmsg_seq == seq && h.nlmsg_pid == ScriptTransport::kPortId, "%s: seq %u pid %u, request seq %u", what,
            h.nlmsg_seq, h.nlmsg_pid, seq);
  MVT_CHECK(h.nlmsg_type != NLMSG_ERROR && h.nlmsg_type != NLMSG_DONE, "%s: control message %u returned as data", what,
            h.nlmsg_type);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  int op = data[0] % 4;
  auto owned = std::make_unique<ScriptTransport>(macvtap::fuzz::DecodeSteps(data + 1, size - 1));
  ScriptTransport* t = owned.get();
  NetlinkSocket sock(std::move(owned));
  uint16_t type = op < 2 ? RTM_NEWLINK : RTM_GETLINK;
  MessageBuilder m(type, 0);
  ifinfomsg ifi{};
  ifi.ifi_index = 7;
  m.AppendHeader(&ifi, sizeof ifi);
  m.PutString(IFLA_IFNAME, "mvt-fuzz0");
  try {
    switch (op) {
      case 0:
        sock.Ack(m, "mvt-fuzz0");
        MVT_CHECK(t->recvs() > 0, "an ACK without receiving anything");
        break;
      case 1:
        for (const auto& msg : sock.AckEcho(m, "mvt-fuzz0")) CheckOwn(msg, t->seq(), "echo");
        break;
      case 2: {
        std::vector<uint8_t> reply = sock.Get(m, "mvt-fuzz0");
        CheckOwn(reply, t->seq(), "get");
        break;
      }
      case 3: {
        for (const auto& msg : sock.Dump(m)) {
          CheckOwn(msg, t->seq(), "dump");
          nlmsghdr h;
          memcpy(&h, msg.data(), sizeof h);
          MVT_CHECK(h.nlmsg_type != NLMSG_NOOP && h.nlmsg_type != NLMSG_OVERRUN, "dump returned type %u",
                    h.nlmsg_type);
          MVT_CHECK(!(h.nlmsg_flags & NLM_F_DUMP_INTR), "an interrupted dump's part was returned as data");
        }
        MVT_CHECK(t->sends() <= NetlinkSocket::kDumpRetries + 1, "%zu dump requests", t->sends());
        break;
      }
    }
  } catch (const SysException& e) {
    const auto& err = e.error();
    MVT_CHECK(err.err > 0 && err.err < 4096, "errno %d", err.err);
    MVT_CHECK(err.syscall == macvtap::RtmName(type), "syscall '%s'", err.syscall.c_str());
    MVT_CHECK(e.what()[0] != '\0', "empty message");
  }
  return 0;
}
