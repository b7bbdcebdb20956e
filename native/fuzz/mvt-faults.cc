// Fault injection over the Transport seam: NetlinkSocket fed crafted kernel replies — truncated
// messages, wrong sequence numbers and port ids, ENOBUFS, EINTR, EAGAIN, interrupted dumps (retry, then EAGAIN after
// kDumpRetries), an error inside a multipart reply, a datagram larger than the buffer (MSG_TRUNC), ACKs with extended
// acks — and, on a real NETLINK_ROUTE socket, EINTR from a signal and replies sent by another socket. Each case must
// end in the right answer, a correct retry, or a SysException with the right errno and syscall: never a crash, a hang
// (each case runs in its own child process, killed after kCaseSeconds) or a wrong answer.
//
// With --recorded DIR (mvt-record's output), real kernel replies are replayed through the same seam as well, and
// what they decode to is checked against what run.mjs made with `ip`.
//
// Usage: mvt-faults [--recorded DIR] [case-name-substring]
// Output: one "ok NAME" / "not ok NAME: why" line per case (TAP-like), then "# N cases, M failed".
#include <errno.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "linkmsg.h"
#include "netlink.h"
#include "script.h"
#include "syserror.h"

using namespace macvtap;
using fuzz::ScriptTransport;
using fuzz::Stamp;
using fuzz::Step;

