// libFuzzer target (b): the attribute walkers (ForEachAttr, AttrTable, Attr readers) and DecodeStatus over
// arbitrary bytes. Checks that every attribute lies inside the buffer, in order and without overlap; that AttrTable
// agrees with ForEachAttr (the last attribute of each type wins); that the fixed-size readers accept exactly the
// long-enough payloads; that DecodeStatus answers a positive errno or 0 (never a wrapped negative) and an extack
// within the message; and that MessageBuilder writes back the same attribute list it read (round trip).
#include <errno.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <string.h>

#include <vector>

#include "check.h"
#include "netlink.h"
#include "syserror.h"

using macvtap::Attr;
using macvtap::AttrTable;
using macvtap::ForEachAttr;

namespace {

constexpr uint16_t kMaxType = 64;

struct Seen {
  uint16_t type;
  const uint8_t* data;
  size_t len;
};

void CheckReaders(const Attr& a) {
  uint8_t u8;
  uint16_t u16;
  uint32_t u32;
  int32_t s32;
  MVT_CHECK(a.U8(&u8) == (a.len >= 1), "U8 on %zu bytes", a.len);
  MVT_CHECK(a.U16(&u16) == (a.len >= 2), "U16 on %zu bytes", a.len);
  MVT_CHECK(a.U32(&u32) == (a.len >= 4), "U32 on %zu bytes", a.len);
  MVT_CHECK(a.S32(&s32) == (a.len >= 4), "S32 on %zu bytes", a.len);
  std::string s = a.Str();
  MVT_CHECK(s.size() <= a.len && s.find('\0') == std::string::npos, "Str of %zu bytes from %zu", s.size(), a.len);
}

std::vector<Seen> Walk(const uint8_t* data, size_t size) {
  std::vector<Seen> seen;
  const uint8_t* prev_end = data;
  ForEachAttr(data, size, [&](const Attr& a) {
    MVT_CHECK(a.data >= prev_end + 4, "attribute payload at %td overlaps the previous one", a.data - data);
    MVT_CHECK(a.data + a.len <= data + size, "attribute [%td, +%zu) beyond %zu bytes", a.data - data, a.len, size);
    MVT_CHECK((a.type & (NLA_F_NESTED | NLA_F_NET_BYTEORDER)) == 0, "type %u keeps flag bits", a.type);
    CheckReaders(a);
    prev_end = a.data + a.len;
    seen.push_back({a.type, a.data, a.len});
  });
  return seen;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // 1. The walkers, over the bytes as an attribute stream (heap copy of the exact size: ASan sees any overread).
  std::vector<uint8_t> buf(data, data + size);
  std::vector<Seen> seen = Walk(buf.data(), buf.size());
  AttrTable table(buf.data(), buf.size(), kMaxType);
  for (uint16_t t = 0; t <= kMaxType; ++t) {
    const Seen* last = nullptr;
    for (const Seen& s : seen) {
      if (s.type == t) last = &s;
    }
    const Attr& a = table[t];
    if (last == nullptr) {
      MVT_CHECK(!a.present(), "type %u in the table but not in the walk", t);
    } else {
      MVT_CHECK(a.data == last->data && a.len == last->len, "type %u: table and walk disagree", t);
    }
  }
  MVT_CHECK(!table[kMaxType + 1].present(), "a type above maxtype was indexed");

  // 2. Round trip: the attribute list written by MessageBuilder reads back identically.
  if (seen.size() <= 256) {
    macvtap::MessageBuilder m(RTM_NEWLINK, 0);
    try {
      for (const Seen& s : seen) m.Put(s.type, s.data, s.len);
      const std::vector<uint8_t>& out = m.Finish(1, 2);
      std::vector<uint8_t> copy(out.begin() + NLMSG_HDRLEN, out.end());
      std::vector<Seen> again = Walk(copy.data(), copy.size());
      MVT_CHECK(again.size() == seen.size(), "%zu attributes written, %zu read back", seen.size(), again.size());
      for (size_t i = 0; i < seen.size(); ++i) {
        MVT_CHECK(again[i].type == seen[i].type && again[i].len == seen[i].len &&
                      memcmp(again[i].data, seen[i].data, seen[i].len) == 0,
                  "attribute %zu changed in the round trip", i);
      }
    } catch (const macvtap::SysException& e) {
      MVT_CHECK(e.error().err == EMSGSIZE, "builder threw errno %d", e.error().err);
    }
  }

  // 3. The bytes as an NLMSG_ERROR and as an NLMSG_DONE, the two layouts DecodeStatus reads (nlmsg_len clamped to
  // the buffer, as Exchange guarantees before decoding).
  if (size >= sizeof(nlmsghdr)) {
    nlmsghdr h;
    memcpy(&h, buf.data(), sizeof h);
    if (h.nlmsg_len < sizeof(nlmsghdr) || h.nlmsg_len > size) h.nlmsg_len = static_cast<uint32_t>(size);
    buf.resize(h.nlmsg_len);
    for (uint16_t type : {static_cast<uint16_t>(NLMSG_ERROR), static_cast<uint16_t>(NLMSG_DONE)}) {
      h.nlmsg_type = type;
      memcpy(buf.data(), &h, sizeof h);
      macvtap::SysError s = macvtap::DecodeStatus(reinterpret_cast<const nlmsghdr*>(buf.data()));
      MVT_CHECK(s.err >= 0 && s.err < 4096, "DecodeStatus answered errno %d", s.err);
      MVT_CHECK(s.detail.empty() || s.err == EBADMSG, "malformed, but errno %d", s.err);
      MVT_CHECK(s.extack.size() < h.nlmsg_len, "extack of %zu bytes from a %u-byte message", s.extack.size(),
                h.nlmsg_len);
    }
  }
  return 0;
}
