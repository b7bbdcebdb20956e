// Seed recorder: real kernel replies and real frames, written as seed corpora for the fuzz targets. Run by
// native/fuzz/run.mjs as root inside a throwaway namespace mvt-fuzz-* (`ip netns exec`, which also mounts that
// namespace's sysfs) where the script made a veth pair mvt-va/mvt-vb (10.77.0.1 on mvt-vb) and a bridge-mode
// macvtap mvt-tap0 on mvt-va (up, MAC in argv). It
//   - sends rtnetlink requests through NetlinkSocket over a recording SocketTransport: dumps, gets, creates with
//     NLM_F_ECHO (a source-mode macvtap with a MAC list, a macvlan, a bridge), refused creates with extended acks,
//     a missing link, deletes — every exchange becomes a fuzz_netlink seed, every message a fuzz_attrs seed, every
//     RTM_NEWLINK a fuzz_link seed;
//   - records RTNLGRP_LINK notifications and a dump on a watcher-style socket as fuzz_events seeds;
//   - opens the macvtap's /dev/tapN through a private node (the device number from sysfs, never a guessed path),
//     answers ARP and echoes UDP with frame::GuestStep, and records the frames read from the tap (with their vnet
//     header) and those seen on mvt-vb by an AF_PACKET socket as fuzz_frame seeds.
// Usage: mvt-record OUTDIR TAP_MAC   (OUTDIR gets corpus-fuzz_<target>/ directories)
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_ether.h>
#include <linux/if_link.h>
#include <linux/if_packet.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "frame.h"
#include "netlink.h"
#include "script.h"
#include "nftmsg.h"
#include "tcmsg.h"
#include "syserror.h"

using namespace macvtap;

namespace {

std::string g_out;
int g_seeds = 0;

void Die(const std::string& what) {
  fprintf(stderr, "mvt-record: %s: %s\n", what.c_str(), strerror(errno));
  exit(1);
}

void WriteSeed(const std::string& target, const std::string& name, const std::vector<uint8_t>& bytes) {
  std::string dir = g_out + "/corpus-fuzz_" + target;
  mkdir(dir.c_str(), 0755);
  std::string path = dir + "/" + name;
  FILE* f = fopen(path.c_str(), "wb");
  if (f == nullptr) Die("fopen " + path);
  fwrite(bytes.data(), 1, bytes.size(), f);
  fclose(f);
  ++g_seeds;
}

/** Every datagram the kernel sent since the last Take(), as received (MSG_PEEK reads are not counted twice). */
class RecordingTransport : public Transport {
 public:
  RecordingTransport() : real_(std::make_unique<SocketTransport>()) {}
  ssize_t Send(const uint8_t* data, size_t len) override { return real_->Send(data, len); }
  ssize_t Recv(uint8_t* buf, size_t len, int flags) override {
    ssize_t n = real_->Recv(buf, len, flags);
    if (n > 0 && !(flags & MSG_PEEK)) got_.emplace_back(buf, buf + n);
    return n;
  }
  uint32_t PortId() const override { return real_->PortId(); }
  int Fd() const override { return real_->Fd(); }
  std::vector<std::vector<uint8_t>> Take() { return std::move(got_); }

