#include "fdpass.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <vector>

#include "args.h"
#include "async.h"
#include "errors.h"
#include "fd.h"
#include "ownership.h"

namespace macvtap {

namespace {

// The kernel's SCM_MAX_FD: more fds than this in one message are refused with EINVAL.
constexpr size_t kMaxFds = 253;
constexpr size_t kMaxPayload = 64 * 1024;

sockaddr_un UnixAddress(const std::string& path, socklen_t* len) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) ThrowSys(ENAMETOOLONG, "connect", path);
  memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  *len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + 1);
  return addr;
}

int64_t NowMs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

// Waits for `events` until `deadline` (-1: forever); ETIMEDOUT with `syscall` when it passes.
void WaitFor(int fd, short events, int64_t deadline, const char* syscall, const std::string& path) {
  for (;;) {
    int wait = -1;
    if (deadline >= 0) {
      int64_t left = deadline - NowMs();
      if (left <= 0) ThrowSys(ETIMEDOUT, syscall, path);
      wait = static_cast<int>(left);
    }
    pollfd p{fd, events, 0};
    int rc = ::poll(&p, 1, wait);
    if (rc > 0) {
      if (p.revents & POLLNVAL) ThrowSys(EBADF, syscall, path);
      return;
    }
    if (rc == 0) ThrowSys(ETIMEDOUT, syscall, path);
    if (errno != EINTR) ThrowSys(errno, "poll", path);
  }
}

void WaitReadable(int fd, int64_t deadline, const char* syscall, const std::string& path) {
  WaitFor(fd, POLLIN, deadline, syscall, path);
}

// A socket Node handed over (a spawn stdio pipe) is non-blocking: a full buffer is a wait, not an error.
constexpr int64_t kSendTimeoutMs = 30000;

void SendAll(int sock, const std::vector<int>& fds, const std::vector<uint8_t>& payload, const std::string& path) {
  // At least one byte must travel: ancillary data rides on real data in a stream socket.
  static const uint8_t kNul = 0;
  const uint8_t* data = payload.empty() ? &kNul : payload.data();
  size_t len = payload.empty() ? 1 : payload.size();
  std::vector<uint8_t> control(CMSG_SPACE(sizeof(int) * fds.size()));
  iovec iov{const_cast<uint8_t*>(data), len};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  if (!fds.empty()) {
    msg.msg_control = control.data();
    msg.msg_controllen = control.size();
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
  }
  int64_t deadline = NowMs() + kSendTimeoutMs;
  ssize_t n;
  for (;;) {
    n = ::sendmsg(sock, &msg, MSG_NOSIGNAL);
    if (n >= 0) break;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      WaitFor(sock, POLLOUT, deadline, "sendmsg", path);
    } else if (errno != EINTR) {
      ThrowSys(errno, "sendmsg", path);
    }
  }
  // The fds went with the first byte; the rest of a long payload follows as plain data.
  size_t sent = static_cast<size_t>(n);
  while (sent < len) {
    n = ::send(sock, data + sent, len - sent, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        WaitFor(sock, POLLOUT, deadline, "send", path);
        continue;
      }
      ThrowSys(errno, "send", path);
    }
    sent += static_cast<size_t>(n);
  }
}

struct Received {
  FdBatch fds;
  std::vector<uint8_t> payload;
};

Received RecvOne(int sock, int64_t deadline, const std::string& path) {
  Received r;
  r.payload.resize(kMaxPayload);
  std::vector<uint8_t> control(CMSG_SPACE(sizeof(int) * kMaxFds));
  iovec iov{r.payload.data(), r.payload.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control.data();
  msg.msg_controllen = control.size();
  ssize_t n;
  for (;;) {
    WaitReadable(sock, deadline, "recvmsg", path);
    n = ::recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
    if (n >= 0) break;
    // EAGAIN: a non-blocking socket woke up without data for us (another reader); wait again.
    if (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK) ThrowSys(errno, "recvmsg", path);
  }
  // Collect the fds first, so every received fd is owned (and closed on error) whatever happens next.
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS || c->cmsg_len < CMSG_LEN(0)) continue;
    size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < count; ++i) {
      int fd;
      memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
      r.fds.Add(fd);
    }
  }
  if (msg.msg_flags & MSG_CTRUNC) ThrowSys(EMSGSIZE, "recvmsg", path, {}, "more fds than fit in one message");
  if (n == 0 && r.fds.size() == 0) ThrowSys(ECONNRESET, "recvmsg", path, {}, "the peer closed without sending");
  r.payload.resize(static_cast<size_t>(n));
  return r;
}

}  // namespace

