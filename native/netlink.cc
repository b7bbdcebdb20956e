#include "netlink.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/rtnetlink.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>

#include "syserror.h"

namespace macvtap {

namespace {

constexpr size_t kAlign = 4;
size_t Align(size_t n) { return (n + kAlign - 1) & ~(kAlign - 1); }
constexpr size_t kHdrLen = (sizeof(nlmsghdr) + kAlign - 1) & ~(kAlign - 1);
constexpr size_t kAttrHdrLen = (sizeof(nlattr) + kAlign - 1) & ~(kAlign - 1);
// A datagram from the kernel is at most a page or two for rtnetlink; start at 32 KiB and grow when one is larger.
constexpr size_t kInitialRecvBuffer = 32 * 1024;
constexpr size_t kMaxRecvBuffer = 16 * 1024 * 1024;
// If the kernel does not answer within this time something is badly wrong (rtnl held forever); fail, do not hang.
constexpr time_t kRecvTimeoutSeconds = 60;
// Kernel errors are -errno, and errno values end at 4095 (MAX_ERRNO): anything else in an NLMSG_ERROR is garbage.
constexpr int kMaxErrno = 4095;
// A Transport may pass EINTR through (SocketTransport retries it itself): nothing was sent or consumed, so the call
// is repeated, a bounded number of times so that a transport failing forever cannot spin forever.
constexpr int kEintrRetries = 100;

template <typename Call>
ssize_t RetryEintr(Call call) {
  ssize_t n = call();
  for (int i = 0; n == -EINTR && i < kEintrRetries; ++i) n = call();
  return n;
}

}  // namespace

const char* RtmName(uint16_t type) {
  switch (type) {
    case RTM_NEWLINK: return "RTM_NEWLINK";
    case RTM_DELLINK: return "RTM_DELLINK";
    case RTM_GETLINK: return "RTM_GETLINK";
    case RTM_SETLINK: return "RTM_SETLINK";
    case RTM_NEWADDR: return "RTM_NEWADDR";
    case RTM_DELADDR: return "RTM_DELADDR";
    case RTM_GETADDR: return "RTM_GETADDR";
    case RTM_NEWQDISC: return "RTM_NEWQDISC";
    case RTM_DELQDISC: return "RTM_DELQDISC";
    case RTM_GETQDISC: return "RTM_GETQDISC";
    case RTM_NEWTCLASS: return "RTM_NEWTCLASS";
    case RTM_DELTCLASS: return "RTM_DELTCLASS";
    case RTM_GETTCLASS: return "RTM_GETTCLASS";
    case RTM_NEWTFILTER: return "RTM_NEWTFILTER";
    case RTM_DELTFILTER: return "RTM_DELTFILTER";
    case RTM_GETTFILTER: return "RTM_GETTFILTER";
    default: return "netlink";
  }
}

// ---- MessageBuilder ----

MessageBuilder::MessageBuilder(uint16_t type, uint16_t flags) : type_(type), buf_(kHdrLen, 0) {
  buf_.reserve(512);
  nlmsghdr h{};
  h.nlmsg_type = type;
  h.nlmsg_flags = flags;
  memcpy(buf_.data(), &h, sizeof h);
}

void MessageBuilder::Overflow() const {
  ThrowSys(EMSGSIZE, RtmName(type_), {}, {}, "netlink message too large");
}

size_t MessageBuilder::Grow(size_t len) {
  size_t offset = buf_.size();
  size_t aligned = Align(len);
  if (aligned < len || aligned > kMaxSize - offset) Overflow();
  buf_.resize(offset + aligned, 0);
  return offset;
}

void MessageBuilder::AppendHeader(const void* data, size_t len) {
  size_t offset = Grow(len);
  if (len > 0) memcpy(buf_.data() + offset, data, len);
}

void MessageBuilder::Put(uint16_t type, const void* data, size_t len) {
  // nla_len is 16 bits: a longer payload cannot be expressed, so refuse it rather than wrap the length.
  if (len > 0xFFFF - kAttrHdrLen) Overflow();
  size_t offset = Grow(kAttrHdrLen + len);
  nlattr a{};
  a.nla_len = static_cast<uint16_t>(kAttrHdrLen + len);
  a.nla_type = type;
  memcpy(buf_.data() + offset, &a, sizeof a);
  if (len > 0) memcpy(buf_.data() + offset + kAttrHdrLen, data, len);
}

void MessageBuilder::PutBe16(uint16_t type, uint16_t host_value) {
  uint16_t v = htons(host_value);
  Put(type, &v, sizeof v);
}

void MessageBuilder::PutString(uint16_t type, const std::string& s) { Put(type, s.c_str(), s.size() + 1); }

size_t MessageBuilder::BeginNest(uint16_t type) {
  size_t offset = Grow(kAttrHdrLen);
  nlattr a{};
  a.nla_type = static_cast<uint16_t>(type | NLA_F_NESTED);
  memcpy(buf_.data() + offset, &a, sizeof a);
  return offset;
}

void MessageBuilder::EndNest(size_t offset) {
  if (offset + kAttrHdrLen > buf_.size()) Overflow();
  size_t len = buf_.size() - offset;
  if (len > 0xFFFF) Overflow();
  nlattr a;
  memcpy(&a, buf_.data() + offset, sizeof a);
  a.nla_len = static_cast<uint16_t>(len);
  memcpy(buf_.data() + offset, &a, sizeof a);
}

void MessageBuilder::AddFlags(uint16_t flags) {
  nlmsghdr h;
  memcpy(&h, buf_.data(), sizeof h);
  h.nlmsg_flags |= flags;
  memcpy(buf_.data(), &h, sizeof h);
}

const std::vector<uint8_t>& MessageBuilder::Finish(uint32_t seq, uint32_t portid) {
  nlmsghdr h;
  memcpy(&h, buf_.data(), sizeof h);
  h.nlmsg_len = static_cast<uint32_t>(buf_.size());
  h.nlmsg_seq = seq;
  h.nlmsg_pid = portid;
  memcpy(buf_.data(), &h, sizeof h);
  return buf_;
}

// ---- Parsing ----

bool Attr::U8(uint8_t* out) const {
  if (data == nullptr || len < sizeof *out) return false;
  memcpy(out, data, sizeof *out);
  return true;
}
bool Attr::U16(uint16_t* out) const {
  if (data == nullptr || len < sizeof *out) return false;
  memcpy(out, data, sizeof *out);
  return true;
}
bool Attr::U32(uint32_t* out) const {
  if (data == nullptr || len < sizeof *out) return false;
  memcpy(out, data, sizeof *out);
  return true;
}
bool Attr::S32(int32_t* out) const {
  if (data == nullptr || len < sizeof *out) return false;
  memcpy(out, data, sizeof *out);
  return true;
}
std::string Attr::Str() const {
  if (data == nullptr) return {};
  const void* nul = memchr(data, 0, len);
  size_t n = nul ? static_cast<size_t>(static_cast<const uint8_t*>(nul) - data) : len;
  return std::string(reinterpret_cast<const char*>(data), n);
}

AttrTable::AttrTable(const uint8_t* data, size_t len, uint16_t maxtype) : attrs_(static_cast<size_t>(maxtype) + 1) {
  if (data == nullptr) return;
  ForEachAttr(data, len, [this, maxtype](const Attr& a) {
    if (a.type <= maxtype) attrs_[a.type] = a;
  });
}

const Attr& AttrTable::operator[](uint16_t type) const { return type < attrs_.size() ? attrs_[type] : none_; }

SysError DecodeStatus(const nlmsghdr* h) {
  SysError s;
  const bool done = h->nlmsg_type == NLMSG_DONE;
  const size_t total = h->nlmsg_len;
  const uint8_t* base = reinterpret_cast<const uint8_t*>(h);
  auto malformed = [&]() {
    s.err = EBADMSG;
    s.detail = done ? "malformed NLMSG_DONE" : "malformed NLMSG_ERROR";
    return s;
  };
  if (total < kHdrLen + sizeof(int)) {
    // An NLMSG_ERROR is its error field; an NLMSG_DONE without one only says the dump ended.
    if (!done) return malformed();
    return s;
  }
  int error;
  memcpy(&error, base + kHdrLen, sizeof error);
  // A dump's end carries 0 (or, from old kernels, the last part's length): not an error.
  if (done && error >= 0) return s;
  // Negating INT_MIN would overflow, and a positive value would read as a negative "errno": both are malformed.
  if (error > 0 || error < -kMaxErrno) return malformed();
  s.err = -error;
  if (!(h->nlmsg_flags & NLM_F_ACK_TLVS)) return s;
  size_t off;
  if (done) {
    // NLMSG_DONE: the TLVs follow the error field.
    off = kHdrLen + sizeof(int);
  } else {
    // NLMSG_ERROR: they follow struct nlmsgerr and, unless NETLINK_CAP_ACK trimmed it (NLM_F_CAPPED), the payload
    // of the request that failed; the embedded header tells how long that was.
    if (total < kHdrLen + sizeof(nlmsgerr)) return s;
    nlmsghdr orig;
    memcpy(&orig, base + kHdrLen + sizeof(int), sizeof orig);
    off = kHdrLen + sizeof(nlmsgerr);
    if (!(h->nlmsg_flags & NLM_F_CAPPED) && orig.nlmsg_len > sizeof(nlmsghdr)) off += orig.nlmsg_len - sizeof(nlmsghdr);
  }
  off = Align(off);
  if (off < total) {
    AttrTable tlvs(base + off, total - off, NLMSGERR_ATTR_MAX);
    s.extack = tlvs[NLMSGERR_ATTR_MSG].Str();
  }
  return s;
}

// ---- SocketTransport ----

SocketTransport::SocketTransport() {
  int fd = ::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (fd < 0) ThrowSys(errno, "socket", {}, {}, "AF_NETLINK NETLINK_ROUTE");
  fd_.reset(fd);
  int one = 1;
  // Extended acks carry the kernel's reason ("Unknown device type"); CAP_ACK keeps error replies small.
  if (setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof one) < 0) ThrowSys(errno, "setsockopt(NETLINK_EXT_ACK)");
  if (setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof one) < 0) ThrowSys(errno, "setsockopt(NETLINK_CAP_ACK)");
  // Strict checking makes the kernel reject malformed requests instead of guessing; older kernels lack it.
  if (setsockopt(fd, SOL_NETLINK, NETLINK_GET_STRICT_CHK, &one, sizeof one) < 0 && errno != ENOPROTOOPT) {
    ThrowSys(errno, "setsockopt(NETLINK_GET_STRICT_CHK)");
  }
  timeval tv{};
  tv.tv_sec = kRecvTimeoutSeconds;
  if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) < 0) ThrowSys(errno, "setsockopt(SO_RCVTIMEO)");
  sockaddr_nl addr{};
  addr.nl_family = AF_NETLINK;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0) ThrowSys(errno, "bind");
  socklen_t alen = sizeof addr;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &alen) < 0) ThrowSys(errno, "getsockname");
  portid_ = addr.nl_pid;
}