 private:
  std::unique_ptr<SocketTransport> real_;
  std::vector<std::vector<uint8_t>> got_;
};

void SeedMessages(const std::string& name, const std::vector<std::vector<uint8_t>>& dgrams) {
  int i = 0;
  for (const auto& d : dgrams) {
    size_t off = 0;
    while (d.size() - off >= sizeof(nlmsghdr)) {
      nlmsghdr h;
      memcpy(&h, d.data() + off, sizeof h);
      if (h.nlmsg_len < sizeof(nlmsghdr) || h.nlmsg_len > d.size() - off) break;
      std::vector<uint8_t> msg(d.begin() + off, d.begin() + off + h.nlmsg_len);
      std::string n = name + "-" + std::to_string(i++);
      WriteSeed("attrs", n, msg);
      if (h.nlmsg_type == RTM_NEWLINK) WriteSeed("link", n, msg);
      off += NLMSG_ALIGN(h.nlmsg_len);
    }
  }
}

/** Runs one request, then records its exchange: a fuzz_netlink seed (op byte + datagrams) and its messages. */
void Exchange(RecordingTransport* t, const std::string& name, int op, const std::function<void()>& request) {
  try {
    request();
  } catch (const SysException& e) {
    printf("  %s: %s (recorded)\n", name.c_str(), e.what());
  }
  std::vector<std::vector<uint8_t>> dgrams = t->Take();
  std::vector<uint8_t> seed{static_cast<uint8_t>(op)};
  for (const auto& d : dgrams) fuzz::EncodeDatagram(&seed, fuzz::Stamp::kMatch, d.data(), d.size());
  WriteSeed("netlink", name, seed);
  SeedMessages(name, dgrams);
}

MessageBuilder LinkRequest(uint16_t type, uint16_t flags, const std::string& name) {
  MessageBuilder m(type, flags);
  ifinfomsg ifi{};
  m.AppendHeader(&ifi, sizeof ifi);
  if (!name.empty()) m.PutString(IFLA_IFNAME, name);
  return m;
}

MessageBuilder Create(const std::string& kind, const std::string& name, int lower,
                      const std::function<void(MessageBuilder&)>& data = {}) {
  MessageBuilder m = LinkRequest(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, name);
  if (lower > 0) m.PutU32(IFLA_LINK, static_cast<uint32_t>(lower));
  size_t li = m.BeginNest(IFLA_LINKINFO);
  m.PutString(IFLA_INFO_KIND, kind);
  if (data) {
    size_t d = m.BeginNest(IFLA_INFO_DATA);
    data(m);
    m.EndNest(d);
  }
  m.EndNest(li);
  return m;
}

void RecordNetlink() {
  auto owned = std::make_unique<RecordingTransport>();
  RecordingTransport* t = owned.get();
  NetlinkSocket sock(std::move(owned));
  int va = static_cast<int>(if_nametoindex("mvt-va"));
  if (va == 0) Die("if_nametoindex mvt-va");
  Exchange(t, "dump-initial", 3, [&] {
    MessageBuilder m = LinkRequest(RTM_GETLINK, 0, "");
    m.PutU32(IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
    sock.Dump(m);
  });
  Exchange(t, "create-macvtap-source-echo", 1, [&] {
    MessageBuilder m = Create("macvtap", "mvt-src0", va, [](MessageBuilder& b) {
      b.PutU32(IFLA_MACVLAN_MODE, MACVLAN_MODE_SOURCE);
      b.PutU32(IFLA_MACVLAN_MACADDR_MODE, MACVLAN_MACADDR_SET);
      size_t list = b.BeginNest(IFLA_MACVLAN_MACADDR_DATA);
      const uint8_t a[6] = {0x02, 0x4d, 0x56, 0x54, 0x00, 0x01}, c[6] = {0x02, 0x4d, 0x56, 0x54, 0x00, 0x02};
      b.Put(IFLA_MACVLAN_MACADDR, a, 6);
      b.Put(IFLA_MACVLAN_MACADDR, c, 6);
      b.EndNest(list);
    });
    sock.AckEcho(m, "mvt-src0");
  });
  Exchange(t, "create-macvlan-echo", 1, [&] {
    MessageBuilder m = Create("macvlan", "mvt-mv0", va, [](MessageBuilder& b) {
      b.PutU32(IFLA_MACVLAN_MODE, MACVLAN_MODE_BRIDGE);
      b.PutU16(IFLA_MACVLAN_FLAGS, 0);
    });
    sock.AckEcho(m, "mvt-mv0");
  });
  Exchange(t, "create-bridge", 0, [&] {
    MessageBuilder m = Create("bridge", "mvt-br0", 0);
    sock.Ack(m, "mvt-br0");
  });
  Exchange(t, "enslave", 0, [&] {
    MessageBuilder m = LinkRequest(RTM_NEWLINK, 0, "mvt-mv0");
    m.PutU32(IFLA_MASTER, if_nametoindex("mvt-br0"));
    sock.Ack(m, "mvt-mv0");
  });
  Exchange(t, "error-eexist-extack", 0, [&] {
    MessageBuilder m = Create("macvtap", "mvt-src0", va);
    sock.Ack(m, "mvt-src0");
  });
  Exchange(t, "error-unknown-kind-extack", 0, [&] {
    MessageBuilder m = Create("vlan", "mvt-vl0", va, [](MessageBuilder& b) { b.PutU16(IFLA_VLAN_ID, 5); });
    sock.Ack(m, "mvt-vl0");
  });
  Exchange(t, "error-no-lower", 0, [&] {
    MessageBuilder m = Create("macvtap", "mvt-x0", 0x7ffffff0);
    sock.Ack(m, "mvt-x0");
  });
  Exchange(t, "get-macvtap", 2, [&] {
    MessageBuilder m = LinkRequest(RTM_GETLINK, 0, "mvt-src0");
    m.PutU32(IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
    sock.Get(m, "mvt-src0");
  });
  Exchange(t, "get-bridge-port", 2, [&] {
    MessageBuilder m = LinkRequest(RTM_GETLINK, 0, "mvt-mv0");
    m.PutU32(IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
    sock.Get(m, "mvt-mv0");
  });
  Exchange(t, "get-missing", 2, [&] {
    MessageBuilder m = LinkRequest(RTM_GETLINK, 0, "mvt-none");
    sock.Get(m, "mvt-none");
  });
  Exchange(t, "dump-full", 3, [&] {
    MessageBuilder m = LinkRequest(RTM_GETLINK, 0, "");
    m.PutU32(IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
    sock.Dump(m);
  });
  for (const char* name : {"mvt-mv0", "mvt-src0", "mvt-br0"}) {
    Exchange(t, std::string("delete-") + name, 0, [&] {
      MessageBuilder m = LinkRequest(RTM_DELLINK, 0, name);
      sock.Ack(m, name);
    });
  }
}

// ---- events ----

int OpenWatcher() {
  int fd = ::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_ROUTE);
  if (fd < 0) Die("socket");
  sockaddr_nl addr{};
  addr.nl_family = AF_NETLINK;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0) Die("bind");
  int group = RTNLGRP_LINK;
  if (setsockopt(fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &group, sizeof group) < 0) Die("NETLINK_ADD_MEMBERSHIP");
  return fd;
}

void AppendEventDatagram(std::vector<uint8_t>* seed, uint8_t stamp, const std::vector<uint8_t>& d) {
  size_t len = d.size() > 0xFFFF ? 0xFFFF : d.size();
  seed->push_back(2);
  seed->push_back(stamp);
  seed->push_back(static_cast<uint8_t>(len & 0xFF));
  seed->push_back(static_cast<uint8_t>(len >> 8));
  seed->insert(seed->end(), d.begin(), d.begin() + len);
}

std::vector<std::vector<uint8_t>> Drain(int fd) {
  std::vector<std::vector<uint8_t>> out;
  std::vector<uint8_t> buf(64 * 1024);
  for (int i = 0; i < 10000; ++i) {
    ssize_t n = recv(fd, buf.data(), buf.size(), MSG_DONTWAIT);
    if (n <= 0) break;
    out.emplace_back(buf.begin(), buf.begin() + n);
  }
  return out;
}

void RecordEvents(int fd) {
  // Notifications collected while RecordNetlink created, changed and deleted links: one seed each, one with all.
  std::vector<std::vector<uint8_t>> notes = Drain(fd);
  std::vector<uint8_t> all;
  for (size_t i = 0; i < notes.size(); ++i) {
    std::vector<uint8_t> one;
    AppendEventDatagram(&one, 3, notes[i]);
    WriteSeed("events", "notification-" + std::to_string(i), one);
    AppendEventDatagram(&all, 3, notes[i]);
  }
  WriteSeed("events", "notifications", all);
  // A dump on the watcher socket, as events.cc asks for it: the decoder's first dump has sequence number 1.
  MessageBuilder m(RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP);
  ifinfomsg ifi{};
  m.AppendHeader(&ifi, sizeof ifi);
  sockaddr_nl self{};
  socklen_t alen = sizeof self;
  getsockname(fd, reinterpret_cast<sockaddr*>(&self), &alen);
  const std::vector<uint8_t>& req = m.Finish(1, self.nl_pid);
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  if (sendto(fd, req.data(), req.size(), 0, reinterpret_cast<sockaddr*>(&kernel), sizeof kernel) < 0) Die("sendto");
  usleep(100 * 1000);
  std::vector<uint8_t> dump{0};  // RequestDump: sent at once
  for (const auto& d : Drain(fd)) AppendEventDatagram(&dump, 1, d);
  WriteSeed("events", "dump", dump);
}

// ---- frames ----

int OpenTap(const std::string& name, std::string* node_dir) {
  std::string idx = std::to_string(if_nametoindex(name.c_str()));
  std::string devfile = "/sys/class/net/" + name + "/macvtap/tap" + idx + "/dev";
  FILE* f = fopen(devfile.c_str(), "r");
  if (f == nullptr) Die("open " + devfile);
  unsigned maj = 0, min = 0;
  if (fscanf(f, "%u:%u", &maj, &min) != 2) Die("parse " + devfile);
  fclose(f);
  // A private node: /dev/tapN is named by the per-namespace ifindex and may be another namespace's device.
  char tmpl[] = "/tmp/mvt-fuzz-node-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) Die("mkdtemp");
  *node_dir = tmpl;
  std::string node = *node_dir + "/tap";
  int fd = -1;
  if (mknod(node.c_str(), S_IFCHR | 0600, makedev(maj, min)) == 0) {
    fd = open(node.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC);
  }
  int err = errno;
  // The open fd keeps the device; the node and its directory go at once, also when the open failed.
  unlink(node.c_str());
  rmdir(node_dir->c_str());
  errno = err;
  if (fd < 0) Die("mknod/open " + node);
  return fd;
}

bool ParseMac(const char* text, uint8_t mac[6]) {
  unsigned v[6];
  if (sscanf(text, "%x:%x:%x:%x:%x:%x", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5]) != 6) return false;
  for (int i = 0; i < 6; ++i) mac[i] = static_cast<uint8_t>(v[i]);
  return true;
}

void RecordFrames(const uint8_t mac[6]) {
  std::string dir;
  int tap = OpenTap("mvt-tap0", &dir);
  int pkt = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, htons(ETH_P_ALL));
  if (pkt < 0) Die("AF_PACKET");
  sockaddr_ll ll{};
  ll.sll_family = AF_PACKET;
  ll.sll_protocol = htons(ETH_P_ALL);
  ll.sll_ifindex = static_cast<int>(if_nametoindex("mvt-vb"));
  if (bind(pkt, reinterpret_cast<sockaddr*>(&ll), sizeof ll) < 0) Die("bind AF_PACKET");
  int udp = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(7);
  inet_pton(AF_INET, "10.77.0.2", &to.sin_addr);

  frame::GuestIdentity id;
  memcpy(id.mac, mac, 6);
  inet_pton(AF_INET, "10.77.0.2", &id.ip);
  id.echo = true;
  id.vnet_hdr = 10;  // /dev/tapN opens with IFF_VNET_HDR and a 10-byte header
  std::vector<uint8_t> buf(65536 + 64);
  uint8_t reply[128];
  int tap_frames = 0, veth_frames = 0;
  const size_t sizes[] = {0, 18, 64, 700, 1400};
  timespec start;
  clock_gettime(CLOCK_MONOTONIC, &start);
  for (int round = 0; round < 40; ++round) {
    const size_t payload = sizes[round % 5];
    std::vector<uint8_t> data(payload, static_cast<uint8_t>('a' + round % 26));
    sendto(udp, data.data(), data.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to);
    pollfd p[2] = {{tap, POLLIN, 0}, {pkt, POLLIN, 0}};
    poll(p, 2, 50);
    for (;;) {
      ssize_t n = read(tap, buf.data(), buf.size());
      if (n <= 0) break;
      if (tap_frames < 40) {
        std::vector<uint8_t> seed{1 | 4 | 32};  // vnet header 10, echo, be the frame's guest
        seed.insert(seed.end(), buf.begin(), buf.begin() + n);
        WriteSeed("frame", "tap-" + std::to_string(tap_frames++), seed);
      }
      frame::GuestVerdict v = frame::GuestStep(buf.data(), static_cast<size_t>(n), id, reply, sizeof reply);
      if (v.action == frame::GuestAction::kArpReply && write(tap, reply, v.reply_len) < 0) Die("write ARP reply");
      if (v.action == frame::GuestAction::kEcho && write(tap, buf.data(), static_cast<size_t>(n)) < 0) Die("write");
    }
    for (;;) {
      ssize_t n = recv(pkt, buf.data(), buf.size(), 0);
      if (n <= 0) break;
      if (veth_frames < 40) {
        std::vector<uint8_t> seed{4 | 32};  // no vnet header, echo, be the frame's guest
        seed.insert(seed.end(), buf.begin(), buf.begin() + n);
        WriteSeed("frame", "veth-" + std::to_string(veth_frames++), seed);
      }
    }
    timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (now.tv_sec - start.tv_sec > 10) break;
  }
  close(udp);
  close(pkt);
  close(tap);
  printf("  frames: %d from the tap, %d on the veth\n", tap_frames, veth_frames);
  if (tap_frames == 0 || veth_frames == 0) {
    fprintf(stderr, "mvt-record: no frames captured\n");
    exit(1);
  }
}

}  // namespace

