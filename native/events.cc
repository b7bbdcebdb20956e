#include "events.h"

#include <errno.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <string.h>
#include <sys/socket.h>

#include <memory>
#include <string>
#include <vector>

#include "async.h"
#include "errors.h"
#include "eventmsg.h"
#include "fd.h"
#include "link.h"
#include "netlink.h"
#include "netns.h"
#include "ownership.h"
#include "args.h"

#if __has_include(<uv.h>)
#include <uv.h>
#else
// cmake-js builds this Node-API addon against node-api-headers, which ship no uv.h. The few libuv calls we need are
// part of libuv 1.x's stable public ABI and exported by every Node binary (napi_get_uv_event_loop hands us the
// loop), so they are declared here. A handle is opaque storage larger than any libuv 1.x uv_poll_t (≈160 bytes on
// x86_64) whose first member is `void* data`, as UV_HANDLE_FIELDS defines for every handle.
extern "C" {
struct uv_loop_s;
typedef struct uv_loop_s uv_loop_t;
typedef struct alignas(16) uv_poll_s {
  void* data;
  unsigned char opaque[504];
} uv_poll_t;
typedef struct uv_handle_s uv_handle_t;
typedef void (*uv_poll_cb)(uv_poll_t* handle, int status, int events);
typedef void (*uv_close_cb)(uv_handle_t* handle);
enum { UV_READABLE = 1 };
int uv_poll_init(uv_loop_t* loop, uv_poll_t* handle, int fd);
int uv_poll_start(uv_poll_t* handle, int events, uv_poll_cb cb);
int uv_poll_stop(uv_poll_t* handle);
void uv_close(uv_handle_t* handle, uv_close_cb close_cb);
}
#endif

namespace macvtap {

namespace {

// Large enough for any rtnetlink datagram (dump chunks are at most 32 KiB): a truncated one is reported as an overrun.
constexpr size_t kRecvBuffer = 64 * 1024;
// Datagrams read per libuv callback: bounds the time one batch holds the event loop.
constexpr int kDatagramsPerBatch = 64;

/** The socket made inside the namespace on a worker thread, before the main thread starts watching it. */
struct OpenedSocket {
  FileDescriptor fd;
  uint32_t portid = 0;
};

OpenedSocket OpenEventSocket(const NetnsRef& ns, int rcvbuf) {
  OpenedSocket out;
  {
    NetnsGuard guard(ns);
    int fd = ::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_ROUTE);
    if (fd < 0) ThrowSys(errno, "socket", {}, {}, "AF_NETLINK NETLINK_ROUTE");
    out.fd.reset(fd);
  }
  CheckThreadNetns();
  int fd = out.fd.get();
  // A small buffer by choice: a slow reader gets ENOBUFS (and resynchronises) instead of the kernel queueing
  // megabytes of stale notifications for it.
  if (rcvbuf > 0 && setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf) < 0) {
    ThrowSys(errno, "setsockopt(SO_RCVBUF)");
  }
  sockaddr_nl addr{};
  addr.nl_family = AF_NETLINK;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0) ThrowSys(errno, "bind");
  int group = RTNLGRP_LINK;
  if (setsockopt(fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &group, sizeof group) < 0) {
    ThrowSys(errno, "setsockopt(NETLINK_ADD_MEMBERSHIP)", {}, {}, "RTNLGRP_LINK");
  }
  socklen_t alen = sizeof addr;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &alen) < 0) ThrowSys(errno, "getsockname");
  out.portid = addr.nl_pid;
  return out;
}

/**
 * One watcher: a handle of the environment's Ownership (ownership.h), registered as its socket's fd, which keeps it
 * alive until it is closed (fdClose, or the environment's exit). Everything here runs on the main thread.
 */
class Watch : public OwnedObject, public std::enable_shared_from_this<Watch> {
 public:
  Watch(Napi::Env env, OpenedSocket sock, Napi::Function callback)
      : env_(env), owner_(Ownership::Of(env)), fd_(std::move(sock.fd)), portid_(sock.portid), decoder_(sock.portid),
        buf_(kRecvBuffer), context_(std::make_unique<Napi::AsyncContext>(env, "macvtap:linkWatch")) {
    callback_ = Napi::Persistent(callback);
  }

  int fd() const { return fd_.get(); }

  /**
   * Starts the uv_poll_t, then sends the first dump (subscribed first, dumped second: nothing falls in between);
   * throws a SysError-shaped JS error when libuv refuses or the dump cannot be sent.
   */
  void Start() {
    struct uv_loop_s* loop = nullptr;
    if (napi_get_uv_event_loop(env_, &loop) != napi_ok || loop == nullptr) {
      throw MakeError(env_, SysError{EINVAL, "uv_poll_init", {}, {}, {}, "no libuv loop"});
    }
    poll_ = new uv_poll_t;
    int rc = uv_poll_init(loop, poll_, fd_.get());
    if (rc < 0) {
      delete poll_;
      poll_ = nullptr;
      throw MakeError(env_, SysError{-rc, "uv_poll_init", {}, {}, {}, {}});
    }
    poll_->data = this;
    rc = uv_poll_start(poll_, UV_READABLE, OnPoll);
    if (rc < 0) throw MakeError(env_, SysError{-rc, "uv_poll_start", {}, {}, {}, {}});
    SysError e = Dump();
    if (e.err != 0) throw MakeError(env_, e);
  }

