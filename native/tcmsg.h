// Traffic-control messages (rtnetlink RTM_*QDISC / RTM_*TCLASS / RTM_*TFILTER) this package builds and parses itself:
// an htb root qdisc with one class (the shaper of a device's transmit path) and a matchall filter with a police
// action on the ingress qdisc (the policer of its receive path), the two pieces libvirt's <bandwidth> installs with
// `tc`. Pure C++ (no N-API, no syscalls): tc.cc sends what it builds, and native/fuzz/fuzz_tcmsg.cc feeds the parser
// arbitrary bytes.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <optional>
#include <string>

#include "netlink.h"

namespace macvtap {

/** TC_H_INGRESS's parent and the ingress/clsact qdisc's handle (ffff:). */
constexpr uint32_t kTcIngressHandle = 0xffff0000u;

/** One token bucket as the kernel takes it: a rate in bytes/s and a bucket size in bytes. */
struct TcBucket {
  uint64_t rate = 0;
  uint32_t burst = 0;
};

/** What the htb class of RTM_NEWTCLASS carries (rate = average, ceil = peak, each with its bucket). */
struct HtbClassRequest {
  TcBucket rate;
  TcBucket ceil;
};

/** The police action of a matchall filter: `rate`/`burst`, optionally `peak` with `mtu` as the peak bucket. */
struct PoliceRequest {
  TcBucket rate;
  uint64_t peak = 0;
  uint32_t mtu = 0;
};

/** Nanoseconds the kernel's psched clock counts per tick (PSCHED_SHIFT 6: 64 ns), for bucket sizes sent as time. */
constexpr uint64_t kPschedTickNs = 64;

/** A bucket of `bytes` at `rate` bytes/s as psched ticks (what tc_htb_opt.buffer and tc_police.burst hold). */
uint32_t BucketTicks(uint64_t rate, uint64_t bytes);
/** The reverse: ticks back to bytes at `rate` (what getBandwidth reports). */
uint64_t TicksToBytes(uint64_t rate, uint64_t ticks);

/** RTM_NEWQDISC of an htb root qdisc `handle`:0 whose unclassified traffic goes to class `handle`:`defcls`. */
void BuildHtbQdisc(MessageBuilder& m, int ifindex, uint32_t handle, uint32_t defcls);
/** RTM_NEWQDISC of the ingress qdisc (ffff:). */
void BuildIngressQdisc(MessageBuilder& m, int ifindex);
/** RTM_DELQDISC of the qdisc at `parent` (TC_H_ROOT or TC_H_INGRESS) with `handle`. */
void BuildDeleteQdisc(MessageBuilder& m, int ifindex, uint32_t parent, uint32_t handle);
/** RTM_NEWTCLASS of htb class `classid` under `parent`. */
void BuildHtbClass(MessageBuilder& m, int ifindex, uint32_t parent, uint32_t classid, const HtbClassRequest& req);
/** RTM_NEWTFILTER: a matchall filter (protocol all) at `parent`/`prio` with handle `handle` and one police action. */
void BuildPoliceFilter(MessageBuilder& m, int ifindex, uint32_t parent, uint16_t prio, uint32_t handle,
                       const PoliceRequest& req);
/** RTM_DELTFILTER of the filter at `parent`/`prio` (every filter of that priority, protocol all). */
void BuildDeleteFilter(MessageBuilder& m, int ifindex, uint32_t parent, uint16_t prio);

/** One qdisc, class or filter as a dump reports it. */
struct TcObject {
  uint16_t type = 0;  // RTM_NEWQDISC, RTM_NEWTCLASS or RTM_NEWTFILTER
  int ifindex = 0;
  uint32_t handle = 0;
  uint32_t parent = 0;
  /** Filters: priority (upper 16 bits of tcm_info) and protocol (lower 16, network order as sent). */
  uint16_t prio = 0;
  uint16_t protocol = 0;
  std::string kind;
  /** htb qdisc: the default class minor (tc_htb_glob.defcls). */
  std::optional<uint32_t> htb_defcls;
  /** htb class: rate and ceil with their buckets in bytes. */
  std::optional<HtbClassRequest> htb_class;
  /** A filter's first police action. */
  std::optional<PoliceRequest> police;
  /** The police action's exceed verdict (tc_police.action, TC_ACT_SHOT = 2 for drop). */
  int32_t police_exceed = 0;
};

/**
 * Parses one message of `len` bytes (its nlmsg_len already checked against the datagram). False when it is not an
 * RTM_NEWQDISC/RTM_NEWTCLASS/RTM_NEWTFILTER or is too short for its tcmsg; attributes that are cut or malformed are
 * treated as absent (what was read before them stays).
 */
bool ParseTcMessage(const uint8_t* data, size_t len, TcObject* out);

}  // namespace macvtap
