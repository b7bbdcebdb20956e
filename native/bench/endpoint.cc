#include "endpoint.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "args.h"

namespace macvtap {

uint64_t MonoNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<uint64_t>(ts.tv_nsec);
}

void EndpointState::RequestStop() {
  stop.store(true, std::memory_order_relaxed);
  if (wake.valid()) {
    uint64_t one = 1;
    ssize_t n = ::write(wake.get(), &one, sizeof one);
    (void)n;  // a full counter (impossible here) would still leave the loop woken
  }
  // A receive blocked in the socket itself (block mode) wakes with 0 bytes; the loop then sees `stop`. ENOTCONN from
  // an unconnected UDP socket is expected: the kernel sets the shutdown and wakes the waiters all the same.
  int fd = sock_fd.load(std::memory_order_acquire);
  if (fd >= 0) ::shutdown(fd, SHUT_RD);
  // A guest asleep in read() returns EINTR and sees `stop`. A signal that lands just before the read is entered is
  // lost; the guest's periodic timer (guest.cc) bounds how long that read can then block.
  if (signal_wake.load(std::memory_order_acquire)) ::pthread_kill(loop_thread, WakeSignal());
}

Wait WaitFd(EndpointState& s, int fd, bool out, uint64_t until_ns) {
  for (;;) {
    if (s.stop.load(std::memory_order_relaxed)) return Wait::kStopped;
    uint64_t now = MonoNs();
    if (now >= until_ns) return Wait::kTimeout;
    uint64_t left = until_ns - now;
    timespec ts{static_cast<time_t>(left / 1'000'000'000ull), static_cast<long>(left % 1'000'000'000ull)};
    pollfd p[2] = {{fd, static_cast<short>(out ? POLLOUT : POLLIN), 0}, {s.wake.get(), POLLIN, 0}};
    int rc = ::ppoll(p, 2, &ts, nullptr);
    if (rc < 0) {
      if (errno == EINTR) continue;
      ThrowSys(errno, "ppoll");
    }
    if (rc == 0) continue;  // re-check the clock: ppoll may return a little early
    if (p[1].revents) return Wait::kStopped;
    if (p[0].revents & POLLNVAL) ThrowSys(EBADF, "ppoll", {}, {}, "fd " + std::to_string(fd));
    return Wait::kReady;
  }
}

// ---- registry ----

uint32_t EndpointRegistry::Add(std::shared_ptr<EndpointState> s) {
  std::lock_guard<std::mutex> lock(mutex_);
  uint32_t id = next_++;
  s->id = id;
  live_[id] = std::move(s);
  return id;
}

std::shared_ptr<EndpointState> EndpointRegistry::Find(uint32_t id) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = live_.find(id);
  return it == live_.end() ? nullptr : it->second;
}

void EndpointRegistry::Remove(uint32_t id) {
  std::lock_guard<std::mutex> lock(mutex_);
  live_.erase(id);
}

void EndpointRegistry::StopAll() {
  std::unordered_map<uint32_t, std::shared_ptr<EndpointState>> all;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    all.swap(live_);
  }
  for (auto& [id, s] : all) s->RequestStop();
  // Every loop checks `stop` at least once per wait (bounded by its poll), so these joins are short.
  for (auto& [id, s] : all) {
    if (s->thread.joinable()) s->thread.join();
    // A done report still queued when the environment dies is never delivered and keeps its state: let go of the
    // fds now, so nothing but a little memory is left behind.
    s->fd.reset();
    s->wake.reset();
    s->sock_fd.store(-1, std::memory_order_release);
    s->sock.reset();
  }
}

