// libFuzzer target (f): ParseTableReply, the nf_tables answer deleteLink reads before it deletes a port-security
// table (native/nftmsg.cc), over arbitrary bytes. Checks that it never reads outside the datagram (ASan), that what it
// reports is in the datagram (a handle is 8 of its bytes; "ours" means the comment prefix is in it) and that a result
// only comes from an NFT_MSG_NEWTABLE.
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>
#include <string.h>

#include <algorithm>
#include <vector>

#include "check.h"
#include "nftmsg.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // A copy of exactly `size` bytes, so reading one past the end is an ASan report.
  std::vector<uint8_t> buf(data, data + size);
  macvtap::NftTableReply r;
  bool ok = macvtap::ParseTableReply(buf.data(), buf.size(), &r);
  if (!ok) {
    MVT_CHECK(!r.ours && r.handle.empty(), "a refused datagram still reported something");
    return 0;
  }
  MVT_CHECK(size >= NLMSG_HDRLEN, "parsed %zu bytes as a message", size);
  nlmsghdr h;
  memcpy(&h, buf.data(), sizeof h);
  MVT_CHECK(h.nlmsg_type == ((NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWTABLE), "parsed message type %u", h.nlmsg_type);
  MVT_CHECK(h.nlmsg_len <= size, "message of %u bytes in a datagram of %zu", h.nlmsg_len, size);
  MVT_CHECK(r.handle.empty() || r.handle.size() == 8, "handle of %zu bytes", r.handle.size());
  if (!r.handle.empty()) {
    auto end = buf.begin() + h.nlmsg_len;
    const uint8_t* handle = reinterpret_cast<const uint8_t*>(r.handle.data());
    MVT_CHECK(std::search(buf.begin(), end, handle, handle + 8) != end, "handle not in the message");
  }
  if (r.ours) {
    const char* p = macvtap::kPortSecurityCommentPrefix;
    auto end = buf.begin() + h.nlmsg_len;
    MVT_CHECK(std::search(buf.begin(), end, p, p + strlen(p)) != end, "'ours' without the comment in the message");
  }
  return 0;
}
