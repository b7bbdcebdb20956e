// The one nf_tables message this package parses itself: the kernel's answer to NFT_MSG_GETTABLE, read by deleteLink
// to find out whether the port-security table of the link it deleted is ours (see nft.cc). Pure C++ (no N-API), so
// the fuzz target native/fuzz/fuzz_nftmsg.cc runs it on arbitrary bytes.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <string>

namespace macvtap {

/** NFPROTO_NETDEV (linux/netfilter.h, whose linux/in.h clashes with netinet/in.h in programs that include both). */
constexpr uint8_t kNfprotoNetdev = 5;

/** The comment every port-security table carries (lib/portsec/ruleset.ts), up to its ifindex. */
constexpr char kPortSecurityCommentPrefix[] = "macvtap-ps ifindex=";

/** What {@link ParseTableReply} found. */
struct NftTableReply {
  /** NFTA_TABLE_USERDATA holds a comment (libnftnl's TLV type 0) starting with kPortSecurityCommentPrefix. */
  bool ours = false;
  /** NFTA_TABLE_HANDLE as sent (8 bytes, big-endian), empty when absent or malformed. */
  std::string handle;
};

/**
 * Parses the first message of a datagram of `n` bytes answering NFT_MSG_GETTABLE. False when it is not an
 * NFT_MSG_NEWTABLE (an NLMSG_ERROR such as -ENOENT: there is no such table) or is cut short.
 */
bool ParseTableReply(const uint8_t* buf, size_t n, NftTableReply* out);

}  // namespace macvtap
