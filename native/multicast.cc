#include "multicast.h"

#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>

#include "args.h"
#include "async.h"
#include "errors.h"
#include "fd.h"

namespace macvtap {

namespace {

using Mac = std::array<uint8_t, 6>;

std::string MacText(const Mac& m) {
  char buf[18];
  snprintf(buf, sizeof buf, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
  return buf;
}

// /proc/net/dev_mcast lines: "ifindex name users global hex" (net/core/dev_addr_lists.c, dev_mc_seq_show).
std::vector<MulticastEntry> ReadList(const std::string& text, int ifindex) {
  std::vector<MulticastEntry> out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    std::string line = text.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
    pos = nl == std::string::npos ? text.size() : nl + 1;
    int index = 0, users = 0, global = 0;
    char name[IFNAMSIZ + 1] = {0};
    char hex[65] = {0};
    if (sscanf(line.c_str(), "%d %16s %d %d %64s", &index, name, &users, &global, hex) != 5) continue;
    if (index != ifindex || strlen(hex) != 12) continue;
    MulticastEntry e;
    bool ok = true;
    for (int i = 0; i < 6 && ok; ++i) {
      unsigned v = 0;
      ok = sscanf(hex + 2 * i, "%2x", &v) == 1;
      e.addr[i] = static_cast<uint8_t>(v);
    }
    if (!ok) continue;
    e.users = users;
    e.global = global != 0;
    out.push_back(e);
  }
  return out;
}

}  // namespace

MulticastSyncResult MulticastSync(const LinkKey& key, const std::optional<std::vector<Mac>>& wanted, const NetnsRef& ns) {
  // Both the ioctl socket and the proc file are bound to the namespace they were opened in: opened inside `ns`
  // (thread-self: /proc/self/net would be the main thread's namespace), used after leaving it.
  FileDescriptor sock;
  FileDescriptor proc;
  const char* kProc = "/proc/thread-self/net/dev_mcast";
  {
    NetnsGuard guard(ns);
    int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) ThrowSys(errno, "socket", {}, key.Describe());
    sock.reset(fd);
    int pf = ::open(kProc, O_RDONLY | O_CLOEXEC);
    if (pf < 0) ThrowSys(errno, "open", kProc, key.Describe());
    proc.reset(pf);
  }
  CheckThreadNetns();
  ifreq ifr = IfreqOf(sock.get(), key);
  MulticastSyncResult r;
  r.device.assign(ifr.ifr_name, strnlen(ifr.ifr_name, IFNAMSIZ));
  int ifindex = ifr.ifr_ifindex;

  auto read_all = [&]() {
    // A seq_file: read from the start each time (pread at offset 0 restarts it).
    std::string text;
    char buf[4096];
    off_t off = 0;
    for (;;) {
      ssize_t n = ::pread(proc.get(), buf, sizeof buf, off);
      if (n < 0) {
        if (errno == EINTR) continue;
        ThrowSys(errno, "read", kProc, r.device);
      }
      if (n == 0) break;
      text.append(buf, static_cast<size_t>(n));
      off += n;
    }
    return ReadList(text, ifindex);
  };

  if (wanted) {
    std::vector<MulticastEntry> now = read_all();
    auto has_global = [&](const Mac& m) {
      return std::any_of(now.begin(), now.end(), [&](const MulticastEntry& e) { return e.global && e.addr == m; });
    };
    auto is_wanted = [&](const Mac& m) { return std::find(wanted->begin(), wanted->end(), m) != wanted->end(); };
    auto change = [&](unsigned long req, const char* name, const Mac& m) {
      ifreq x{};
      memcpy(x.ifr_name, ifr.ifr_name, IFNAMSIZ);
      x.ifr_hwaddr.sa_family = AF_UNSPEC;
      memcpy(x.ifr_hwaddr.sa_data, m.data(), 6);
      if (::ioctl(sock.get(), req, &x) < 0) ThrowSys(errno, name, {}, r.device, MacText(m));
    };
    for (const MulticastEntry& e : now) {
      if (e.global && !is_wanted(e.addr)) {
        change(SIOCDELMULTI, "ioctl(SIOCDELMULTI)", e.addr);
        r.removed.push_back(e.addr);
      }
    }
    for (const Mac& m : *wanted) {
      if (has_global(m) || std::find(r.added.begin(), r.added.end(), m) != r.added.end()) continue;
      change(SIOCADDMULTI, "ioctl(SIOCADDMULTI)", m);
      r.added.push_back(m);
    }
  }
  r.entries = read_all();
  return r;
}

/**
 * linkMulticastSync(key, wanted: string[] | null, ns) → Promise<{ device, added, removed, entries }>. With `wanted`,
 * equivalent to `ip maddr add|del ADDR dev LINK` for each difference between the link's static entries and `wanted`;
 * with null it only reads the list (`ip maddr show dev LINK`). `entries` is the list afterwards: { address, users,
 * static }. errno contract: 'ioctl(SIOCGIFINDEX)'/'ioctl(SIOCGIFNAME)' ENODEV no such link; 'ioctl(SIOCADDMULTI)'
 * EINVAL not a multicast address (detail: the address), 'ioctl(SIOCDELMULTI)' ENOENT already gone; EPERM without
 * CAP_NET_ADMIN; 'open' (/proc/thread-self/net/dev_mcast), 'socket'/'setns' when the namespace is unusable.
 */
Napi::Value JsLinkMulticastSync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  LinkKey key = ReadLinkKey(info[0]);
  std::optional<std::vector<Mac>> wanted;
  if (!info[1].IsNull() && !info[1].IsUndefined()) {
    if (!info[1].IsArray()) ThrowTypeError(env, "The \"wanted\" argument must be an array of MAC strings or null");
    Napi::Array a = info[1].As<Napi::Array>();
    wanted.emplace();
    for (uint32_t i = 0; i < a.Length(); ++i) {
      std::vector<uint8_t> b = ParseMac(env, ReqString(a.Get(i), "wanted"), "wanted");
      Mac m{};
      std::copy(b.begin(), b.end(), m.begin());
      wanted->push_back(m);
    }
  }
  NetnsRef ns = ReadNetns(info[2], "ns");
  return PromiseWorker<MulticastSyncResult>::Start(
      env, "macvtap:linkMulticastSync", [key, wanted, ns]() { return MulticastSync(key, wanted, ns); },
      [](Napi::Env e, MulticastSyncResult& r) -> Napi::Value {
        auto list = [&](const std::vector<Mac>& v) {
          Napi::Array a = Napi::Array::New(e, v.size());
          for (size_t i = 0; i < v.size(); ++i) a.Set(static_cast<uint32_t>(i), MacText(v[i]));
          return a;
        };
        Napi::Object o = Napi::Object::New(e);
        o.Set("device", r.device);
        o.Set("added", list(r.added));
        o.Set("removed", list(r.removed));
        Napi::Array entries = Napi::Array::New(e, r.entries.size());
        for (size_t i = 0; i < r.entries.size(); ++i) {
          Napi::Object x = Napi::Object::New(e);
          x.Set("address", MacText(r.entries[i].addr));
          x.Set("users", r.entries[i].users);
          x.Set("static", r.entries[i].global);
          entries.Set(static_cast<uint32_t>(i), x);
        }
        o.Set("entries", entries);
        return o;
      });
}

}  // namespace macvtap
