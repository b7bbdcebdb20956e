// libFuzzer target (a): NetlinkSocket's request/ack/dump/echo logic with the kernel's replies played from fuzz bytes
// (ScriptTransport): messages, NLMSG_ERROR with extended acks, multipart dumps with NLM_F_DUMP_INTR, replies with
// wrong sequence numbers or port ids, receive errors, short sends. Every outcome must be a returned answer that
// belongs to the request, or a SysException with a positive errno and the request's name as syscall.
#include <linux/rtnetlink.h>
#include <string.h>

#include <memory>
#include <utility>
#include <vector>

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

// Every well-formed message of `d` (nlmsg_ok walk), as [offset, offset + nlmsg_len).
std::vector<std::pair<size_t, size_t>> Messages(const std::vector<uint8_t>& d) {
  std::vector<std::pair<size_t, size_t>> out;
  size_t off = 0;
  while (d.size() - off >= sizeof(nlmsghdr)) {
    nlmsghdr h;
    memcpy(&h, d.data() + off, sizeof h);
    if (h.nlmsg_len < sizeof(nlmsghdr) || h.nlmsg_len > d.size() - off) break;
    out.emplace_back(off, off + h.nlmsg_len);
    off += (static_cast<size_t>(h.nlmsg_len) + 3) & ~static_cast<size_t>(3);
    if (off >= d.size()) break;
  }
  return out;
}

// The oracle for a successful Ack: the last datagram the socket consumed holds our ACK (NLMSG_ERROR, error 0).
void CheckAcked(const ScriptTransport& t) {
  MVT_CHECK(!t.delivered().empty(), "an ACK without receiving anything");
  const std::vector<uint8_t>& d = t.delivered().back();
  bool found = false;
  for (auto [b, e] : Messages(d)) {
    nlmsghdr h;
    memcpy(&h, d.data() + b, sizeof h);
    int err = -1;
    if (e - b >= NLMSG_HDRLEN + sizeof err) memcpy(&err, d.data() + b + NLMSG_HDRLEN, sizeof err);
    if (h.nlmsg_type == NLMSG_ERROR && h.nlmsg_seq == t.seq() && h.nlmsg_pid == ScriptTransport::kPortId && err == 0) {
      found = true;
    }
  }
  MVT_CHECK(found, "Ack succeeded without an ACK for seq %u in the last datagram", t.seq());
}

// The oracle for a successful Get: the answer is, byte for byte, a message the socket consumed.
void CheckDelivered(const ScriptTransport& t, const std::vector<uint8_t>& reply) {
  for (const auto& d : t.delivered()) {
    for (auto [b, e] : Messages(d)) {
      if (e - b == reply.size() && memcmp(d.data() + b, reply.data(), reply.size()) == 0) return;
    }
  }
  MVT_CHECK(false, "Get answered %zu bytes the kernel never sent", reply.size());
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
        CheckAcked(*t);
        break;
      case 1:
        for (const auto& msg : sock.AckEcho(m, "mvt-fuzz0")) CheckOwn(msg, t->seq(), "echo");
        CheckAcked(*t);
        break;
      case 2: {
        std::vector<uint8_t> reply = sock.Get(m, "mvt-fuzz0");
        MVT_CHECK(t->requests() <= NetlinkSocket::kGetAttempts, "%zu get requests", t->requests());
        CheckOwn(reply, t->seq(), "get");
        CheckDelivered(*t, reply);
        break;
      }
      case 3: {
        for (const auto& msg : sock.Dump(m)) {
          CheckOwn(msg, t->seq(), "dump");
          CheckDelivered(*t, msg);
          nlmsghdr h;
          memcpy(&h, msg.data(), sizeof h);
          MVT_CHECK(h.nlmsg_type != NLMSG_NOOP && h.nlmsg_type != NLMSG_OVERRUN, "dump returned type %u",
                    h.nlmsg_type);
          MVT_CHECK(!(h.nlmsg_flags & NLM_F_DUMP_INTR), "an interrupted dump's part was returned as data");
        }
        MVT_CHECK(t->requests() <= NetlinkSocket::kDumpRetries + 1, "%zu dump requests", t->requests());
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
