// libFuzzer target (d): the link watcher's decoding (ForEachNlmsg + LinkEventDecoder) over a fuzzed sequence of
// dump requests and datagrams. Checks that messages are split inside their datagram, that only our current dump's
// parts are reported as dump items, notifications only from others, errors with a positive errno, and that the
// deferred-dump bookkeeping matches a model of it (a dump is re-sent only when one was deferred).
#include <linux/rtnetlink.h>
#include <string.h>

#include <vector>

#include "check.h"
#include "eventmsg.h"

using macvtap::LinkEvent;
using macvtap::LinkEventDecoder;

namespace {

constexpr uint32_t kPort = 0x4d565402;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  LinkEventDecoder d(kPort);
  uint32_t cur = 0, prev = 0;  // the current and previous dump's sequence numbers
  bool deferred = false;       // model: a dump was asked for while one ran
  auto send = [&]() {
    prev = cur;
    cur = d.NextDumpSeq();
    MVT_CHECK(cur != prev && cur != 0, "dump sequence %u after %u", cur, prev);
    d.DumpSent();
  };
  size_t off = 0;
  while (off < size) {
    uint8_t op = data[off++];
    switch (op % 4) {
      case 0:  // a dump is asked for: sent now, or deferred
        if (d.RequestDump()) {
          send();
        } else {
          MVT_CHECK(d.dump_running(), "deferred with no dump running");
          deferred = true;
        }
        break;
      case 1:  // a dump whose sendto fails: the sequence advances, nothing runs
        if (d.RequestDump()) {
          prev = cur;
          cur = d.NextDumpSeq();
        } else {
          deferred = true;
        }
        break;
      default: {  // a datagram: [stamp:u8][len:u16][bytes]
        if (size - off < 3) return 0;
        uint8_t stamp = data[off];
        size_t len = static_cast<size_t>(data[off + 1]) | (static_cast<size_t>(data[off + 2]) << 8);
        off += 3;
        if (len > size - off) len = size - off;
        std::vector<uint8_t> dgram(data + off, data + off + len);
        off += len;
        // Stamp every message: as sent, our current dump, our previous dump, or a notification (seq 0, port 0).
        for (size_t p = 0; dgram.size() - p >= sizeof(nlmsghdr);) {
          nlmsghdr h;
          memcpy(&h, dgram.data() + p, sizeof h);
          switch (stamp % 4) {
            case 1: h.nlmsg_seq = cur, h.nlmsg_pid = kPort; break;
            case 2: h.nlmsg_seq = prev, h.nlmsg_pid = kPort; break;
            case 3: h.nlmsg_seq = 0, h.nlmsg_pid = 0; break;
            default: break;
          }
          memcpy(dgram.data() + p, &h, sizeof h);
          // Checked before aligning: NLMSG_ALIGN masks with a 32-bit constant, so a length near 4 GiB aligns to 0.
          if (h.nlmsg_len < sizeof(nlmsghdr) || h.nlmsg_len >= dgram.size() - p) break;
          p += NLMSG_ALIGN(h.nlmsg_len);
          if (p >= dgram.size()) break;
        }
        const uint8_t* base = dgram.data();
        const uint8_t* next = base;
        macvtap::ForEachNlmsg(base, dgram.size(), [&](const nlmsghdr* h) {
          const uint8_t* at = reinterpret_cast<const uint8_t*>(h);
          MVT_CHECK(at == next && (at - base) % 4 == 0, "message at %td, expected %td", at - base, next - base);
          MVT_CHECK(h->nlmsg_len >= sizeof(nlmsghdr) && at + h->nlmsg_len <= base + dgram.size(),
                    "message [%td, +%u) outside the %zu-byte datagram", at - base, h->nlmsg_len, dgram.size());
          next = at + NLMSG_ALIGN(h->nlmsg_len);
          bool ours = h->nlmsg_pid == kPort && h->nlmsg_seq != 0;
          bool send_dump = false;
          LinkEvent ev = d.Decode(h, &send_dump);
          if (send_dump) {
            MVT_CHECK(deferred, "a dump re-sent that nobody asked for");
            MVT_CHECK(ev.type == LinkEvent::Type::kSkip, "the superseded dump's end was reported");
            deferred = false;
            send();
          }
          switch (ev.type) {
            case LinkEvent::Type::kSkip: break;
            case LinkEvent::Type::kDone:
              MVT_CHECK(ours && h->nlmsg_seq == cur && h->nlmsg_type == NLMSG_DONE, "done for another exchange");
              MVT_CHECK(!d.dump_running(), "still running after its end");
              break;
            case LinkEvent::Type::kError:
              MVT_CHECK(ours && h->nlmsg_seq == cur && (h->nlmsg_type == NLMSG_ERROR || h->nlmsg_type == NLMSG_DONE),
                        "error for another exchange");
              MVT_CHECK(ev.err > 0 && ev.err < 4096, "errno %d", ev.err);
              MVT_CHECK(!d.dump_running(), "still running after its error");
              break;
            case LinkEvent::Type::kDump:
              MVT_CHECK(ours && h->nlmsg_seq == cur, "dump item from seq %u pid %u (current %u)", h->nlmsg_seq,
                        h->nlmsg_pid, cur);
              MVT_CHECK(h->nlmsg_type == RTM_NEWLINK || h->nlmsg_type == RTM_DELLINK, "dump item of type %u",
                        h->nlmsg_type);
              break;
            case LinkEvent::Type::kNew:
            case LinkEvent::Type::kDel:
              MVT_CHECK(!ours, "our own message reported as a notification");
              MVT_CHECK(h->nlmsg_type == (ev.type == LinkEvent::Type::kNew ? RTM_NEWLINK : RTM_DELLINK),
                        "type %u reported as %s", h->nlmsg_type, ev.type == LinkEvent::Type::kNew ? "new" : "del");
              break;
          }
        });
      }
    }
  }
  return 0;
}
