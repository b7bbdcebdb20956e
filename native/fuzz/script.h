// A scripted Transport: the kernel's side of a NetlinkSocket exchange played from a list of steps (datagrams,
// errno values, short sends). Shared by the netlink fuzz target, which decodes the steps from fuzz bytes, and the
// fault-injection program, which writes them by hand; the seed recorder writes seeds in the same encoding.
#pragma once

#include <errno.h>
#include <linux/netlink.h>
#include <string.h>
#include <sys/socket.h>

#include <deque>
#include <vector>

#include "netlink.h"

namespace macvtap {
namespace fuzz {

/** How a datagram's headers are rewritten when it is received, so replies can match (or miss) the request. */
enum class Stamp : uint8_t {
  kAsIs = 0,     // the bytes as given
  kMatch = 1,    // every message gets the request's sequence number and our port id
  kStale = 2,    // sequence number of the previous request (the tail of an abandoned exchange)
  kForeign = 3,  // another socket's port id
};

struct Step {
  enum class Kind : uint8_t { kDatagram, kRecvError, kSendError, kShortSend } kind = Kind::kDatagram;
  Stamp stamp = Stamp::kMatch;
  int err = 0;  // kRecvError / kSendError: positive errno
  std::vector<uint8_t> bytes;
};

/**
 * Plays `steps` in order. Send consumes a leading kSendError/kShortSend step, if any; Recv consumes datagrams and
 * kRecvError steps (MSG_PEEK leaves the head in place and, with MSG_TRUNC, reports its full length as recv(2)
 * does). When the script is exhausted, Recv answers EAGAIN, as a socket with SO_RCVTIMEO does when it times out.
 */
class ScriptTransport : public Transport {
 public:
  static constexpr uint32_t kPortId = 0x4d565401;

  explicit ScriptTransport(std::deque<Step> steps) : steps_(std::move(steps)) {}

  ssize_t Send(const uint8_t* data, size_t len) override {
    ++sends_;
    if (len >= sizeof(nlmsghdr)) {
      nlmsghdr h;
      memcpy(&h, data, sizeof h);
      prev_seq_ = seq_;
      seq_ = h.nlmsg_seq;
      last_request_.assign(data, data + len);
    }
    if (!steps_.empty() && steps_.front().kind == Step::Kind::kSendError) {
      int err = steps_.front().err;
      steps_.pop_front();
      return -err;
    }
    ++requests_;
    if (!steps_.empty() && steps_.front().kind == Step::Kind::kShortSend) {
      steps_.pop_front();
      return static_cast<ssize_t>(len / 2);
    }
    return static_cast<ssize_t>(len);
  }

  ssize_t Recv(uint8_t* buf, size_t len, int flags) override {
    ++recvs_;
    // Send-side steps left at the head cannot be played by a receive: drop them.
    while (!steps_.empty() &&
           (steps_.front().kind == Step::Kind::kSendError || steps_.front().kind == Step::Kind::kShortSend)) {
      steps_.pop_front();
    }
    if (steps_.empty()) return -EAGAIN;
    Step& s = steps_.front();
    if (s.kind == Step::Kind::kRecvError) {
      int err = s.err;
      steps_.pop_front();
      return -err;
    }
    std::vector<uint8_t> d = Stamped(s);
    size_t full = d.size();
    size_t n = full < len ? full : len;
    if (n > 0) memcpy(buf, d.data(), n);
    if (!(flags & MSG_PEEK)) {
      delivered_.push_back(std::move(d));
      steps_.pop_front();
    }
    return static_cast<ssize_t>((flags & MSG_TRUNC) ? full : n);
  }

  uint32_t PortId() const override { return kPortId; }

  uint32_t seq() const { return seq_; }
  size_t sends() const { return sends_; }
  /** Sends the "kernel" took (not failed by a kSendError step): an EINTR retry of one request is not a second. */
  size_t requests() const { return requests_; }
  size_t recvs() const { return recvs_; }
  size_t left() const { return steps_.size(); }
  const std::vector<uint8_t>& last_request() const { return last_request_; }
  /** The datagrams consumed by non-peeking receives, as stamped (what the socket saw). */
  const std::vector<std::vector<uint8_t>>& delivered() const { return delivered_; }

 private:
  std::vector<uint8_t> Stamped(const Step& s) const {
    std::vector<uint8_t> d = s.bytes;
    if (s.stamp == Stamp::kAsIs) return d;
    uint32_t seq = s.stamp == Stamp::kStale ? prev_seq_ : seq_;
    uint32_t pid = s.stamp == Stamp::kForeign ? kPortId + 1 : kPortId;
    size_t off = 0;
    while (d.size() - off >= sizeof(nlmsghdr)) {
      nlmsghdr h;
      memcpy(&h, d.data() + off, sizeof h);
      h.nlmsg_seq = seq;
      h.nlmsg_pid = pid;
      memcpy(d.data() + off, &h, sizeof h);
      // Checked before aligning: NLMSG_ALIGN masks with a 32-bit constant, so a length near 4 GiB aligns to 0.
      if (h.nlmsg_len < sizeof(nlmsghdr) || h.nlmsg_len >= d.size() - off) break;
      off += NLMSG_ALIGN(h.nlmsg_len);
      if (off >= d.size()) break;
    }
    return d;
  }

  std::deque<Step> steps_;
  uint32_t seq_ = 0, prev_seq_ = 0;
  size_t sends_ = 0, requests_ = 0, recvs_ = 0;
  std::vector<uint8_t> last_request_;
  std::vector<std::vector<uint8_t>> delivered_;
};

/**
 * The fuzz/seed encoding of a script: repeated [kind:u8][stamp-or-errno:u8][len:u16 LE][bytes]. Kind values beyond
 * the enum wrap around; a truncated record ends the script.
 */
inline std::deque<Step> DecodeSteps(const uint8_t* data, size_t size) {
  std::deque<Step> steps;
  size_t off = 0;
  while (size - off >= 4) {
    Step s;
    s.kind = static_cast<Step::Kind>(data[off] % 4);
    uint8_t arg = data[off + 1];
    size_t len = static_cast<size_t>(data[off + 2]) | (static_cast<size_t>(data[off + 3]) << 8);
    off += 4;
    if (s.kind == Step::Kind::kDatagram) {
      s.stamp = static_cast<Stamp>(arg % 4);
      if (len > size - off) len = size - off;
      s.bytes.assign(data + off, data + off + len);
      off += len;
    } else {
      // errno 1..133 (Linux's range); EAGAIN ends the exchange as a timeout would.
      s.err = 1 + arg % 133;
    }
    steps.push_back(std::move(s));
  }
  return steps;
}

/** Appends one datagram step in DecodeSteps' encoding (the seed recorder's writer). */
inline void EncodeDatagram(std::vector<uint8_t>* out, Stamp stamp, const uint8_t* data, size_t len) {
  if (len > 0xFFFF) len = 0xFFFF;
  out->push_back(static_cast<uint8_t>(Step::Kind::kDatagram));
  out->push_back(static_cast<uint8_t>(stamp));
  out->push_back(static_cast<uint8_t>(len & 0xFF));
  out->push_back(static_cast<uint8_t>(len >> 8));
  out->insert(out->end(), data, data + len);
}

}  // namespace fuzz
}  // namespace macvtap
