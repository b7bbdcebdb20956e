// libFuzzer target (g): ParseTcMessage, the parser of the kernel's qdisc/class/filter dumps that getBandwidth and
// setBandwidth read (native/tcmsg.cc), over arbitrary bytes. Checks that it never reads outside the message (ASan),
// that it accepts only the three tc message types within their stated length, and that what it reports fits the
// message it came from (an htb class only from RTM_NEWTCLASS, a police action only from a filter, a bucket converted
// back from ticks no larger than the kernel's 32-bit tick field allows at that rate).
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <string.h>

#include <vector>

#include "check.h"
#include "tcmsg.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<uint8_t> buf(data, data + size);  // exactly `size` bytes: reading one past the end is an ASan report
  macvtap::TcObject o;
  bool ok = macvtap::ParseTcMessage(buf.data(), buf.size(), &o);
  if (!ok) {
    MVT_CHECK(o.type == 0 && o.kind.empty() && !o.htb_class && !o.police, "a refused message still reported something");
    return 0;
  }
  MVT_CHECK(size >= NLMSG_HDRLEN + sizeof(tcmsg), "parsed %zu bytes as a tc message", size);
  nlmsghdr h;
  memcpy(&h, buf.data(), sizeof h);
  MVT_CHECK(h.nlmsg_len <= size, "message of %u bytes in %zu", h.nlmsg_len, size);
  MVT_CHECK(o.type == RTM_NEWQDISC || o.type == RTM_NEWTCLASS || o.type == RTM_NEWTFILTER, "type %u", o.type);
  MVT_CHECK(o.type == h.nlmsg_type, "type %u reported for a message of type %u", o.type, h.nlmsg_type);
  MVT_CHECK(!o.htb_class || o.type == RTM_NEWTCLASS, "an htb class from message type %u", o.type);
  MVT_CHECK(!o.htb_defcls || o.type == RTM_NEWQDISC, "an htb default class from message type %u", o.type);
  MVT_CHECK(!o.police || o.type == RTM_NEWTFILTER, "a police action from message type %u", o.type);
  MVT_CHECK(o.prio == 0 || o.type == RTM_NEWTFILTER, "a priority on message type %u", o.type);
  MVT_CHECK(o.kind.size() < h.nlmsg_len, "kind of %zu bytes in a %u-byte message", o.kind.size(), h.nlmsg_len);
  // A bucket is at most 2^32 ticks at its rate: converting back can never exceed that.
  auto bucket_ok = [](const macvtap::TcBucket& b) {
    return b.burst <= macvtap::TicksToBytes(b.rate, UINT32_MAX) || b.burst == UINT32_MAX;
  };
  if (o.htb_class) {
    MVT_CHECK(bucket_ok(o.htb_class->rate) && bucket_ok(o.htb_class->ceil), "htb bucket beyond 2^32 ticks");
  }
  if (o.police) MVT_CHECK(bucket_ok(o.police->rate), "police bucket beyond 2^32 ticks");
  // Round trip of the tick conversion the builders use: never more bytes back than went in.
  if (o.police && o.police->rate.rate > 0) {
    uint64_t back = macvtap::TicksToBytes(o.police->rate.rate, macvtap::BucketTicks(o.police->rate.rate, o.police->rate.burst));
    MVT_CHECK(back <= o.police->rate.burst, "ticks round trip grew %u to %llu", o.police->rate.burst,
              static_cast<unsigned long long>(back));
  }
  return 0;
}