namespace {

uint64_t TimevalUs(const timeval& tv) {
  return static_cast<uint64_t>(tv.tv_sec) * 1'000'000ull + static_cast<uint64_t>(tv.tv_usec);
}

/**
 * Runs `fn` (which touches JS) from a thread-safe function call, unless the environment can no longer run JS (a
 * worker being terminated, even while `fn` runs): then nothing is reported — nobody is left to see it.
 */
template <typename Fn>
void OnJsThread(Napi::Env env, Fn fn) {
  if (!CanCallIntoJs(env)) return;
  try {
    fn();
  } catch (const Napi::Error& e) {
    if (CanCallIntoJs(env)) napi_fatal_exception(env, e.Value());
  }
}

void SettleDone(Napi::Env env, EndpointState* s);

void ThreadMain(std::shared_ptr<EndpointState> s) {
  // Named so a leak check (and a human with top -H) can find endpoint threads.
  pthread_setname_np(pthread_self(), s->guest ? "mvt-guest" : "mvt-peer");
  rusage r0{}, r1{};
  ::getrusage(RUSAGE_THREAD, &r0);
  try {
    if (s->cpu >= 0) {
      cpu_set_t set;
      CPU_ZERO(&set);
      CPU_SET(s->cpu, &set);
      int rc = pthread_setaffinity_np(pthread_self(), sizeof set, &set);
      if (rc != 0) ThrowSys(rc, "pthread_setaffinity_np", {}, {}, "cpu " + std::to_string(s->cpu));
    }
    auto ready = [&s]() {
      s->tsfn.NonBlockingCall([s](Napi::Env env, Napi::Function) {
        if (s->ready_settled || !s->ready) return;
        OnJsThread(env, [&]() {
          s->ready_settled = true;
          s->ready->Resolve(env.Undefined());
        });
      });
    };
    if (s->guest) {
      RunGuest(*s, ready);
    } else {
      RunPeer(*s, ready);
    }
  } catch (const SysException& e) {
    s->error = e.error();
    s->failed = true;
  } catch (const std::exception& e) {
    s->error = SysError{EIO, "endpoint", {}, {}, {}, e.what()};
    s->failed = true;
  }
  ::getrusage(RUSAGE_THREAD, &r1);
  s->stats.cpu_user_us = TimevalUs(r1.ru_utime) - TimevalUs(r0.ru_utime);
  s->stats.cpu_sys_us = TimevalUs(r1.ru_stime) - TimevalUs(r0.ru_stime);
  // The main thread joins us from this callback; during environment teardown the call is refused (napi_closing) and
  // the cleanup hook joins instead.
  s->tsfn.NonBlockingCall([s](Napi::Env env, Napi::Function) {
    // Finished in the thread's last statements: this join is short.
    if (s->thread.joinable()) s->thread.join();
    if (s->registry) s->registry->Remove(s->id);
    OnJsThread(env, [&]() { SettleDone(env, s.get()); });
  });
  s->tsfn.Release();
}

/** Rejects or resolves the endpoint's promises with its error or stats (main thread). */
void SettleDone(Napi::Env env, EndpointState* s) {
  Napi::HandleScope scope(env);
  if (s->failed) {
    Napi::Value err = MakeError(env, s->error).Value();
    if (!s->ready_settled && s->ready) s->ready->Reject(err);
    s->ready_settled = true;
    if (s->done) s->done->Reject(err);
  } else {
    if (!s->ready_settled && s->ready) s->ready->Resolve(env.Undefined());
    s->ready_settled = true;
    const EndpointStats& st = s->stats;
    Napi::Object o = Napi::Object::New(env);
    auto num = [&](const char* k, uint64_t v) { o.Set(k, Napi::Number::New(env, static_cast<double>(v))); };
    num("rxPackets", st.rx_packets);
    num("rxBytes", st.rx_bytes);
    num("txPackets", st.tx_packets);
    num("txBytes", st.tx_bytes);
    num("ignored", st.ignored);
    num("txErrors", st.tx_errors);
    num("arpReplies", st.arp_replies);
    num("cpuUserUs", st.cpu_user_us);
    num("cpuSysUs", st.cpu_sys_us);
    num("elapsedNs", st.elapsed_ns);
    if (st.latency && st.latency->count() > 0) {
      const Histogram& h = *st.latency;
      Napi::Object l = Napi::Object::New(env);
      l.Set("count", static_cast<double>(h.count()));
      l.Set("minNs", static_cast<double>(h.min()));
      l.Set("maxNs", static_cast<double>(h.max()));
      l.Set("meanNs", h.mean());
      l.Set("p50Ns", static_cast<double>(h.Percentile(0.50)));
      l.Set("p90Ns", static_cast<double>(h.Percentile(0.90)));
      l.Set("p99Ns", static_cast<double>(h.Percentile(0.99)));
      l.Set("p999Ns", static_cast<double>(h.Percentile(0.999)));
      auto buckets = h.Buckets();
      Napi::Array a = Napi::Array::New(env, buckets.size());
      for (size_t i = 0; i < buckets.size(); ++i) {
        Napi::Array pair = Napi::Array::New(env, 2);
        pair.Set(0u, static_cast<double>(buckets[i].first));
        pair.Set(1u, static_cast<double>(buckets[i].second));
        a.Set(static_cast<uint32_t>(i), pair);
      }
      l.Set("buckets", a);
      o.Set("latency", l);
    } else {
      o.Set("latency", env.Null());
    }
    if (s->done) s->done->Resolve(o);
  }
}

bool ParseIp(const std::string& text, uint32_t* out) { return inet_pton(AF_INET, text.c_str(), out) == 1; }

uint32_t ReqIp(const Napi::Object& o, const char* key) {
  std::string t = ReqString(o.Get(key), key);
  uint32_t ip;
  if (!ParseIp(t, &ip)) ThrowTypeError(o.Env(), std::string("The \"") + key + "\" option must be an IPv4 address");
  return ip;
}

void ReqMac(const Napi::Object& o, const char* key, uint8_t out[6]) {
  std::vector<uint8_t> m = ParseMac(o.Env(), ReqString(o.Get(key), key), key);
  memcpy(out, m.data(), 6);
}

constexpr int64_t kMaxDurationMs = 10 * 60 * 1000;

void ReadCommon(const Napi::Object& o, EndpointState& s) {
  std::optional<int64_t> cpu = OptInt(o, "cpu", 0, CPU_SETSIZE - 1);
  s.cpu = cpu ? static_cast<int>(*cpu) : -1;
  std::string poll = ReqString(o.Get("poll"), "poll");
  if (poll == "block") {
    s.poll = PollMode::kBlock;
  } else if (poll == "busy") {
    s.poll = PollMode::kBusy;
  } else {
    ThrowTypeError(o.Env(), "The \"poll\" option must be 'block' or 'busy'");
  }
  s.duration_ns = static_cast<uint64_t>(ReqInt(o.Get("durationMs"), "durationMs", 1, kMaxDurationMs)) * 1'000'000ull;
}

void ReadGuest(const Napi::Object& o, EndpointState& s) {
  Napi::Env env = o.Env();
  GuestConfig& g = s.guest_cfg;
  int fd = static_cast<int>(ReqInt(o.Get("fd"), "fd", 0, INT32_MAX));
  g.vnet_hdr_size = static_cast<int>(ReqInt(o.Get("vnetHdrSize"), "vnetHdrSize", 0, 12));
  if (g.vnet_hdr_size != 0 && g.vnet_hdr_size != 10 && g.vnet_hdr_size != 12) {
    ThrowRangeError(env, "\"vnetHdrSize\" must be 0, 10 or 12");
  }
  ReqMac(o, "mac", g.mac);
  g.ip = ReqIp(o, "ip");
  std::string mode = ReqString(o.Get("mode"), "mode");
  if (mode == "echo") g.mode = GuestConfig::Mode::kEcho;
  else if (mode == "sink") g.mode = GuestConfig::Mode::kSink;
  else if (mode == "generate") g.mode = GuestConfig::Mode::kGenerate;
  else if (mode == "raw-echo") g.mode = GuestConfig::Mode::kRawEcho;
  else ThrowTypeError(env, "The \"mode\" option must be 'echo', 'sink', 'generate' or 'raw-echo'");
  if (auto c = OptInt(o, "count", 0, INT64_MAX >> 12)) g.count = static_cast<uint64_t>(*c);
  Napi::Value gen = o.Get("generate");
  if (g.mode == GuestConfig::Mode::kGenerate) {
    Napi::Object x = ReqObject(gen, "generate");
    ReqMac(x, "dstMac", g.dst_mac);
    g.dst_ip = ReqIp(x, "dstIp");
    g.src_port = static_cast<uint16_t>(ReqInt(x.Get("srcPort"), "srcPort", 1, 65535));
    g.dst_port = static_cast<uint16_t>(ReqInt(x.Get("dstPort"), "dstPort", 1, 65535));
    g.payload_size = static_cast<size_t>(ReqInt(x.Get("payloadSize"), "payloadSize", 0, 65507));
    g.rate_pps = static_cast<uint64_t>(ReqInt(x.Get("ratePps"), "ratePps", 0, 1'000'000'000));
    g.gso_size = static_cast<size_t>(OptInt(x, "gsoSize", 0, 65507).value_or(0));
    if (auto c = OptInt(x, "count", 0, INT64_MAX >> 12)) g.count = static_cast<uint64_t>(*c);
    if (g.gso_size && g.vnet_hdr_size == 0) ThrowRangeError(env, "\"gsoSize\" needs a vnet header");
  }
  // Our own reference to the queue: closing the TapQueue while we run cannot hand its number to someone else.
  int dup = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (dup < 0) {
    SysError e;
    e.err = errno;
    e.syscall = "dup";
    e.detail = "fd " + std::to_string(fd);
    throw MakeError(env, e);
  }
  s.fd.reset(dup);
}

void ReadPeer(const Napi::Object& o, EndpointState& s) {
  Napi::Env env = o.Env();
  PeerConfig& p = s.peer_cfg;
  NetnsRef ns = ReadNetns(o.Get("netns"), "netns");
  if (ns.kind == NetnsRef::Kind::kPath) s.netns_path = ns.path;
  if (ns.kind == NetnsRef::Kind::kFd) {
    int dup = ::fcntl(ns.fd, F_DUPFD_CLOEXEC, 0);
    if (dup < 0) {
      SysError e;
      e.err = errno;
      e.syscall = "dup";
      e.detail = "netns fd " + std::to_string(ns.fd);
      throw MakeError(env, e);
    }
    s.fd.reset(dup);
  }
  p.bind_ip = ReqIp(o, "bindIp");
  p.bind_port = static_cast<uint16_t>(ReqInt(o.Get("bindPort"), "bindPort", 0, 65535));
  std::string mode = ReqString(o.Get("mode"), "mode");
  if (mode == "echo") p.mode = PeerConfig::Mode::kEcho;
  else if (mode == "sink") p.mode = PeerConfig::Mode::kSink;
  else if (mode == "generate") p.mode = PeerConfig::Mode::kGenerate;
  else if (mode == "pingpong") p.mode = PeerConfig::Mode::kPingpong;
  else ThrowTypeError(env, "The \"mode\" option must be 'echo', 'sink', 'generate' or 'pingpong'");
  Napi::Value target = o.Get("target");
  if (!target.IsUndefined() && !target.IsNull()) {
    Napi::Object t = ReqObject(target, "target");
    p.target_ip = ReqIp(t, "ip");
    p.target_port = static_cast<uint16_t>(ReqInt(t.Get("port"), "port", 1, 65535));
    p.has_target = true;
  }
  if ((p.mode == PeerConfig::Mode::kGenerate || p.mode == PeerConfig::Mode::kPingpong) && !p.has_target) {
    ThrowTypeError(env, "The \"target\" option is required for 'generate' and 'pingpong'");
  }
  p.payload_size = static_cast<size_t>(OptInt(o, "payloadSize", 0, 65507).value_or(64));
  p.rate_pps = static_cast<uint64_t>(OptInt(o, "ratePps", 0, 1'000'000'000).value_or(0));
  p.count = static_cast<uint64_t>(OptInt(o, "count", 0, INT64_MAX >> 12).value_or(0));
  p.warmup = static_cast<uint64_t>(OptInt(o, "warmup", 0, INT64_MAX >> 12).value_or(0));
  p.batch = static_cast<int>(OptInt(o, "batch", 1, 1024).value_or(p.mode == PeerConfig::Mode::kPingpong ? 1 : 32));
  p.timeout_ns = static_cast<uint64_t>(OptInt(o, "timeoutMs", 1, kMaxDurationMs).value_or(1000)) * 1'000'000ull;
}

/**
 * endpointStart(cfg) → { id, ready: Promise<void>, done: Promise<NativeEndpointStats> }. `cfg.kind` is 'guest' or
 * 'peer' (fields as bench/datapath/endpoints.ts's GuestConfig / PeerConfig, validated there). Starts a std::thread.
 * Synchronous errors: TypeError/RangeError for bad config; 'dup' EBADF when the guest fd / netns fd is not open.
 * errno contract of the promises (both reject with the same error when setup fails):
 *   'pthread_setaffinity_np' EINVAL  the cpu is not available to this process
 *   'open'/'setns' (path)            the peer's namespace is unusable
 *   'socket'/'bind' (EADDRNOTAVAIL, EADDRINUSE)/'connect'   the peer's socket could not be set up
 *   'fcntl'                          the guest fd's flags could not be changed (busy mode sets O_NONBLOCK, block
 *                                    mode clears it)
 *   'timer_create'/'timer_settime'   the guest's wake-up timer (block mode) could not be set up
 *   'read'/'write'/'recvmmsg'/'ppoll' with errno  an fd failed hard mid-run (EBADFD: the tap device went away)
 */
Napi::Value JsEndpointStart(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto* registry = static_cast<EndpointRegistry*>(info.Data());
  Napi::Object o = ReqObject(info[0], "config");
  std::string kind = ReqString(o.Get("kind"), "kind");
  auto s = std::make_shared<EndpointState>();
  if (kind == "guest") {
    s->guest = true;
    ReadGuest(o, *s);
  } else if (kind == "peer") {
    s->guest = false;
    ReadPeer(o, *s);
  } else {
    ThrowTypeError(env, "The \"kind\" option must be 'guest' or 'peer'");
  }
  ReadCommon(o, *s);
  int wake = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake < 0) {
    SysError e;
    e.err = errno;
    e.syscall = "eventfd";
    throw MakeError(env, e);
  }
  s->wake.reset(wake);
  s->ready.emplace(Napi::Promise::Deferred::New(env));
  s->done.emplace(Napi::Promise::Deferred::New(env));
  s->tsfn = Napi::ThreadSafeFunction::New(env, Napi::Function::New(env, [](const Napi::CallbackInfo&) {}),
                                          kind == "guest" ? "macvtap:guest" : "macvtap:peer", 0, 1);
  s->registry = registry;
  uint32_t id = registry->Add(s);
  // Done callbacks remove themselves; the registry keeps the state alive until then.
  std::shared_ptr<EndpointState> keep = s;
  Napi::Object out = Napi::Object::New(env);
  out.Set("id", id);
  out.Set("ready", s->ready->Promise());
  out.Set("done", s->done->Promise());
  try {
    s->thread = std::thread(ThreadMain, keep);
  } catch (const std::system_error& e) {
    registry->Remove(id);
    s->tsfn.Release();
    SysError err;
    err.err = e.code().value();
    err.syscall = "pthread_create";
    throw MakeError(env, err);
  }
  return out;
}

/** endpointStop(id) → boolean: asks the endpoint to stop (its `done` resolves once joined); false if unknown. */
Napi::Value JsEndpointStop(const Napi::CallbackInfo& info) {
  auto* registry = static_cast<EndpointRegistry*>(info.Data());
  uint32_t id = static_cast<uint32_t>(ReqInt(info[0], "id", 0, UINT32_MAX));
  std::shared_ptr<EndpointState> s = registry->Find(id);
  if (!s) return Napi::Boolean::New(info.Env(), false);
  s->RequestStop();
  return Napi::Boolean::New(info.Env(), true);
}

}  // namespace

void InstallEndpoints(Napi::Env env, Napi::Object exports) {
  // Owned by the environment: deleted by its cleanup hook after every endpoint thread is joined.
  auto* registry = new EndpointRegistry();
  env.AddCleanupHook([registry]() {
    registry->StopAll();
    delete registry;
  });
  exports.Set("endpointStart", Napi::Function::New(env, JsEndpointStart, "endpointStart", registry));
  exports.Set("endpointStop", Napi::Function::New(env, JsEndpointStop, "endpointStop", registry));
}

}  // namespace macvtap