/**
 * sendFds(target, fds, payload) → Promise<void>. `target`: a socket path (connect, send, close) or a connected fd.
 * errno contract: 'socket'/'connect' with path (ENOENT no such socket, ECONNREFUSED nobody listening, EACCES);
 * 'sendmsg' EBADF an fd in `fds` (or the target fd, checked when called: the worker sends on a copy) is not open, EINVAL more than 253 fds, EPIPE peer gone,
 * ENOTSOCK/ENOTCONN target fd unusable, ETIMEDOUT a non-blocking target stayed full for 30 s.
 */
Napi::Value JsSendFds(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path;
  int target = -1;
  if (info[0].IsString()) {
    path = ReqString(info[0], "target");
  } else {
    target = static_cast<int>(ReqInt(info[0], "target", 0, INT32_MAX));
  }
  std::vector<int> fds = ReadFdArray(info[1], "fds");
  std::vector<uint8_t> payload;
  if (!info[2].IsUndefined() && !info[2].IsNull()) {
    if (!info[2].IsBuffer()) ThrowTypeError(env, "The \"payload\" argument must be a Buffer");
    Napi::Buffer<uint8_t> b = info[2].As<Napi::Buffer<uint8_t>>();
    payload.assign(b.Data(), b.Data() + b.Length());
  }
  // A target fd is duplicated here, on the main thread, and the worker sends on (and closes) the copy: the caller's
  // socket (a Node socket whose peer just went away) may be closed while the worker runs, and its number reused.
  auto copy = std::make_shared<FileDescriptor>();
  if (target >= 0) {
    int d = ::fcntl(target, F_DUPFD_CLOEXEC, 0);
    if (d < 0) throw MakeError(env, SysError{errno, "sendmsg", {}, {}, {}, "the target fd is not open"});
    copy->reset(d);
  }
  return PromiseWorker<Nothing>::Start(
      env, "macvtap:sendFds",
      [path, copy, fds, payload]() {
        if (copy->valid()) {
          SendAll(copy->get(), fds, payload, {});
          return Nothing{};
        }
        int s = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (s < 0) ThrowSys(errno, "socket", path);
        FileDescriptor sock(s);
        socklen_t len;
        sockaddr_un addr = UnixAddress(path, &len);
        int rc;
        do rc = ::connect(s, reinterpret_cast<sockaddr*>(&addr), len);
        while (rc < 0 && errno == EINTR);
        if (rc < 0) ThrowSys(errno, "connect", path);
        SendAll(s, fds, payload, path);
        return Nothing{};
      },
      [](Napi::Env env, Nothing&) -> Napi::Value { return env.Undefined(); });
}

/**
 * recvFds(source, timeoutMs) → Promise<{ fds, payload }>. `source`: a path to bind and listen on (must not exist;
 * removed afterwards) or a connected socket fd. A negative timeout waits forever.
 * errno contract: 'bind' EADDRINUSE the path exists, EACCES/ENOENT bad directory; 'accept' ETIMEDOUT nobody
 * connected in time; 'recvmsg' ETIMEDOUT nothing arrived in time, ECONNRESET peer closed without a message,
 * EMSGSIZE more fds than one message holds (the received ones are closed), EBADF/ENOTSOCK bad source fd.
 */