  /**
   * Asks for an RTM_GETLINK dump on this socket (deferred while one runs: the kernel allows one at a time). Returns
   * the error when the request cannot be sent (err 0 when it was sent or deferred).
   */
  SysError Dump() {
    if (closed_ || !decoder_.RequestDump()) return {};
    return SendDump();
  }

  /** Idempotent: leaves the registry, stops the poll, closes the handle and the socket, releases the callback. */
  void Close() override {
    if (closed_) return;
    closed_ = true;
    if (std::shared_ptr<Ownership> owner = owner_.lock()) owner->Forget(fd_.get(), this);
    if (poll_ != nullptr) {
      uv_poll_stop(poll_);
      uv_close(reinterpret_cast<uv_handle_t*>(poll_), [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
      poll_ = nullptr;
    }
    fd_.reset();  // after uv_poll_stop: libuv no longer watches the fd
    callback_.Reset();
    context_.reset();
  }

 private:
  static void OnPoll(uv_poll_t* handle, int status, int /*events*/) {
    std::shared_ptr<Watch> w = static_cast<Watch*>(handle->data)->shared_from_this();
    w->Drain(status);
  }

  SysError SendDump() {
    MessageBuilder m(RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP);
    ifinfomsg ifi{};
    ifi.ifi_family = AF_UNSPEC;
    m.AppendHeader(&ifi, sizeof ifi);
    const std::vector<uint8_t>& bytes = m.Finish(decoder_.NextDumpSeq(), portid_);
    sockaddr_nl kernel{};
    kernel.nl_family = AF_NETLINK;
    ssize_t n;
    do {
      n = ::sendto(fd_.get(), bytes.data(), bytes.size(), 0, reinterpret_cast<sockaddr*>(&kernel), sizeof kernel);
    } while (n < 0 && errno == EINTR);
    if (n < 0) return SysError{errno, "RTM_GETLINK", {}, {}, {}, "link watcher dump"};
    decoder_.DumpSent();
    return {};
  }

  /** One batch item { type: 'error', error } (syscall and the rest from `e`). */
  Napi::Object ErrorItem(const SysError& e) {
    Napi::Object o = Item("error");
    o.Set("error", MakeError(env_, e).Value());
    return o;
  }

  Napi::Object Item(const char* type) {
    Napi::Object o = Napi::Object::New(env_);
    o.Set("type", type);
    return o;
  }

  // One netlink message: a notification (seq 0, from the kernel), a part of our current dump, or a dump's end.
  void HandleMessage(const nlmsghdr* h, Napi::Array& batch) {
    bool send_dump = false;
    LinkEvent ev = decoder_.Decode(h, &send_dump);
    if (send_dump) {
      SysError e = SendDump();
      if (e.err != 0) batch.Set(batch.Length(), ErrorItem(e));
    }
    switch (ev.type) {
      case LinkEvent::Type::kSkip:
        return;
      case LinkEvent::Type::kDone: {
        Napi::Object o = Item("done");
        o.Set("intr", ev.intr);
        batch.Set(batch.Length(), o);
        return;
      }
      case LinkEvent::Type::kError:
        batch.Set(batch.Length(), ErrorItem(SysError{ev.err, "RTM_GETLINK", {}, {}, {}, "link watcher dump"}));
        return;
      case LinkEvent::Type::kDump:
      case LinkEvent::Type::kNew:
      case LinkEvent::Type::kDel: {
        const char* type = ev.type == LinkEvent::Type::kDump ? "dump" : ev.type == LinkEvent::Type::kDel ? "del" : "new";
        Napi::Object o = Item(type);
        o.Set("link", LinkInfoToJs(env_, ev.link));
        batch.Set(batch.Length(), o);
        return;
      }
    }
  }

  void Drain(int status) {
    if (closed_) return;
    // A terminating worker: nobody will read events any more; stop polling (the fd would stay readable).
    if (!CanCallIntoJs(env_)) return Close();
    try {
      DrainBatch(status);
    } catch (const Napi::Error& e) {
      // Termination can also land while we are in N-API calls (it is requested from another thread).
      if (!CanCallIntoJs(env_)) return Close();
      // Nobody above us can catch it (we are in a libuv callback): make it an uncaught exception, as Node does.
      napi_fatal_exception(env_, e.Value());
    }
  }

  void DrainBatch(int status) {
    Napi::HandleScope scope(env_);
    Napi::Array batch = Napi::Array::New(env_);
    bool failed = false;
    if (status < 0) {
      // libuv reports POLLERR as UV_EBADF and stops the handle. On a netlink socket POLLERR means sk_err is set, and
      // that is ENOBUFS when notifications were dropped: read (and clear) it, and keep watching.
      int so_error = 0;
      socklen_t len = sizeof so_error;
      if (getsockopt(fd_.get(), SOL_SOCKET, SO_ERROR, &so_error, &len) == 0 &&
          uv_poll_start(poll_, UV_READABLE, OnPoll) == 0) {
        if (so_error == ENOBUFS) batch.Set(batch.Length(), Item("overrun"));
        status = 0;
      }
    }
    if (status < 0) {
      batch.Set(batch.Length(), ErrorItem(SysError{-status, "uv_poll", {}, {}, {}, "link watcher"}));
      failed = true;
    }
    for (int i = 0; !failed && i < kDatagramsPerBatch; ++i) {
      ssize_t n = ::recv(fd_.get(), buf_.data(), buf_.size(), MSG_DONTWAIT | MSG_TRUNC);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) break;
        if (errno == ENOBUFS) {
          // The kernel dropped notifications: the socket still works, but our view is stale.
          batch.Set(batch.Length(), Item("overrun"));
          continue;
        }
        batch.Set(batch.Length(), ErrorItem(SysError{errno, "recv", {}, {}, {}, "link watcher"}));
        failed = true;
        break;
      }
      if (static_cast<size_t>(n) > buf_.size()) {
        batch.Set(batch.Length(), Item("overrun"));
        continue;
      }
      ForEachNlmsg(buf_.data(), static_cast<size_t>(n), [&](const nlmsghdr* h) { HandleMessage(h, batch); });
    }
    if (batch.Length() == 0 || closed_) return;
    // onBatch returns true to ask for a dump (after an overrun, or a dump the kernel flagged interrupted): sent once
    // the batch is handled; a failure to send it is the next batch.
    Napi::Value again = callback_.MakeCallback(env_.Global(), {batch}, *context_);
    if (closed_ || !again.IsBoolean() || !again.As<Napi::Boolean>().Value()) return;
    SysError e = Dump();
    if (e.err == 0) return;
    Napi::Array failure = Napi::Array::New(env_, 1);
    failure.Set(0u, ErrorItem(e));
    callback_.MakeCallback(env_.Global(), {failure}, *context_);
  }

