// The rtnetlink layer: a NETLINK_ROUTE socket, a bounds-checked message builder, a parser that never reads past a
// length it checked, and request/ack/dump logic that checks every reply's port id and sequence number.
// Pure C++ (no N-API): it runs on worker threads.
#pragma once

#include <linux/netlink.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "fd.h"
#include "syserror.h"

namespace macvtap {

/** The rtnetlink message name used as `syscall` in errors ("RTM_NEWLINK", …). */
const char* RtmName(uint16_t type);

/**
 * Builds one netlink message. Attributes are appended with 4-byte alignment; nested attributes are closed with
 * EndNest. Anything that would not fit (an attribute over 64 KiB, a message over kMaxSize) throws EMSGSIZE instead
 * of writing a corrupt length.
 */
class MessageBuilder {
 public:
  static constexpr size_t kMaxSize = 1 << 20;

  MessageBuilder(uint16_t type, uint16_t flags);

  /** Appends a fixed header (e.g. struct ifinfomsg), zero-padded to alignment. */
  void AppendHeader(const void* data, size_t len);
  void Put(uint16_t type, const void* data, size_t len);
  void PutU8(uint16_t type, uint8_t v) { Put(type, &v, sizeof v); }
  void PutU16(uint16_t type, uint16_t v) { Put(type, &v, sizeof v); }
  void PutU32(uint16_t type, uint32_t v) { Put(type, &v, sizeof v); }
  /** A 16-bit value in network byte order (e.g. IFLA_VLAN_PROTOCOL). */
  void PutBe16(uint16_t type, uint16_t host_value);
  /** A NUL-terminated string (NLA_STRING / NLA_NUL_STRING). */
  void PutString(uint16_t type, const std::string& s);
  /** Opens a nested attribute; returns its offset for EndNest. */
  size_t BeginNest(uint16_t type);
  void EndNest(size_t offset);

  uint16_t type() const { return type_; }
  /** ORs `flags` into nlmsg_flags (NLM_F_ACK, NLM_F_DUMP, … added by the request that sends it). */
  void AddFlags(uint16_t flags);
  /** Stamps length, sequence and port id; the bytes are valid until the next Put. */
  const std::vector<uint8_t>& Finish(uint32_t seq, uint32_t portid);

 private:
  size_t Grow(size_t len);
  [[noreturn]] void Overflow() const;

  uint16_t type_;
  std::vector<uint8_t> buf_;
};

/** One attribute as found in a received message: `data` points into a buffer whose bounds were checked. */
struct Attr {
  uint16_t type = 0;
  const uint8_t* data = nullptr;
  size_t len = 0;

  bool present() const { return data != nullptr; }
  /** Fixed-size readers return false when the payload is too short (a malformed attribute is treated as absent). */
  bool U8(uint8_t* out) const;
  bool U16(uint16_t* out) const;
  bool U32(uint32_t* out) const;
  bool S32(int32_t* out) const;
  /** Up to the first NUL or the attribute's end. */
  std::string Str() const;
};

/**
 * Indexes the attributes in [data, data+len) by type (NLA_F_NESTED / NLA_F_NET_BYTEORDER stripped); types above
 * `maxtype` are ignored. A truncated or malformed attribute ends the walk: what was read before it stays valid.
 */
class AttrTable {
 public:
  AttrTable(const uint8_t* data, size_t len, uint16_t maxtype);
  const Attr& operator[](uint16_t type) const;

 private:
  std::vector<Attr> attrs_;
  Attr none_;
};

/**
 * Calls `fn` for every attribute in [data, data+len), in order (for lists such as IFLA_MACVLAN_MACADDR_DATA). A
 * template, not a std::function: it runs for every attribute of every reply.
 */
template <typename Fn>
void ForEachAttr(const uint8_t* data, size_t len, Fn&& fn) {
  size_t off = 0;
  while (len - off >= sizeof(nlattr)) {
    nlattr a;
    memcpy(&a, data + off, sizeof a);
    // nla_ok: the header's length must cover the header and stay inside what is left.
    if (a.nla_len < sizeof(nlattr) || a.nla_len > len - off) return;
    Attr attr;
    attr.type = a.nla_type & NLA_TYPE_MASK;
    attr.data = data + off + NLA_HDRLEN;
    attr.len = a.nla_len - NLA_HDRLEN;
    if (a.nla_len < NLA_HDRLEN) attr.len = 0;
    fn(attr);
    size_t step = NLA_ALIGN(static_cast<size_t>(a.nla_len));
    if (step > len - off) return;
    off += step;
  }
}

/**
 * Moves datagrams to and from the kernel. The seam for fault injection: a fake can feed crafted replies to
 * NetlinkSocket. Both calls return a byte count or a negative errno (never throw).
 */
class Transport {
 public:
  virtual ~Transport() = default;
  virtual ssize_t Send(const uint8_t* data, size_t len) = 0;
  /** recv(2) semantics including MSG_PEEK|MSG_TRUNC (returns the datagram's real length). */
  virtual ssize_t Recv(uint8_t* buf, size_t len, int flags) = 0;
  /** The port id the kernel assigned to this socket (replies carry it in nlmsg_pid). */
  virtual uint32_t PortId() const = 0;
  /** The socket's fd for ioctls in its namespace (SIOCGIFNAME), or -1 when there is none (fakes). */
  virtual int Fd() const { return -1; }
};

/** A real NETLINK_ROUTE socket in the calling thread's network namespace at construction time. */
class SocketTransport : public Transport {
 public:
  /** socket + setsockopt(EXT_ACK, CAP_ACK, GET_STRICT_CHK) + bind + getsockname. Throws SysException. */
  SocketTransport();
  ssize_t Send(const uint8_t* data, size_t len) override;
  ssize_t Recv(uint8_t* buf, size_t len, int flags) override;
  uint32_t PortId() const override { return portid_; }
  int Fd() const override { return fd_.get(); }