ssize_t SocketTransport::Send(const uint8_t* data, size_t len) {
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  for (;;) {
    ssize_t n = ::sendto(fd_.get(), data, len, 0, reinterpret_cast<sockaddr*>(&kernel), sizeof kernel);
    if (n >= 0) return n;
    if (errno != EINTR) return -errno;
  }
}

ssize_t SocketTransport::Recv(uint8_t* buf, size_t len, int flags) {
  for (;;) {
    ssize_t n = ::recv(fd_.get(), buf, len, flags);
    if (n >= 0) return n;
    if (errno != EINTR) return -errno;
  }
}

// ---- NetlinkSocket ----

NetlinkSocket::NetlinkSocket(std::unique_ptr<Transport> transport)
    : transport_(std::move(transport)), buf_(kInitialRecvBuffer) {
  // A time-based start makes a reply to an earlier socket with the same port id unlikely to match a new request.
  seq_ = static_cast<uint32_t>(time(nullptr));
}

uint32_t NetlinkSocket::Send(MessageBuilder& msg, const std::string& device) {
  uint32_t seq = ++seq_;
  const std::vector<uint8_t>& bytes = msg.Finish(seq, transport_->PortId());
  ssize_t n = RetryEintr([&] { return transport_->Send(bytes.data(), bytes.size()); });
  if (n < 0) ThrowSys(static_cast<int>(-n), RtmName(msg.type()), {}, device);
  if (static_cast<size_t>(n) != bytes.size()) ThrowSys(EMSGSIZE, RtmName(msg.type()), {}, device, "short send");
  return seq;
}

