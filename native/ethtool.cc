#include "ethtool.h"

#include <errno.h>
#include <linux/ethtool.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include "args.h"
#include "async.h"
#include "errors.h"

namespace macvtap {

void EthtoolSetOffloads(const LinkKey& key, const OffloadRequest& req, const NetnsRef& ns) {
  // SIOCETHTOOL acts in the socket's namespace: the socket is born inside `ns`, the ioctls run after leaving it.
  FileDescriptor sock;
  {
    NetnsGuard guard(ns);
    int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) ThrowSys(errno, "socket", {}, key.Describe());
    sock.reset(fd);
  }
  CheckThreadNetns();
  ifreq ifr = IfreqOf(sock.get(), key);
  std::string device(ifr.ifr_name, strnlen(ifr.ifr_name, IFNAMSIZ));
  // Order matters: the kernel drops TSO/SG when tx checksumming goes off, and refuses TSO without it, so checksum
  // and scatter-gather are set before the segmentation offloads that depend on them.
  struct Step {
    const std::optional<bool>& value;
    uint32_t cmd;
    const char* name;
  };
  const Step steps[] = {
      {req.tx, ETHTOOL_STXCSUM, "ETHTOOL_STXCSUM"}, {req.rx, ETHTOOL_SRXCSUM, "ETHTOOL_SRXCSUM"},
      {req.sg, ETHTOOL_SSG, "ETHTOOL_SSG"},         {req.tso, ETHTOOL_STSO, "ETHTOOL_STSO"},
      {req.gso, ETHTOOL_SGSO, "ETHTOOL_SGSO"},      {req.gro, ETHTOOL_SGRO, "ETHTOOL_SGRO"},
  };
  for (const Step& s : steps) {
    if (!s.value) continue;
    ethtool_value ev{};
    ev.cmd = s.cmd;
    ev.data = *s.value ? 1 : 0;
    ifr.ifr_data = reinterpret_cast<char*>(&ev);
    if (::ioctl(sock.get(), SIOCETHTOOL, &ifr) < 0) {
      ThrowSys(errno, "ioctl(SIOCETHTOOL)", {}, device, std::string(s.name) + (*s.value ? " on" : " off"));
    }
  }
}

/**
 * ethtoolSetOffloads(key, { tx?, rx?, sg?, tso?, gso?, gro? }, ns) → Promise<void>. Equivalent to
 * `ethtool -K DEV tx off rx off sg off tso off gso off gro off` (only the named ones).
 * errno contract: 'ioctl(SIOCGIFNAME)' ENODEV no such ifindex, 'ioctl(SIOCGIFINDEX)' ENODEV no such name;
 * 'ioctl(SIOCETHTOOL)' (device, detail = the command): EOPNOTSUPP the driver cannot change it, EINVAL a dependency refused (e.g. TSO without tx
 * checksumming), EPERM no CAP_NET_ADMIN; 'socket'/'setns'/'open' when the namespace is unusable.
 */
Napi::Value JsEthtoolSetOffloads(const Napi::CallbackInfo& info) {
  LinkKey key = ReadLinkKey(info[0]);
  Napi::Object o = ReqObject(info[1], "offloads");
  OffloadRequest req;
  req.tx = OptBool(o, "tx");
  req.rx = OptBool(o, "rx");
  req.sg = OptBool(o, "sg");
  req.tso = OptBool(o, "tso");
  req.gso = OptBool(o, "gso");
  req.gro = OptBool(o, "gro");
  NetnsRef ns = ReadNetns(info[2], "ns");
  return PromiseWorker<Nothing>::Start(
      info.Env(), "macvtap:ethtoolSetOffloads", [key, req, ns]() { EthtoolSetOffloads(key, req, ns); return Nothing{}; },
      [](Napi::Env e, Nothing&) -> Napi::Value { return e.Undefined(); });
}

}  // namespace macvtap
