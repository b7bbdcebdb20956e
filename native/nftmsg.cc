#include "nftmsg.h"

#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>
#include <string.h>

#include "netlink.h"

namespace macvtap {

namespace {

/** Whether userdata (libnftnl's TLVs: type, length, value) holds a table comment (type 0) that is ours. */
bool OurComment(const Attr& userdata) {
  constexpr size_t kLen = sizeof kPortSecurityCommentPrefix - 1;
  size_t off = 0;
  while (userdata.len - off >= 2) {
    uint8_t type = userdata.data[off];
    uint8_t len = userdata.data[off + 1];
    if (len > userdata.len - off - 2) return false;
    if (type == 0) return len >= kLen && memcmp(userdata.data + off + 2, kPortSecurityCommentPrefix, kLen) == 0;
    off += 2 + static_cast<size_t>(len);
  }
  return false;
}

}  // namespace

bool ParseTableReply(const uint8_t* buf, size_t n, NftTableReply* out) {
  *out = NftTableReply{};
  constexpr size_t kHead = NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(nfgenmsg));
  if (n < kHead) return false;
  nlmsghdr h;
  memcpy(&h, buf, sizeof h);
  if (h.nlmsg_type != ((NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWTABLE)) return false;
  if (h.nlmsg_len < kHead || h.nlmsg_len > n) return false;
  AttrTable table(buf + kHead, h.nlmsg_len - kHead, NFTA_TABLE_MAX);
  const Attr& userdata = table[NFTA_TABLE_USERDATA];
  out->ours = userdata.present() && OurComment(userdata);
  const Attr& handle = table[NFTA_TABLE_HANDLE];
  if (handle.present() && handle.len == 8) out->handle.assign(reinterpret_cast<const char*>(handle.data), 8);
  return true;
}

}  // namespace macvtap
