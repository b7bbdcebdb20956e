// The macvtap char device numbers, read from sysfs as seen from the link's own network namespace.
// The process's /sys shows only the namespace that mounted it (the init namespace here), and /dev/tapN names are
// global while ifindexes are per namespace (two namespaces can both have a tap4 whose /dev/tap4 is only one of them),
// so this mounts a private sysfs for the target namespace when it is not the init one.
#pragma once

#include <string>
#include <vector>

#include "errors.h"
#include "netns.h"

namespace macvtap {

/** One macvtap to look up: `/sys/class/net/<name>/macvtap/tap<ifindex>/dev`. */
struct TapDevQuery {
  std::string name;
  int ifindex = 0;
  bool found = false;
  unsigned major = 0;
  unsigned minor = 0;
};

/**
 * Fills `found/major/minor` for every query with one sysfs view of `ns` (one mount for any number of links).
 * A query whose file is missing (the link went away) stays `found = false`. Returns a SysError with err != 0 when
 * sysfs for the namespace could not be obtained at all (e.g. EPERM without CAP_SYS_ADMIN). `known`: the namespace's
 * identity when the caller has just stat'ed it (a netlink lease), so it is not stat'ed again.
 */
SysError ReadTapDevs(const NetnsRef& ns, std::vector<TapDevQuery>& queries, const NetnsId* known = nullptr);

/**
 * Whether the link `name` of `ns` is a wireless (802.11) device: `/sys/class/net/<name>/wireless` or `…/phy80211`
 * exists in the namespace's own sysfs view (mounted privately as for ReadTapDevs). A link not found there reads as not
 * wireless. err != 0 when no sysfs view of `ns` could be obtained.
 */
SysError LowerIsWireless(const NetnsRef& ns, const std::string& name, bool* wireless);

}  // namespace macvtap
