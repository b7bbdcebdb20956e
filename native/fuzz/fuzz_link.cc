// libFuzzer target (c): the RTM_NEWLINK decoder (ParseLink → LinkInfo) over arbitrary bytes, incl. IFLA_LINKINFO
// with the macvlan/vlan IFLA_INFO_DATA, the source-MAC list and a bridge port's slave data. It throws only EBADMSG;
// what it decodes agrees with the fixed header and with what it claims (a macvlan block only for macvlan/macvtap, …).
#include <errno.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <string.h>

#include <string>
#include <vector>

#include "check.h"
#include "linkmsg.h"
#include "syserror.h"

namespace {

void CheckHwAddr(const std::string& s, size_t max_bytes, const char* what) {
  MVT_CHECK(s.size() % 3 == 2, "%s '%s'", what, s.c_str());
  MVT_CHECK((s.size() + 1) / 3 <= max_bytes, "%s of %zu bytes from %zu", what, (s.size() + 1) / 3, max_bytes);
  for (size_t i = 0; i < s.size(); ++i) {
    bool colon = i % 3 == 2;
    MVT_CHECK(colon ? s[i] == ':' : strchr("0123456789abcdef", s[i]) != nullptr && s[i] != '\0', "%s '%s'", what,
              s.c_str());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<uint8_t> msg(data, data + size);
  macvtap::LinkInfo info;
  try {
    info = macvtap::ParseLink(msg);
  } catch (const macvtap::SysException& e) {
    MVT_CHECK(e.error().err == EBADMSG, "ParseLink threw errno %d", e.error().err);
    return 0;
  }
  MVT_CHECK(size >= NLMSG_HDRLEN + sizeof(ifinfomsg), "a %zu-byte message decoded", size);
  nlmsghdr h;
  memcpy(&h, data, sizeof h);
  MVT_CHECK(h.nlmsg_type == RTM_NEWLINK, "type %u decoded as a link", h.nlmsg_type);
  ifinfomsg ifi;
  memcpy(&ifi, data + NLMSG_HDRLEN, sizeof ifi);
  MVT_CHECK(info.ifindex == ifi.ifi_index && info.flags == ifi.ifi_flags, "header fields changed");
  MVT_CHECK(info.name.size() <= size && info.name.find('\0') == std::string::npos, "name of %zu bytes",
            info.name.size());
  if (info.address) CheckHwAddr(*info.address, size, "address");
  if (info.broadcast) CheckHwAddr(*info.broadcast, size, "broadcast");
  if (info.macvlan) {
    MVT_CHECK(info.kind && (*info.kind == "macvlan" || *info.kind == "macvtap"), "macvlan data for another kind");
    MVT_CHECK(info.macvlan->macaddrs.size() * 10 <= size, "%zu source MACs from %zu bytes",
              info.macvlan->macaddrs.size(), size);
    for (const std::string& mac : info.macvlan->macaddrs) {
      MVT_CHECK(mac.size() == 17, "source MAC '%s'", mac.c_str());
      CheckHwAddr(mac, 6, "source MAC");
    }
    MVT_CHECK(info.macvlan->flags <= 0xFFFF, "macvlan flags %u from a u16", info.macvlan->flags);
  }
  if (info.vlan) MVT_CHECK(info.kind && *info.kind == "vlan", "vlan data for another kind");
  if (info.bridge_port) MVT_CHECK(info.slave_kind && *info.slave_kind == "bridge", "bridge port data without bridge");
  MVT_CHECK(!info.has_tap_dev && !info.link_name, "ParseLink filled what only the kernel's other views say");
  return 0;
}