  Napi::Env env_;
  std::weak_ptr<Ownership> owner_;
  FileDescriptor fd_;
  uint32_t portid_;
  LinkEventDecoder decoder_;
  std::vector<uint8_t> buf_;
  std::unique_ptr<Napi::AsyncContext> context_;
  Napi::FunctionReference callback_;
  uv_poll_t* poll_ = nullptr;
  bool closed_ = false;
};

}  // namespace

/**
 * linkWatch(ns, { rcvbuf }, onBatch) → Promise<handle>: the socket is made in `ns` on a worker thread (the main thread
 * never changes namespace), then watched on the main thread, and the first dump is sent on it. The handle is the
 * socket's fd, owned like every handle (ownership.h): fdClose ends the watcher (stops the poll, closes the socket,
 * releases onBatch), and so does the environment's exit. onBatch returning true asks for another dump.
 * Errno contract: rejects with 'open'/'setns' (the namespace), 'socket', 'setsockopt(SO_RCVBUF)', 'bind',
 * 'setsockopt(NETLINK_ADD_MEMBERSHIP)' (EPERM/ENOENT…), 'uv_poll_init'/'uv_poll_start', 'RTM_GETLINK' (the first dump
 * could not be sent). Later failures arrive as batch items { type: 'error', error } with syscall 'recv', 'uv_poll'
 * or 'RTM_GETLINK'; ENOBUFS arrives as { type: 'overrun' }.
 */
Napi::Value JsLinkWatch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[2].IsFunction() || !info[1].IsObject()) {
    ThrowTypeError(env, "linkWatch(ns, { rcvbuf }, onBatch)");
  }
  NetnsRef ns = ReadNetns(info[0], "ns");
  int rcvbuf = static_cast<int>(ReqInt(info[1].As<Napi::Object>().Get("rcvbuf"), "rcvbuf", 0, INT32_MAX));
  auto callback = std::make_shared<Napi::FunctionReference>(Napi::Persistent(info[2].As<Napi::Function>()));
  std::shared_ptr<Ownership> owner = Ownership::Of(env);
  return PromiseWorker<std::shared_ptr<OpenedSocket>>::Start(
      env, "macvtap:linkWatch",
      [ns, rcvbuf]() { return std::make_shared<OpenedSocket>(OpenEventSocket(ns, rcvbuf)); },
      [callback, owner](Napi::Env env, std::shared_ptr<OpenedSocket>& sock) -> Napi::Value {
        auto watch = std::make_shared<Watch>(env, std::move(*sock), callback->Value());
        callback->Reset();
        int fd = watch->fd();
        if (!owner->Adopt(fd, HandleKind::kLinkWatch, watch)) {
          watch->Close();
          throw MakeError(env, SysError{EBADF, "uv_poll_init", {}, {}, {}, "the environment is exiting"});
        }
        try {
          watch->Start();
        } catch (...) {
          watch->Close();  // leaves the registry, closes the socket
          throw;
        }
        return Napi::Number::New(env, fd);
      });
}

}  // namespace macvtap