/**
 * fuzz_nftmsg: the kernel's answers to NFT_MSG_GETTABLE for the tables run.mjs made with nft before this program ran
 * (mvtps-mvt-tap0 with our comment, mvtps-foreign without) and for one that does not exist (an NLMSG_ERROR).
 */
void RecordNftTables() {
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
  if (fd < 0) Die("socket(NETLINK_NETFILTER)");
  const char* names[] = {"mvtps-mvt-tap0", "mvtps-foreign", "mvtps-absent"};
  uint32_t seq = 1;
  for (const char* name : names) {
    std::vector<uint8_t> req(NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(nfgenmsg)) + NLA_ALIGN(NLA_HDRLEN + strlen(name) + 1));
    nlmsghdr h{};
    h.nlmsg_len = static_cast<uint32_t>(req.size());
    h.nlmsg_type = (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETTABLE;
    h.nlmsg_flags = NLM_F_REQUEST;
    h.nlmsg_seq = seq++;
    memcpy(req.data(), &h, sizeof h);
    nfgenmsg g{};
    g.nfgen_family = kNfprotoNetdev;
    g.version = NFNETLINK_V0;
    memcpy(req.data() + NLMSG_HDRLEN, &g, sizeof g);
    nlattr a{};
    a.nla_type = NFTA_TABLE_NAME;
    a.nla_len = static_cast<uint16_t>(NLA_HDRLEN + strlen(name) + 1);
    memcpy(req.data() + NLMSG_HDRLEN + NLMSG_ALIGN(sizeof g), &a, sizeof a);
    memcpy(req.data() + NLMSG_HDRLEN + NLMSG_ALIGN(sizeof g) + NLA_HDRLEN, name, strlen(name) + 1);
    sockaddr_nl kernel{};
    kernel.nl_family = AF_NETLINK;
    if (sendto(fd, req.data(), req.size(), 0, reinterpret_cast<sockaddr*>(&kernel), sizeof kernel) < 0) Die("sendto");
    std::vector<uint8_t> buf(8192);
    ssize_t n = recv(fd, buf.data(), buf.size(), 0);
    if (n < 0) Die("recv");
    buf.resize(static_cast<size_t>(n));
    WriteSeed("nftmsg", std::string("gettable-") + name, buf);
  }
  close(fd);
}