 private:
  FileDescriptor fd_;
  uint32_t portid_ = 0;
};

/** Requests over one transport. Every method throws SysException with `syscall` = the request's RTM name. */
class NetlinkSocket {
 public:
  explicit NetlinkSocket(std::unique_ptr<Transport> transport);

  /** Sends with NLM_F_ACK and waits for the ACK; kernel errors carry the extended-ack text. */
  void Ack(MessageBuilder& msg, const std::string& device);
  /**
   * Ack with NLM_F_ECHO: also returns the messages the kernel echoed to us before the ACK (for RTM_NEWLINK creates,
   * Linux >= 6.3 echoes the new link's RTM_NEWLINK; older kernels echo nothing and the result is empty).
   */
  std::vector<std::vector<uint8_t>> AckEcho(MessageBuilder& msg, const std::string& device);
  /** Sends a non-dump request and returns the single reply message (e.g. RTM_GETLINK of one link). */
  std::vector<uint8_t> Get(MessageBuilder& msg, const std::string& device);
  /**
   * Sends with NLM_F_DUMP and returns every reply message until NLMSG_DONE. A dump flagged NLM_F_DUMP_INTR (the
   * table changed under it) is restarted from scratch, at most kDumpRetries times, then fails with EAGAIN.
   */
  std::vector<std::vector<uint8_t>> Dump(MessageBuilder& msg);

  static constexpr int kDumpRetries = 10;
  /** Sends of one Get whose answer was lost to a too-small buffer (see RecvDatagram). */
  static constexpr int kGetAttempts = 3;

  /** See Transport::Fd. */
  int Fd() const { return transport_->Fd(); }

 private:
  uint32_t Send(MessageBuilder& msg, const std::string& device);
  /**
   * Receives one datagram into buf_ and returns its length. With `may_lose` false it peeks first and grows buf_ so
   * nothing is ever cut; with `may_lose` true it reads at once (one system call less) and, when the datagram was
   * longer than buf_, grows buf_ to its size and returns kLost: the datagram is gone, the caller asks again.
   */
  size_t RecvDatagram(const char* syscall, const std::string& device, bool may_lose = false);
  static constexpr size_t kLost = static_cast<size_t>(-1);
  /**
   * Reads replies for `seq` (stale or foreign messages are skipped) and dispatches them through the one control
   * table, as libmnl's mnl_cb_run does: NLMSG_NOOP, NLMSG_OVERRUN and the other reserved types are skipped; an
   * NLMSG_ERROR or NLMSG_DONE that carries an error is thrown (DecodeStatus); a clean one goes to `on_ack(h)` /
   * `on_done(h)`, every other message to `on_data(h)`. Each handler returns true when the exchange is complete; then
   * Exchange returns true. With `may_lose` (idempotent requests only) it returns false as soon as a datagram was lost
   * to a too-small buffer, so the request can be sent again. A template: it runs for every reply of every request.
   */
  template <typename OnData, typename OnAck, typename OnDone>
  bool Exchange(uint32_t seq, uint16_t type, const std::string& device, OnData&& on_data, OnAck&& on_ack,
                OnDone&& on_done, bool may_lose = false);

  void AckCollect(MessageBuilder& msg, const std::string& device, std::vector<std::vector<uint8_t>>* echoed);

  std::unique_ptr<Transport> transport_;
  uint32_t seq_;
  std::vector<uint8_t> buf_;
};

/**
 * The one decoder of what a control message says about the request it answers (nlmsg_len already checked against
 * the datagram): an NLMSG_ERROR (error 0 is the ACK) or an NLMSG_DONE (a dump's end; since Linux 4.x it carries the
 * dump's own error). The result's `err` is 0 for an ACK or a clean end, else a positive errno with the kernel's
 * extended-ack text in `extack`; a malformed message (an NLMSG_ERROR too short for its error field, an error field
 * outside [-4095, 0]) is EBADMSG with `detail` saying so. The caller fills in `syscall` and `device`. Used by
 * NetlinkSocket and by the link watcher's decoder (eventmsg.cc).
 */
SysError DecodeStatus(const nlmsghdr* h);

}  // namespace macvtap