size_t NetlinkSocket::RecvDatagram(const char* syscall, const std::string& device, bool may_lose) {
  // Without `may_lose`, peek first so a datagram larger than the buffer is never truncated: grow to its real size,
  // then read it. With it, read at once; MSG_TRUNC still reports the real size of a datagram that did not fit.
  ssize_t n = RetryEintr([&] { return transport_->Recv(buf_.data(), buf_.size(), may_lose ? MSG_TRUNC : MSG_PEEK | MSG_TRUNC); });
  if (n < 0) {
    int err = static_cast<int>(-n);
    if (err == EAGAIN || err == EWOULDBLOCK) ThrowSys(ETIMEDOUT, syscall, {}, device, "no reply from the kernel");
    // ENOBUFS: the socket overflowed and replies were lost; the caller must not trust a partial answer.
    ThrowSys(err, syscall, {}, device);
  }
  if (static_cast<size_t>(n) > buf_.size()) {
    if (static_cast<size_t>(n) > kMaxRecvBuffer) ThrowSys(EMSGSIZE, syscall, {}, device, "netlink reply too large");
    buf_.resize(static_cast<size_t>(n));
    if (may_lose) return kLost;
  } else if (may_lose) {
    return static_cast<size_t>(n);
  }
  n = RetryEintr([&] { return transport_->Recv(buf_.data(), buf_.size(), 0); });
  if (n < 0) ThrowSys(static_cast<int>(-n), syscall, {}, device);
  return static_cast<size_t>(n) > buf_.size() ? buf_.size() : static_cast<size_t>(n);
}