/**
 * fuzz_tcmsg: what setBandwidth sends (an RTM_NEWQDISC/RTM_NEWTCLASS/RTM_NEWTFILTER is laid out as the kernel's dump
 * answer is: tcmsg, TCA_KIND, TCA_OPTIONS), with 32- and 64-bit rates and a peak, and the kernel's real answer to a
 * qdisc dump of this namespace (on kernels with traffic control).
 */
void RecordTc() {
  auto seed = [](const std::string& name, MessageBuilder& m) {
    const std::vector<uint8_t>& bytes = m.Finish(1, 0);
    WriteSeed("tcmsg", name, bytes);
  };
  MessageBuilder q(RTM_NEWQDISC, 0);
  BuildHtbQdisc(q, 7, 0x6d76, 1);
  seed("htb-qdisc", q);
  MessageBuilder in(RTM_NEWQDISC, 0);
  BuildIngressQdisc(in, 7);
  seed("ingress-qdisc", in);
  MessageBuilder c(RTM_NEWTCLASS, 0);
  BuildHtbClass(c, 7, 0x6d760000, 0x6d760001, HtbClassRequest{{1000000, 65536}, {4000000, 3028}});
  seed("htb-class", c);
  MessageBuilder c64(RTM_NEWTCLASS, 0);
  BuildHtbClass(c64, 7, 0x6d760000, 0x6d760001, HtbClassRequest{{4294967295000ull, 1 << 30}, {4294967295000ull, 1 << 30}});
  seed("htb-class-64", c64);
  MessageBuilder f(RTM_NEWTFILTER, 0);
  BuildPoliceFilter(f, 7, kTcIngressHandle, 0x6d76, 0x6d76, PoliceRequest{{1000000, 32768}, 0, 65535});
  seed("police", f);
  MessageBuilder fp(RTM_NEWTFILTER, 0);
  BuildPoliceFilter(fp, 7, kTcIngressHandle, 0x6d77, 0x6d76, PoliceRequest{{5000000000ull, 1 << 20}, 8000000000ull, 65535});
  seed("police-peak-64", fp);
  try {
    NetlinkSocket sock(std::make_unique<SocketTransport>());
    MessageBuilder d(RTM_GETQDISC, 0);
    tcmsg t{};
    d.AppendHeader(&t, sizeof t);
    int i = 0;
    for (const auto& msg : sock.Dump(d)) WriteSeed("tcmsg", "dump-qdisc-" + std::to_string(i++), msg);
  } catch (const SysException& e) {
    printf("  qdisc dump: %s (no traffic control: builder seeds only)\n", e.what());
  }
}

int main(int argc, char** argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: mvt-record OUTDIR TAP_MAC (as root, inside a mvt-fuzz-* namespace)\n");
    return 2;
  }
  g_out = argv[1];
  uint8_t mac[6];
  if (!ParseMac(argv[2], mac)) {
    fprintf(stderr, "mvt-record: bad MAC '%s'\n", argv[2]);
    return 2;
  }
  mkdir(g_out.c_str(), 0755);
  int watcher = OpenWatcher();
  RecordNetlink();
  RecordEvents(watcher);
  close(watcher);
  RecordFrames(mac);
  RecordNftTables();
  RecordTc();
  printf("mvt-record: %d seeds in %s\n", g_seeds, g_out.c_str());
  return 0;
}
