// Datapath endpoints for the benchmark: a guest (a minimal network stack over a tap fd) and a peer (a UDP socket in
// a namespace). Each runs on its own std::thread — never libuv's pool, which it would occupy for the whole run —
// optionally pinned to a CPU, bounded by a deadline (hard cap 10 min), a count, or stop(). The thread reports
// through a ThreadSafeFunction: `ready` once set up, `done` with its stats when it ends. Environment teardown stops
// and joins every endpoint of that environment (cleanup hook), so no thread outlives it.
#pragma once

#include <napi.h>
#include <pthread.h>
#include <stdint.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <functional>
#include <string>
#include <thread>
#include <unordered_map>

#include "errors.h"
#include "fd.h"
#include "histogram.h"
#include "netns.h"

namespace macvtap {

/** EndpointStats (bench/datapath/endpoints.ts). */
struct EndpointStats {
  uint64_t rx_packets = 0, rx_bytes = 0, tx_packets = 0, tx_bytes = 0;
  uint64_t ignored = 0, tx_errors = 0, arp_replies = 0;
  uint64_t cpu_user_us = 0, cpu_sys_us = 0, elapsed_ns = 0;
  std::unique_ptr<Histogram> latency;  // pingpong only
};

enum class PollMode { kBlock, kBusy };

struct GuestConfig {
  enum class Mode { kEcho, kSink, kGenerate, kRawEcho } mode = Mode::kEcho;
  int vnet_hdr_size = 0;
  uint8_t mac[6] = {0};
  uint32_t ip = 0;  // network order
  // generate
  uint8_t dst_mac[6] = {0};
  uint32_t dst_ip = 0;
  uint16_t src_port = 0, dst_port = 0;
  size_t payload_size = 0;
  uint64_t rate_pps = 0;
  size_t gso_size = 0;
  uint64_t count = 0;  // 0 = unbounded (until the deadline)
};

struct PeerConfig {
  enum class Mode { kEcho, kSink, kGenerate, kPingpong } mode = Mode::kEcho;
  uint32_t bind_ip = 0;  // network order
  uint16_t bind_port = 0;
  uint32_t target_ip = 0;
  uint16_t target_port = 0;
  bool has_target = false;
  size_t payload_size = 64;
  uint64_t rate_pps = 0;
  uint64_t count = 0;
  uint64_t warmup = 0;
  int batch = 32;
  uint64_t timeout_ns = 1'000'000'000;
};

class EndpointRegistry;

/** Everything one endpoint's thread shares with the main thread. */
struct EndpointState {
  bool guest = true;
  GuestConfig guest_cfg;
  PeerConfig peer_cfg;
  int cpu = -1;
  PollMode poll = PollMode::kBlock;
  uint64_t duration_ns = 0;

  /** The guest's own dup of the tap fd, or the peer's dup of the namespace fd (-1: path or current). */
  FileDescriptor fd;
  std::string netns_path;
  /** Wakes a blocked loop on stop(). */
  FileDescriptor wake;
  std::atomic<bool> stop{false};
  /**
   * The peer's socket. Owned here, not by the loop, so that stop() can shut it down while the loop sleeps in a
   * blocking receive (block mode): the number stays valid until the state goes, after the thread is joined.
   * `sock_fd` is published by the loop once the socket exists (-1 before).
   */
  FileDescriptor sock;
  std::atomic<int> sock_fd{-1};
  std::thread thread;

  // Written by the thread before it reports; read on the main thread after join().
  EndpointStats stats;
  SysError error;
  bool failed = false;

  // Main thread only.
  EndpointRegistry* registry = nullptr;
  uint32_t id = 0;
  Napi::ThreadSafeFunction tsfn;
  std::optional<Napi::Promise::Deferred> ready, done;
  bool ready_settled = false;

  /**
   * The guest's thread while it sleeps in a blocking read() of the tap (block mode): a tap fd cannot be shut down,
   * so stop() interrupts the read with kWakeSignal (guest.cc). Set by the loop before its first read, never cleared:
   * the pthread_t stays valid until the thread is joined, which happens on the main thread, as stop() does.
   */
  std::atomic<bool> signal_wake{false};
  pthread_t loop_thread{};

  /**
   * Sets `stop` and wakes the loop (the eventfd; shutdown(SHUT_RD) of a peer's socket; kWakeSignal to a guest
   * blocked in read()). Main thread (never concurrent with the join of the endpoint's thread).
   */
  void RequestStop();
};

/** The endpoints of one Node environment, stopped and joined by its cleanup hook. */
class EndpointRegistry {
 public:
  uint32_t Add(std::shared_ptr<EndpointState> s);
  std::shared_ptr<EndpointState> Find(uint32_t id);
  void Remove(uint32_t id);
  /** Environment teardown: stop every endpoint, join its thread. */
  void StopAll();

 private:
  std::mutex mutex_;
  std::unordered_map<uint32_t, std::shared_ptr<EndpointState>> live_;
  uint32_t next_ = 1;
};

/** The loops (guest.cc, peer.cc). They fill s.stats; throw SysException on setup failure before calling `ready`. */
void RunGuest(EndpointState& s, const std::function<void()>& ready);
void RunPeer(EndpointState& s, const std::function<void()>& ready);

/** Shared by the loops. */
uint64_t MonoNs();
/** Interrupts a guest's blocking read (guest.cc): delivered to that thread only, handled by a no-op. */
int WakeSignal();
/** Waits until `fd` is readable (or writable with `out`), the stop eventfd fires, or `until_ns` passes. */
enum class Wait { kReady, kTimeout, kStopped };
Wait WaitFd(EndpointState& s, int fd, bool out, uint64_t until_ns);

/** Registers endpointStart/endpointStop and the cleanup hook (module init). */
void InstallEndpoints(Napi::Env env, Napi::Object exports);

}  // namespace macvtap