Napi::Value JsRecvFds(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path;
  int source = -1;
  if (info[0].IsString()) {
    path = ReqString(info[0], "source");
  } else {
    source = static_cast<int>(ReqInt(info[0], "source", 0, INT32_MAX));
  }
  int64_t timeout = ReqInt(info[1], "timeoutMs", -1, INT32_MAX);
  std::shared_ptr<Ownership> owner = Ownership::Of(info.Env());
  return PromiseWorker<Received>::Start(
      env, "macvtap:recvFds",
      [path, source, timeout]() -> Received {
        int64_t deadline = timeout >= 0 ? NowMs() + timeout : -1;
        if (source >= 0) return RecvOne(source, deadline, {});
        int s = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (s < 0) ThrowSys(errno, "socket", path);
        FileDescriptor listener(s);
        socklen_t len;
        sockaddr_un addr = UnixAddress(path, &len);
        if (::bind(s, reinterpret_cast<sockaddr*>(&addr), len) < 0) ThrowSys(errno, "bind", path);
        // From here on the path is ours: remove it however this ends.
        struct Unlinker {
          const std::string& p;
          ~Unlinker() { ::unlink(p.c_str()); }
        } unlinker{path};
        if (::listen(s, 1) < 0) ThrowSys(errno, "listen", path);
        WaitReadable(s, deadline, "accept", path);
        int c;
        do c = ::accept4(s, nullptr, nullptr, SOCK_CLOEXEC);
        while (c < 0 && errno == EINTR);
        if (c < 0) ThrowSys(errno, "accept", path);
        FileDescriptor conn(c);
        return RecvOne(c, deadline, path);
      },
      [owner](Napi::Env env, Received& r) -> Napi::Value {
        Napi::Object o = Napi::Object::New(env);
        std::vector<int> fds = r.fds.Claim(*owner);
        Napi::Array a = Napi::Array::New(env, fds.size());
        for (size_t i = 0; i < fds.size(); ++i) a.Set(static_cast<uint32_t>(i), fds[i]);
        o.Set("fds", a);
        o.Set("payload", Napi::Buffer<uint8_t>::Copy(env, r.payload.data(), r.payload.size()));
        return o;
      });
}

/**
 * execvp(file, args, keepFds): never returns normally. `args` is the full argv (args[0] included); when empty,
 * argv is just [file]. FD_CLOEXEC is cleared on keepFds and on fds 0-2 (O_NONBLOCK too, which libuv sets on stdio
 * pipes), and SIGPIPE is reset to its default (Node ignores it, and an ignored signal would stay ignored in the new
 * program).
 * errno contract: 'fcntl' EBADF a keepFd is not open; 'execvp' with path = file: ENOENT, EACCES, ENOEXEC, E2BIG…
 * On failure nothing is restored except SIGPIPE's disposition (stdio stays blocking); the fds stay owned.
 */
Napi::Value JsExecvp(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string file = ReqString(info[0], "file");
  if (!info[1].IsArray()) ThrowTypeError(env, "The \"args\" argument must be an array of strings");
  Napi::Array a = info[1].As<Napi::Array>();
  std::vector<std::string> args;
  for (uint32_t i = 0; i < a.Length(); ++i) {
    args.push_back(ReqString(a.Get(i), "args"));
    if (args.back().find('\0') != std::string::npos) ThrowTypeError(env, "The \"args\" must not contain NUL");
  }
  if (args.empty()) args.push_back(file);
  std::vector<int> keep = ReadFdArray(info[2], "keepFds");
  auto fail = [&](int err, const char* syscall, const std::string& path) {
    SysError e;
    e.err = err;
    e.syscall = syscall;
    e.path = path;
    throw MakeError(env, e);
  };
  for (int fd : keep) {
    int flags = ::fcntl(fd, F_GETFD);
    if (flags < 0 || ::fcntl(fd, F_SETFD, flags & ~FD_CLOEXEC) < 0) fail(errno, "fcntl", "fd " + std::to_string(fd));
  }
  // The standard streams belong to the new program too, as after a shell's exec. libuv re-opens a TTY with
  // dup2-and-cloexec onto fd 1/2 and makes pipes non-blocking, so without this the program would start with
  // stdout/stderr closed (writes fail EBADF) or non-blocking (EAGAIN). Best effort: a closed stdio fd stays closed.
  for (int fd = 0; fd <= 2; ++fd) {
    int fdflags = ::fcntl(fd, F_GETFD);
    if (fdflags >= 0 && (fdflags & FD_CLOEXEC)) ::fcntl(fd, F_SETFD, fdflags & ~FD_CLOEXEC);
    int flflags = ::fcntl(fd, F_GETFL);
    if (flflags >= 0 && (flflags & O_NONBLOCK)) ::fcntl(fd, F_SETFL, flflags & ~O_NONBLOCK);
  }
  std::vector<char*> argv;
  for (std::string& s : args) argv.push_back(s.data());
  argv.push_back(nullptr);
  struct sigaction old {};
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  ::sigaction(SIGPIPE, &dfl, &old);
  ::execvp(file.c_str(), argv.data());
  int err = errno;
  ::sigaction(SIGPIPE, &old, nullptr);
  fail(err, "execvp", file);
  return env.Undefined();
}

}  // namespace macvtap
