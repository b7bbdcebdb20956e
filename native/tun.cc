#include "tun.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "args.h"
#include "async.h"
#include "errors.h"

namespace macvtap {

TunResult TunCreate(const std::string& name, bool vnet_hdr, const NetnsRef& ns) {
  TunResult r;
  {
    // tun_chr_open takes the opener's namespace: the device is born where the fd was opened, not where TUNSETIFF runs.
    NetnsGuard guard(ns);
    int fd;
    do fd = ::open("/dev/net/tun", O_RDWR | O_CLOEXEC);
    while (fd < 0 && errno == EINTR);
    if (fd < 0) ThrowSys(errno, "open", "/dev/net/tun", name);
    r.fds.Add(fd);
    ifreq ifr{};
    ifr.ifr_flags = static_cast<short>(IFF_TAP | IFF_NO_PI | (vnet_hdr ? IFF_VNET_HDR : 0));
    // A "%d" template is expanded by the kernel (dev_alloc_name), race-free.
    strncpy(ifr.ifr_name, name.c_str(), IFNAMSIZ - 1);
    if (::ioctl(fd, TUNSETIFF, &ifr) < 0) ThrowSys(errno, "ioctl(TUNSETIFF)", "/dev/net/tun", name);
    ifr.ifr_name[IFNAMSIZ - 1] = '\0';
    r.name = ifr.ifr_name;
    // if_nametoindex makes its socket in the thread's current namespace: still inside the guard here.
    unsigned index = if_nametoindex(r.name.c_str());
    if (index == 0) ThrowSys(errno, "if_nametoindex", {}, r.name);
    r.ifindex = static_cast<int>(index);
  }
  CheckThreadNetns();
  return r;
}

/**
 * tunCreate(name, { vnetHdr }, ns) → Promise<{ fd, name, ifindex }>. Equivalent to `ip tuntap add NAME mode tap`
 * without `persist` (plus opening it): the device lives as long as the fd. The fd is owned by the addon.
 * errno contract: 'open' (path /dev/net/tun) ENOENT/ENODEV no tun driver, EACCES/EPERM; 'ioctl(TUNSETIFF)' EBUSY /
 * EEXIST the name belongs to another device, EPERM no CAP_NET_ADMIN, EINVAL bad name; 'setns'/'open' with path when
 * the namespace is unusable.
 */
Napi::Value JsTunCreate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name = ReqString(info[0], "name");
  // Stays native although lib/ checks names too: the name is copied into the 16-byte ifr_name, and a longer one
  // (or one with a NUL) would be cut there, making a device under a name nobody asked for.
  if (name.empty() || name.size() >= IFNAMSIZ || name.find('\0') != std::string::npos) {
    ThrowTypeError(env, "The \"name\" argument must be 1-15 bytes");
  }
  Napi::Object o = ReqObject(info[1], "opts");
  bool vnet_hdr = ReqBool(o.Get("vnetHdr"), "vnetHdr");
  NetnsRef ns = ReadNetns(info[2], "ns");
  std::shared_ptr<Ownership> owner = Ownership::Of(env);
  return PromiseWorker<TunResult>::Start(
      env, "macvtap:tunCreate", [name, vnet_hdr, ns]() { return TunCreate(name, vnet_hdr, ns); },
      [owner](Napi::Env e, TunResult& r) -> Napi::Value {
        Napi::Object o = Napi::Object::New(e);
        std::vector<int> fds = r.fds.Claim(*owner);
        o.Set("fd", fds.at(0));
        o.Set("name", r.name);
        o.Set("ifindex", r.ifindex);
        return o;
      });
}

}  // namespace macvtap