namespace {

constexpr int kCaseSeconds = 20;

struct Failure {
  std::string why;
};

#define EXPECT(cond, why)                                                      \
  do {                                                                         \
    if (!(cond)) throw Failure{std::string(why) + " [" #cond "] at line " + std::to_string(__LINE__)}; \
  } while (0)

// ---- crafted kernel messages ----

std::vector<uint8_t> Raw(uint16_t type, uint16_t flags, const void* payload, size_t len) {
  std::vector<uint8_t> m(NLMSG_HDRLEN + NLMSG_ALIGN(len), 0);
  nlmsghdr h{};
  h.nlmsg_len = static_cast<uint32_t>(NLMSG_HDRLEN + len);
  h.nlmsg_type = type;
  h.nlmsg_flags = flags;
  memcpy(m.data(), &h, sizeof h);
  if (len) memcpy(m.data() + NLMSG_HDRLEN, payload, len);
  return m;
}

void AppendTlv(std::vector<uint8_t>* m, uint16_t type, const std::string& s) {
  nlattr a{};
  a.nla_type = type;
  a.nla_len = static_cast<uint16_t>(NLA_HDRLEN + s.size() + 1);
  size_t at = m->size();
  m->resize(at + NLA_ALIGN(a.nla_len), 0);
  memcpy(m->data() + at, &a, sizeof a);
  memcpy(m->data() + at + NLA_HDRLEN, s.c_str(), s.size() + 1);
  nlmsghdr h;
  memcpy(&h, m->data(), sizeof h);
  h.nlmsg_len = static_cast<uint32_t>(m->size());
  memcpy(m->data(), &h, sizeof h);
}

// NLMSG_ERROR as a kernel with NETLINK_CAP_ACK / NETLINK_EXT_ACK sends it (capped: only the request's header).
std::vector<uint8_t> Err(int error, const std::string& extack = {}, bool capped = true) {
  std::vector<uint8_t> payload(sizeof(nlmsgerr), 0);
  nlmsgerr e{};
  e.error = error;
  e.msg.nlmsg_len = capped ? sizeof(nlmsghdr) : sizeof(nlmsghdr) + 20;
  e.msg.nlmsg_type = RTM_NEWLINK;
  memcpy(payload.data(), &e, sizeof e);
  if (!capped) payload.resize(payload.size() + 20, 0xAB);  // the echoed request's payload
  uint16_t flags = capped ? NLM_F_CAPPED : 0;
  if (!extack.empty()) flags |= NLM_F_ACK_TLVS;
  std::vector<uint8_t> m = Raw(NLMSG_ERROR, flags, payload.data(), payload.size());
  if (!extack.empty()) AppendTlv(&m, NLMSGERR_ATTR_MSG, extack);
  return m;
}

std::vector<uint8_t> Done(int error = 0, uint16_t flags = NLM_F_MULTI, const std::string& extack = {}) {
  std::vector<uint8_t> m = Raw(NLMSG_DONE, flags | (extack.empty() ? 0 : NLM_F_ACK_TLVS), &error, sizeof error);
  if (!extack.empty()) AppendTlv(&m, NLMSGERR_ATTR_MSG, extack);
  return m;
}

// A link as the kernel describes it (built with our own MessageBuilder; the kernel's layout is the same).
std::vector<uint8_t> Link(int index, const std::string& name, uint16_t flags = 0, const std::string& alias = {}) {
  MessageBuilder b(RTM_NEWLINK, flags);
  ifinfomsg ifi{};
  ifi.ifi_index = index;
  b.AppendHeader(&ifi, sizeof ifi);
  b.PutString(IFLA_IFNAME, name);
  b.PutU32(IFLA_MTU, 1500);
  if (!alias.empty()) b.PutString(IFLA_IFALIAS, alias);
  return b.Finish(0, 0);
}

std::vector<uint8_t> Cat(std::initializer_list<std::vector<uint8_t>> parts) {
  std::vector<uint8_t> out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

Step D(std::vector<uint8_t> bytes, Stamp stamp = Stamp::kMatch) {
  Step s;
  s.kind = Step::Kind::kDatagram;
  s.stamp = stamp;
  s.bytes = std::move(bytes);
  return s;
}
Step RecvErr(int err) {
  Step s;
  s.kind = Step::Kind::kRecvError;
  s.err = err;
  return s;
}
Step SendErr(int err) {
  Step s;
  s.kind = Step::Kind::kSendError;
  s.err = err;
  return s;
}
Step ShortSend() {
  Step s;
  s.kind = Step::Kind::kShortSend;
  return s;
}

struct Harness {
  ScriptTransport* t;
  std::unique_ptr<NetlinkSocket> sock;
};

Harness Make(std::deque<Step> steps) {
  auto owned = std::make_unique<ScriptTransport>(std::move(steps));
  Harness h{owned.get(), nullptr};
  h.sock = std::make_unique<NetlinkSocket>(std::move(owned));
  return h;
}

MessageBuilder NewLink() {
  MessageBuilder m(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
  ifinfomsg ifi{};
  m.AppendHeader(&ifi, sizeof ifi);
  m.PutString(IFLA_IFNAME, "mvt-f0");
  return m;
}
MessageBuilder GetLink() {
  MessageBuilder m(RTM_GETLINK, 0);
  ifinfomsg ifi{};
  m.AppendHeader(&ifi, sizeof ifi);
  return m;
}

// Runs `fn`, which must throw SysException; returns it for more checks.
SysError Throws(const std::function<void()>& fn, int err, const char* syscall) {
  try {
    fn();
  } catch (const SysException& e) {
    const SysError& got = e.error();
    EXPECT(got.err == err, "errno " + ErrnoName(got.err) + " (" + e.what() + "), expected " + ErrnoName(err));
    EXPECT(got.syscall == syscall, "syscall '" + got.syscall + "', expected '" + syscall + "'");
    return got;
  }
  throw Failure{"no error, expected " + ErrnoName(err)};
}

std::string NameOf(const std::vector<uint8_t>& msg) { return ParseLink(msg).name; }

// ---- the cases ----

struct Case {
  const char* name;
  std::function<void()> run;
};

std::vector<Case> Cases() {
  std::vector<Case> c;
  c.push_back({"ack: a plain ACK completes the request", [] {
    Harness h = Make({D(Err(0))});
    MessageBuilder m = NewLink();
    h.sock->Ack(m, "mvt-f0");
    EXPECT(h.t->left() == 0, "the ACK was not consumed");
  }});
  c.push_back({"ack with extack: errno, syscall, device and the kernel's text", [] {
    Harness h = Make({D(Err(-EEXIST, "Interface name already in use"))});
    MessageBuilder m = NewLink();
    SysError e = Throws([&] { h.sock->Ack(m, "mvt-f0"); }, EEXIST, "RTM_NEWLINK");
    EXPECT(e.extack == "Interface name already in use", "extack '" + e.extack + "'");
    EXPECT(e.device == "mvt-f0", "device '" + e.device + "'");
  }});
  c.push_back({"ack with extack after an uncapped request copy", [] {
    Harness h = Make({D(Err(-EOPNOTSUPP, "Unknown device type", false))});
    MessageBuilder m = NewLink();
    SysError e = Throws([&] { h.sock->Ack(m, "mvt-f0"); }, EOPNOTSUPP, "RTM_NEWLINK");
    EXPECT(e.extack == "Unknown device type", "extack '" + e.extack + "'");
  }});
  c.push_back({"truncated message: nlmsg_len beyond the datagram is EBADMSG", [] {
    std::vector<uint8_t> ack = Err(0);
    ack.resize(ack.size() - 8);  // the header still claims the full length
    Harness h = Make({D(ack)});
    MessageBuilder m = NewLink();
    Throws([&] { h.sock->Ack(m, "mvt-f0"); }, EBADMSG, "RTM_NEWLINK");
  }});
  c.push_back({"truncated NLMSG_ERROR (no error field) is EBADMSG, not an ACK", [] {
    std::vector<uint8_t> e = Raw(NLMSG_ERROR, 0, "\0\0", 2);
    Harness h = Make({D(e)});
    MessageBuilder m = NewLink();
    Throws([&] { h.sock->Ack(m, "mvt-f0"); }, EBADMSG, "RTM_NEWLINK");
  }});
  c.push_back({"a runt datagram (shorter than a header) is no answer: ETIMEDOUT", [] {
    Harness h = Make({D(std::vector<uint8_t>(10, 0))});
    MessageBuilder m = NewLink();
    Throws([&] { h.sock->Ack(m, "mvt-f0"); }, ETIMEDOUT, "RTM_NEWLINK");
  }});
  c.push_back({"NLMSG_ERROR with a positive or INT_MIN error field is EBADMSG", [] {
    for (int bad : {5, -5000, INT32_MIN}) {
      Harness h = Make({D(Err(bad))});
      MessageBuilder m = NewLink();
      Throws([&] { h.sock->Ack(m, "mvt-f0"); }, EBADMSG, "RTM_NEWLINK");
    }
  }});
  c.push_back({"wrong sequence number: a stale error is skipped, the real ACK answers", [] {
    Harness h = Make({D(Err(-EPERM), Stamp::kStale), D(Err(0))});
    MessageBuilder m = NewLink();
    h.sock->Ack(m, "mvt-f0");
  }});
  c.push_back({"wrong port id: another socket's error is skipped, the real ACK answers", [] {
    Harness h = Make({D(Cat({Err(-EPERM), Err(-EBUSY)}), Stamp::kForeign), D(Err(0))});
    MessageBuilder m = NewLink();
    h.sock->Ack(m, "mvt-f0");
  }});
  c.push_back({"only foreign and stale replies: ETIMEDOUT, never their answer", [] {
    Harness h = Make({D(Err(-EPERM), Stamp::kForeign), D(Err(-EBUSY), Stamp::kStale)});
    MessageBuilder m = NewLink();
    Throws([&] { h.sock->Ack(m, "mvt-f0"); }, ETIMEDOUT, "RTM_NEWLINK");
  }});
  c.push_back({"ENOBUFS on receive is ENOBUFS (replies were lost)", [] {
    Harness h = Make({RecvErr(ENOBUFS), D(Err(0))});
    MessageBuilder m = NewLink();
    Throws([&] { h.sock->Ack(m, "mvt-f0"); }, ENOBUFS, "RTM_NEWLINK");
  }});
  c.push_back({"EINTR from the transport is retried (receive and send)", [] {
    Harness h = Make({SendErr(EINTR), RecvErr(EINTR), RecvErr(EINTR), D(Err(0))});
    MessageBuilder m = NewLink();
    h.sock->Ack(m, "mvt-f0");
    EXPECT(h.t->left() == 0, "the ACK was not consumed");
  }});
  c.push_back({"EAGAIN (SO_RCVTIMEO expired) is ETIMEDOUT", [] {
    Harness h = Make({RecvErr(EAGAIN)});
    MessageBuilder m = GetLink();
    Throws([&] { h.sock->Get(m, "mvt-f0"); }, ETIMEDOUT, "RTM_GETLINK");
  }});
  c.push_back({"send errors: ENOBUFS, and a short send is EMSGSIZE", [] {
    Harness a = Make({SendErr(ENOBUFS)});
    MessageBuilder m = NewLink();
    Throws([&] { a.sock->Ack(m, "mvt-f0"); }, ENOBUFS, "RTM_NEWLINK");
    Harness b = Make({ShortSend()});
    MessageBuilder m2 = NewLink();
    Throws([&] { b.sock->Ack(m2, "mvt-f0"); }, EMSGSIZE, "RTM_NEWLINK");
  }});
  c.push_back({"echo: the echoed link is returned, a foreign one is not, the ACK ends it", [] {
    Harness h = Make({D(Link(9, "other"), Stamp::kForeign), D(Cat({Link(7, "mvt-f0"), Err(0)}))});
    MessageBuilder m = NewLink();
    auto echoed = h.sock->AckEcho(m, "mvt-f0");
    EXPECT(echoed.size() == 1 && NameOf(echoed[0]) == "mvt-f0", "echo");
  }});
  c.push_back({"get: a bare ACK before the answer does not end it; the answer does", [] {
    Harness h = Make({D(Err(0)), D(Link(7, "mvt-f0"))});
    MessageBuilder m = GetLink();
    EXPECT(NameOf(h.sock->Get(m, "mvt-f0")) == "mvt-f0", "answer");
  }});
  c.push_back({"MSG_TRUNC: a 40 KiB answer (buffer 32 KiB) is lost once, asked for again, and arrives whole", [] {
    std::string alias(40000, 'a');
    alias[39999] = 'z';
    std::vector<uint8_t> big = Link(7, "mvt-f0", 0, alias);
    EXPECT(big.size() > 32 * 1024, "the reply is not larger than the buffer");
    // The kernel answers each of the two requests; the first answer is cut by the 32 KiB read and dropped.
    Harness h = Make({D(big), D(big)});
    MessageBuilder m = GetLink();
    std::vector<uint8_t> got = h.sock->Get(m, "mvt-f0");
    EXPECT(h.t->sends() == 2, "sent " + std::to_string(h.t->sends()) + " times");
    EXPECT(got.size() == big.size(), "reply of " + std::to_string(got.size()) + " bytes");
    LinkInfo info = ParseLink(got);
    EXPECT(info.alias && *info.alias == alias, "alias damaged");
    // The buffer has grown: the same answer now arrives with one request.
    Harness h2 = Make({D(big), D(big), D(big)});
    MessageBuilder m2 = GetLink();
    h2.sock->Get(m2, "mvt-f0");
    EXPECT(h2.sock->Get(m2, "mvt-f0").size() == big.size() && h2.t->sends() == 3, "no growth kept");
  }});
  c.push_back({"MSG_TRUNC: an answer outgrowing the buffer on every attempt is EMSGSIZE after kGetAttempts", [] {
    std::deque<Step> steps;
    for (int i = 0; i < NetlinkSocket::kGetAttempts; ++i) {
      steps.push_back(D(Link(7, "mvt-f0", 0, std::string(static_cast<size_t>(40000 + 10000 * i), 'a'))));
    }
    Harness h = Make(std::move(steps));
    MessageBuilder m = GetLink();
    Throws([&] { h.sock->Get(m, "mvt-f0"); }, EMSGSIZE, "RTM_GETLINK");
    EXPECT(h.t->sends() == static_cast<size_t>(NetlinkSocket::kGetAttempts), "sent " + std::to_string(h.t->sends()) + " times");
  }});
  c.push_back({"a datagram over 16 MiB is EMSGSIZE, not an allocation of any size", [] {
    std::vector<uint8_t> huge(17 * 1024 * 1024, 0);
    Harness h = Make({D(huge, Stamp::kAsIs)});
    MessageBuilder m = GetLink();
    Throws([&] { h.sock->Get(m, "mvt-f0"); }, EMSGSIZE, "RTM_GETLINK");
  }});
  c.push_back({"dump: multipart over several datagrams, NOOP skipped, ends at DONE", [] {
    Harness h = Make({D(Cat({Link(1, "lo", NLM_F_MULTI), Link(2, "a", NLM_F_MULTI)})),
                      D(Cat({Raw(NLMSG_NOOP, 0, nullptr, 0), Link(3, "b", NLM_F_MULTI)})), D(Done())});
    MessageBuilder m = GetLink();
    auto all = h.sock->Dump(m);
    EXPECT(all.size() == 3 && NameOf(all[0]) == "lo" && NameOf(all[2]) == "b", "dump contents");
  }});
  c.push_back({"dump interrupted once (NLM_F_DUMP_INTR): restarted, the second answer is returned", [] {
    Harness h = Make({D(Cat({Link(1, "lo", NLM_F_MULTI | NLM_F_DUMP_INTR), Done(0, NLM_F_MULTI | NLM_F_DUMP_INTR)})),
                      D(Cat({Link(1, "lo", NLM_F_MULTI), Link(2, "new", NLM_F_MULTI), Done()}))});
    MessageBuilder m = GetLink();
    auto all = h.sock->Dump(m);
    EXPECT(h.t->sends() == 2, "dump sent " + std::to_string(h.t->sends()) + " times");
    EXPECT(all.size() == 2 && NameOf(all[1]) == "new", "the interrupted dump's data leaked into the answer");
  }});
  c.push_back({"dump interrupted every time: EAGAIN after kDumpRetries restarts", [] {
    std::deque<Step> steps;
    for (int i = 0; i <= NetlinkSocket::kDumpRetries; ++i) {
      steps.push_back(D(Cat({Link(1, "lo", NLM_F_MULTI | NLM_F_DUMP_INTR), Done(0, NLM_F_MULTI | NLM_F_DUMP_INTR)})));
    }
    steps.push_back(D(Cat({Link(1, "lo", NLM_F_MULTI), Done()})));  // never reached
    Harness h = Make(std::move(steps));
    MessageBuilder m = GetLink();
    Throws([&] { h.sock->Dump(m); }, EAGAIN, "RTM_GETLINK");
    EXPECT(h.t->sends() == NetlinkSocket::kDumpRetries + 1, "sent " + std::to_string(h.t->sends()) + " times");
  }});
  c.push_back({"an interrupted dump's stale tail does not pollute the restart", [] {
    // The kernel is still sending the first (interrupted) dump when the restart goes out: its rest has the old seq.
    Harness h = Make({D(Cat({Link(1, "lo", NLM_F_MULTI | NLM_F_DUMP_INTR), Done(0, NLM_F_MULTI)})),
                      D(Cat({Link(5, "stale", NLM_F_MULTI), Done()}), Stamp::kStale),
                      D(Cat({Link(1, "lo", NLM_F_MULTI), Done()}))});
    MessageBuilder m = GetLink();
    auto all = h.sock->Dump(m);
    EXPECT(all.size() == 1 && NameOf(all[0]) == "lo", "stale entries in the answer");
  }});
  c.push_back({"an NLMSG_ERROR inside a multipart reply fails the dump (no partial answer)", [] {
    Harness h = Make({D(Cat({Link(1, "lo", NLM_F_MULTI), Err(-EINVAL, "bad filter"), Link(2, "x", NLM_F_MULTI)})),
                      D(Done())});
    MessageBuilder m = GetLink();
    SysError e = Throws([&] { h.sock->Dump(m); }, EINVAL, "RTM_GETLINK");
    EXPECT(e.extack == "bad filter", "extack '" + e.extack + "'");
  }});
  c.push_back({"NLMSG_DONE carrying an error and extack fails the dump", [] {
    Harness h = Make({D(Cat({Link(1, "lo", NLM_F_MULTI), Done(-EMSGSIZE, NLM_F_MULTI, "dump too big")}))});
    MessageBuilder m = GetLink();
    SysError e = Throws([&] { h.sock->Dump(m); }, EMSGSIZE, "RTM_GETLINK");
    EXPECT(e.extack == "dump too big", "extack '" + e.extack + "'");
  }});
  c.push_back({"ENOBUFS in the middle of a dump fails it", [] {
    Harness h = Make({D(Link(1, "lo", NLM_F_MULTI)), RecvErr(ENOBUFS), D(Done())});
    MessageBuilder m = GetLink();
    Throws([&] { h.sock->Dump(m); }, ENOBUFS, "RTM_GETLINK");
  }});
  // One control table for every request (DecodeStatus): the same error message means the same thing to all three.
  c.push_back({"one decoding: an error with extack, or a malformed one, is the same error to ack, get and dump", [] {
    const char* ops[] = {"ack", "get", "dump"};
    for (int op = 0; op < 3; ++op) {
      for (bool malformed : {false, true}) {
        Harness h = Make({D(malformed ? Err(-5000) : Err(-EPERM, "not allowed"))});
        MessageBuilder m = op == 0 ? NewLink() : GetLink();
        SysError e = Throws([&] {
          if (op == 0) h.sock->Ack(m, "mvt-f0");
          else if (op == 1) h.sock->Get(m, "mvt-f0");
          else h.sock->Dump(m);
        }, malformed ? EBADMSG : EPERM, op == 0 ? "RTM_NEWLINK" : "RTM_GETLINK");
        EXPECT(malformed ? e.detail == "malformed NLMSG_ERROR" : e.extack == "not allowed",
               std::string(ops[op]) + ": detail '" + e.detail + "', extack '" + e.extack + "'");
      }
    }
  }});
  c.push_back({"NOOP and OVERRUN answer nothing: ack, get and dump skip them and take the real answer", [] {
    auto noise = [] { return Cat({Raw(NLMSG_NOOP, 0, nullptr, 0), Raw(NLMSG_OVERRUN, 0, nullptr, 0)}); };
    Harness a = Make({D(noise()), D(Err(0))});
    MessageBuilder m = NewLink();
    a.sock->Ack(m, "mvt-f0");
    EXPECT(a.t->left() == 0, "the ACK was not consumed");
    Harness g = Make({D(noise()), D(Link(7, "mvt-f0"))});
    MessageBuilder m2 = GetLink();
    EXPECT(NameOf(g.sock->Get(m2, "mvt-f0")) == "mvt-f0", "get answer");
    Harness d = Make({D(Cat({noise(), Link(1, "lo", NLM_F_MULTI), Done()}))});
    MessageBuilder m3 = GetLink();
    EXPECT(d.sock->Dump(m3).size() == 1, "dump answer");
  }});
  c.push_back({"a get answered by the end of a dump is EBADMSG, never an empty answer", [] {
    Harness h = Make({D(Done())});
    MessageBuilder m = GetLink();
    Throws([&] { h.sock->Get(m, "mvt-f0"); }, EBADMSG, "RTM_GETLINK");
  }});
  return c;
}

// ---- real sockets: EINTR from a signal, replies injected by another netlink socket ----

void OnSignal(int) {}

// A real NETLINK_ROUTE socket whose requests never reach the kernel: the test plays the kernel from a second socket
// (root may unicast to any port id), so the receive stays blocked until the test answers.
class UnsentTransport : public Transport {
 public:
  UnsentTransport() : real_(std::make_unique<SocketTransport>()) {}
  ssize_t Send(const uint8_t* data, size_t len) override {
    nlmsghdr h;
    memcpy(&h, data, sizeof h);
    seq_.store(h.nlmsg_seq);
    return static_cast<ssize_t>(len);
  }
  ssize_t Recv(uint8_t* buf, size_t len, int flags) override { return real_->Recv(buf, len, flags); }
  uint32_t PortId() const override { return real_->PortId(); }
  int Fd() const override { return real_->Fd(); }
  uint32_t seq() const { return seq_.load(); }

 private:
  std::unique_ptr<SocketTransport> real_;
  std::atomic<uint32_t> seq_{0};
};

void Inject(uint32_t port, std::vector<uint8_t> msg, uint32_t seq) {
  int fd = ::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (fd < 0) return;
  sockaddr_nl to{};
  to.nl_family = AF_NETLINK;
  to.nl_pid = port;
  nlmsghdr h;
  memcpy(&h, msg.data(), sizeof h);
  h.nlmsg_seq = seq;
  h.nlmsg_pid = port;
  memcpy(msg.data(), &h, sizeof h);
  if (sendto(fd, msg.data(), msg.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to) < 0) {
    fprintf(stderr, "inject: %s\n", strerror(errno));
  }
  close(fd);
}

std::vector<Case> RealCases() {
  std::vector<Case> c;
  c.push_back({"real socket: recv interrupted by signals (no SA_RESTART) is retried, the reply still arrives", [] {
    struct sigaction sa {};
    sa.sa_handler = OnSignal;  // no SA_RESTART: a blocked recv returns EINTR
    sigaction(SIGUSR1, &sa, nullptr);
    auto owned = std::make_unique<UnsentTransport>();
    UnsentTransport* t = owned.get();
    NetlinkSocket sock(std::move(owned));
    pthread_t waiter = pthread_self();
    std::atomic<int> signals{0};
    std::thread helper([&] {
      for (int i = 0; i < 200 && t->seq() == 0; ++i) usleep(5000);
      // A stale reply first (must be skipped), then signals while the recv blocks, then the answer.
      Inject(t->PortId(), Link(41, "stale"), t->seq() - 1);
      for (int i = 0; i < 3; ++i) {
        usleep(50 * 1000);
        if (pthread_kill(waiter, SIGUSR1) == 0) ++signals;
      }
      usleep(50 * 1000);
      Inject(t->PortId(), Link(42, "injected"), t->seq());
    });
    std::vector<uint8_t> got;
    try {
      MessageBuilder m = GetLink();
      got = sock.Get(m, "injected");
    } catch (...) {
      helper.join();
      throw;
    }
    helper.join();
    EXPECT(signals.load() == 3, "signals not delivered");
    EXPECT(NameOf(got) == "injected", "wrong answer");
  }});
  c.push_back({"real socket: an injected NLMSG_ERROR with extack becomes the request's error", [] {
    auto owned = std::make_unique<UnsentTransport>();
    UnsentTransport* t = owned.get();
    NetlinkSocket sock(std::move(owned));
    std::thread helper([&] {
      for (int i = 0; i < 200 && t->seq() == 0; ++i) usleep(5000);
      Inject(t->PortId(), Err(-EADDRINUSE, "MAC clash"), t->seq());
    });
    MessageBuilder m = NewLink();
    SysError e;
    try {
      e = Throws([&] { sock.Ack(m, "mvt-f0"); }, EADDRINUSE, "RTM_NEWLINK");
    } catch (...) {
      helper.join();
      throw;
    }
    helper.join();
    EXPECT(e.extack == "MAC clash", "extack '" + e.extack + "'");
  }});
  return c;
}

// ---- recorded replies (mvt-record's seeds): real kernel answers replayed through the same seam ----

std::vector<uint8_t> ReadFile(const std::string& path) {
  FILE* f = fopen(path.c_str(), "rb");
  if (f == nullptr) throw Failure{"cannot read " + path + ": " + strerror(errno)};
  std::vector<uint8_t> out;
  uint8_t buf[65536];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, f)) > 0) out.insert(out.end(), buf, buf + n);
  fclose(f);
  return out;
}

// A recorded exchange: the fuzz_netlink seed's steps (the op byte dropped).
std::deque<Step> Recorded(const std::string& dir, const std::string& name) {
  std::vector<uint8_t> seed = ReadFile(dir + "/corpus-fuzz_netlink/" + name);
  EXPECT(seed.size() > 1, name + " is empty");
  return fuzz::DecodeSteps(seed.data() + 1, seed.size() - 1);
}

const LinkInfo* Find(const std::vector<LinkInfo>& links, const std::string& name) {
  for (const LinkInfo& l : links) {
    if (l.name == name) return &l;
  }
  return nullptr;
}

std::vector<LinkInfo> ParseAll(const std::vector<std::vector<uint8_t>>& msgs) {
  std::vector<LinkInfo> out;
  for (const auto& m : msgs) out.push_back(ParseLink(m));
  return out;
}

// What run.mjs made with `ip` before recording (an independent tool): the decoded replies must say the same.
void CheckInitialDump(const std::vector<LinkInfo>& links) {
  for (const char* name : {"lo", "mvt-va", "mvt-vb", "mvt-tap0"}) {
    EXPECT(Find(links, name) != nullptr, std::string(name) + " missing from the recorded dump");
  }
  const LinkInfo* tap = Find(links, "mvt-tap0");
  EXPECT(tap->kind && *tap->kind == "macvtap" && tap->macvlan && tap->macvlan->mode == MACVLAN_MODE_BRIDGE,
         "mvt-tap0 is not a bridge-mode macvtap");
  const LinkInfo* va = Find(links, "mvt-va");
  EXPECT(tap->link && static_cast<int>(*tap->link) == va->ifindex, "mvt-tap0's lower is not mvt-va");
  EXPECT(va->kind && *va->kind == "veth", "mvt-va is not a veth");
}

std::vector<Case> RecordedCases(const std::string& dir) {
  std::vector<Case> c;
  c.push_back({"recorded dump: lo, the veth pair and the bridge-mode macvtap on mvt-va, as ip made them", [dir] {
    Harness h = Make(Recorded(dir, "dump-initial"));
    MessageBuilder m = GetLink();
    CheckInitialDump(ParseAll(h.sock->Dump(m)));
  }});
  c.push_back({"recorded dump replayed interrupted (NLM_F_DUMP_INTR) first: retried, the same answer", [dir] {
    std::deque<Step> clean = Recorded(dir, "dump-initial");
    std::deque<Step> steps;
    for (Step s : clean) {
      // Flag every message of the first pass as interrupted (the table changed under it).
      for (size_t off = 0; s.bytes.size() - off >= sizeof(nlmsghdr);) {
        nlmsghdr h;
        memcpy(&h, s.bytes.data() + off, sizeof h);
        h.nlmsg_flags |= NLM_F_DUMP_INTR;
        memcpy(s.bytes.data() + off, &h, sizeof h);
        if (h.nlmsg_len < sizeof(nlmsghdr) || h.nlmsg_len >= s.bytes.size() - off) break;
        off += NLMSG_ALIGN(h.nlmsg_len);
      }
      steps.push_back(std::move(s));
    }
    for (const Step& s : clean) steps.push_back(s);
    Harness h = Make(std::move(steps));
    MessageBuilder m = GetLink();
    CheckInitialDump(ParseAll(h.sock->Dump(m)));
    EXPECT(h.t->sends() == 2, "dump sent " + std::to_string(h.t->sends()) + " times");
  }});
  c.push_back({"recorded create with NLM_F_ECHO: the source-mode macvtap and its two source MACs", [dir] {
    Harness h = Make(Recorded(dir, "create-macvtap-source-echo"));
    MessageBuilder m = NewLink();
    std::vector<LinkInfo> echoed = ParseAll(h.sock->AckEcho(m, "mvt-src0"));
    const LinkInfo* l = Find(echoed, "mvt-src0");
    EXPECT(l != nullptr, "no echo of mvt-src0 (this kernel echoes creates since 6.3)");
    EXPECT(l->macvlan && l->macvlan->mode == MACVLAN_MODE_SOURCE, "not source mode");
    // The kernel lists them in its hash table's order, not in the order they were given.
    std::vector<std::string> macs = l->macvlan->macaddrs;
    std::sort(macs.begin(), macs.end());
    EXPECT(macs == std::vector<std::string>({"02:4d:56:54:00:01", "02:4d:56:54:00:02"}), "source MACs");
    EXPECT(l->macvlan->macaddr_count && *l->macvlan->macaddr_count == 2, "IFLA_MACVLAN_MACADDR_COUNT");
  }});
  c.push_back({"recorded get of a bridge port: slave kind bridge, learning and flood on", [dir] {
    Harness h = Make(Recorded(dir, "get-bridge-port"));
    MessageBuilder m = GetLink();
    LinkInfo l = ParseLink(h.sock->Get(m, "mvt-mv0"));
    EXPECT(l.name == "mvt-mv0" && l.master, "mvt-mv0 without a master");
    EXPECT(l.slave_kind && *l.slave_kind == "bridge" && l.bridge_port, "no bridge port data");
    EXPECT(l.bridge_port->learning && l.bridge_port->flood && !l.bridge_port->hairpin, "bridge port defaults");
  }});
  c.push_back({"recorded refusals: EOPNOTSUPP with the kernel's text, EEXIST, ENODEV", [dir] {
    Harness a = Make(Recorded(dir, "error-unknown-kind-extack"));
    MessageBuilder m1 = NewLink();
    SysError e = Throws([&] { a.sock->Ack(m1, "mvt-vl0"); }, EOPNOTSUPP, "RTM_NEWLINK");
    EXPECT(e.extack == "Unknown device type", "extack '" + e.extack + "'");
    Harness b = Make(Recorded(dir, "error-eexist-extack"));
    MessageBuilder m2 = NewLink();
    Throws([&] { b.sock->Ack(m2, "mvt-src0"); }, EEXIST, "RTM_NEWLINK");
    Harness g = Make(Recorded(dir, "get-missing"));
    MessageBuilder m3 = GetLink();
    Throws([&] { g.sock->Get(m3, "mvt-none"); }, ENODEV, "RTM_GETLINK");
  }});
  c.push_back({"recorded replies under the wrong sequence number are no answer: ETIMEDOUT", [dir] {
    std::deque<Step> steps = Recorded(dir, "get-macvtap");
    for (Step& s : steps) s.stamp = Stamp::kStale;
    Harness h = Make(std::move(steps));
    MessageBuilder m = GetLink();
    Throws([&] { h.sock->Get(m, "mvt-src0"); }, ETIMEDOUT, "RTM_GETLINK");
  }});
  return c;
}

// ---- runner: each case in a child, bounded in time ----

int RunCase(const Case& k) {
  fflush(stdout);
  pid_t pid = fork();
  if (pid < 0) {
    printf("not ok %s: fork: %s\n", k.name, strerror(errno));
    return 1;
  }
  if (pid == 0) {
    alarm(kCaseSeconds + 5);  // a second bound, should the parent die
    try {
      k.run();
    } catch (const Failure& f) {
      fprintf(stderr, "%s\n", f.why.c_str());
      _exit(3);
    } catch (const std::exception& e) {
      fprintf(stderr, "unexpected exception: %s\n", e.what());
      _exit(4);
    }
    _exit(0);
  }
  timespec start;
  clock_gettime(CLOCK_MONOTONIC, &start);
  int status = 0;
  for (;;) {
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) break;
    timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (now.tv_sec - start.tv_sec >= kCaseSeconds) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      printf("not ok %s: hung (killed after %d s)\n", k.name, kCaseSeconds);
      return 1;
    }
    usleep(2000);
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
    printf("ok %s\n", k.name);
    return 0;
  }
  if (WIFSIGNALED(status)) {
    printf("not ok %s: killed by signal %d (crash or sanitizer report above)\n", k.name, WTERMSIG(status));
  } else {
    printf("not ok %s: exit %d\n", k.name, WEXITSTATUS(status));
  }
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  std::string filter, recorded;
  for (int i = 1; i < argc; ++i) {
    if (std::string(argv[i]) == "--recorded" && i + 1 < argc) {
      recorded = argv[++i];
    } else {
      filter = argv[i];
    }
  }
  std::vector<Case> all = Cases();
  if (!recorded.empty()) {
    for (Case& k : RecordedCases(recorded)) all.push_back(std::move(k));
  } else {
    printf("# no recorded replies (--recorded DIR, made by mvt-record): crafted replies only\n");
  }
  if (geteuid() == 0) {
    for (Case& k : RealCases()) all.push_back(std::move(k));
  } else {
    printf("# skipping the real-socket cases: they need root\n");
  }
  int failed = 0, ran = 0;
  for (const Case& k : all) {
    if (!filter.empty() && std::string(k.name).find(filter) == std::string::npos) continue;
    ++ran;
    failed += RunCase(k);
  }
  printf("# %d cases, %d failed\n", ran, failed);
  return failed == 0 && ran > 0 ? 0 : 1;
}