template <typename OnData, typename OnAck, typename OnDone>
bool NetlinkSocket::Exchange(uint32_t seq, uint16_t type, const std::string& device, OnData&& on_data, OnAck&& on_ack,
                             OnDone&& on_done, bool may_lose) {
  const char* syscall = RtmName(type);
  for (;;) {
    size_t len = RecvDatagram(syscall, device, may_lose);
    if (len == kLost) return false;
    size_t off = 0;
    while (len - off >= sizeof(nlmsghdr)) {
      nlmsghdr h;
      memcpy(&h, buf_.data() + off, sizeof h);
      // nlmsg_ok: a header that claims less than itself or more than what is left ends this datagram.
      if (h.nlmsg_len < sizeof(nlmsghdr) || h.nlmsg_len > len - off) {
        ThrowSys(EBADMSG, syscall, {}, device, "malformed netlink reply");
      }
      const nlmsghdr* msg = reinterpret_cast<const nlmsghdr*>(buf_.data() + off);
      size_t step = Align(h.nlmsg_len);
      off = step > len - off ? len : off + step;
      // Replies to an earlier request on this socket (e.g. the tail of an abandoned dump) are not ours.
      if (h.nlmsg_pid != transport_->PortId() || h.nlmsg_seq != seq) continue;
      // The control table: what each kind of message means, for every request alike.
      bool complete;
      switch (h.nlmsg_type) {
        case NLMSG_ERROR:
        case NLMSG_DONE: {
          SysError status = DecodeStatus(msg);
          if (status.err != 0) {
            status.syscall = syscall;
            status.device = device;
            throw SysException(std::move(status));
          }
          complete = h.nlmsg_type == NLMSG_ERROR ? on_ack(msg) : on_done(msg);
          break;
        }
        default:
          // NLMSG_NOOP, NLMSG_OVERRUN (which Linux never sends) and the other reserved types answer nothing.
          complete = h.nlmsg_type >= NLMSG_MIN_TYPE && on_data(msg);
          break;
      }
      if (complete) return true;
    }
  }
}

void NetlinkSocket::Ack(MessageBuilder& msg, const std::string& device) { AckCollect(msg, device, nullptr); }

std::vector<std::vector<uint8_t>> NetlinkSocket::AckEcho(MessageBuilder& msg, const std::string& device) {
  std::vector<std::vector<uint8_t>> echoed;
  msg.AddFlags(NLM_F_ECHO);
  AckCollect(msg, device, &echoed);
  return echoed;
}

void NetlinkSocket::AckCollect(MessageBuilder& msg, const std::string& device,
                               std::vector<std::vector<uint8_t>>* echoed) {
  // The flags are part of what this call means, not of the builder.
  msg.AddFlags(NLM_F_ACK | NLM_F_REQUEST);
  uint32_t seq = Send(msg, device);
  Exchange(
      seq, msg.type(), device,
      [&](const nlmsghdr* h) {
        // An NLM_F_ECHO copy (same port id and sequence): kept when asked for, never mistaken for the ack.
        if (echoed != nullptr) {
          const uint8_t* p = reinterpret_cast<const uint8_t*>(h);
          echoed->emplace_back(p, p + h->nlmsg_len);
        }
        return false;
      },
      [](const nlmsghdr*) { return true; },    // the ACK ends it
      [](const nlmsghdr*) { return false; });  // no dump was asked for: an end of one answers nothing
}

std::vector<uint8_t> NetlinkSocket::Get(MessageBuilder& msg, const std::string& device) {
  msg.AddFlags(NLM_F_REQUEST);
  uint16_t type = msg.type();
  // A single answer to a read-only request: read without peeking first, and in the rare case the answer did not fit
  // the buffer (now grown to its size), ask again. Replies to the lost attempt carry its sequence number and are
  // skipped as stale. Two retries cover an answer that grew in between; a third loss is EMSGSIZE.
  for (int attempt = 0; attempt < kGetAttempts; ++attempt) {
    uint32_t seq = Send(msg, device);
    std::vector<uint8_t> reply;
    bool done = Exchange(
        seq, type, device,
        [&](const nlmsghdr* h) {
          const uint8_t* p = reinterpret_cast<const uint8_t*>(h);
          reply.assign(p, p + h->nlmsg_len);
          return true;
        },
        [&](const nlmsghdr*) { return !reply.empty(); },  // a bare ACK: only complete if the answer came first
        [&](const nlmsghdr*) -> bool {
          // The end of a dump is no answer to a single request: returning it as one would be a wrong answer, not
          // an error the caller can see.
          ThrowSys(EBADMSG, RtmName(type), {}, device, "unexpected control message");
        },
        true);
    if (done) return reply;
  }
  ThrowSys(EMSGSIZE, RtmName(type), {}, device, "netlink reply kept outgrowing the buffer");
}

std::vector<std::vector<uint8_t>> NetlinkSocket::Dump(MessageBuilder& msg) {
  msg.AddFlags(NLM_F_REQUEST | NLM_F_DUMP);
  uint16_t type = msg.type();
  for (int attempt = 0; attempt <= kDumpRetries; ++attempt) {
    std::vector<std::vector<uint8_t>> out;
    bool interrupted = false;
    auto note = [&](const nlmsghdr* h) {
      if (h->nlmsg_flags & NLM_F_DUMP_INTR) interrupted = true;
    };
    uint32_t seq = Send(msg, {});
    Exchange(
        seq, type, {},
        [&](const nlmsghdr* h) {
          note(h);
          const uint8_t* p = reinterpret_cast<const uint8_t*>(h);
          out.emplace_back(p, p + h->nlmsg_len);
          return false;
        },
        [&](const nlmsghdr* h) {
          note(h);
          return false;  // an ACK does not end a dump: NLMSG_DONE does
        },
        [&](const nlmsghdr* h) {
          note(h);
          return true;
        });
    // An interrupted dump may have skipped or repeated entries: its data is not an answer, so start over.
    if (!interrupted) return out;
  }
  ThrowSys(EAGAIN, RtmName(type), {}, {},
           "dump interrupted by concurrent changes " + std::to_string(kDumpRetries + 1) + " times");
}

}  // namespace macvtap
