// nftables through libnftables, the library under `nft` (Debian's libnftables1): one call runs one batch of
// commands as one kernel transaction, inside a network namespace, on a worker thread.
//
// The library is opened with dlopen() at the first call, not linked: the addon stays loadable (and every other export
// usable) on a machine without it, and only port security reports what is missing. Its C API is small and stable
// (libnftables.so.1 since nftables 0.9); the few prototypes are declared here so building needs no -dev package.
#include <arpa/inet.h>
#include <dlfcn.h>
#include <stdlib.h>
#include <errno.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <mutex>
#include <string>

#include "args.h"
#include "async.h"
#include "errors.h"
#include "netns.h"
#include "nftmsg.h"

namespace macvtap {
namespace {

constexpr const char* kLibrary = "libnftables.so.1";
constexpr unsigned kOutputJson = 1u << 4;     // NFT_CTX_OUTPUT_JSON
constexpr unsigned kOutputHandle = 1u << 3;   // NFT_CTX_OUTPUT_HANDLE
constexpr unsigned kDefault = 0;              // NFT_CTX_DEFAULT

struct NftApi {
  void* (*ctx_new)(uint32_t flags);
  void (*ctx_free)(void* ctx);
  void (*output_set_flags)(void* ctx, unsigned flags);
  int (*buffer_output)(void* ctx);
  int (*buffer_error)(void* ctx);
  const char* (*get_output_buffer)(void* ctx);
  const char* (*get_error_buffer)(void* ctx);
  int (*run_cmd_from_buffer)(void* ctx, const char* buf);
};

// libnftables 1.0.x keeps some tables process-global (symbol tables read from /etc/iproute2 at context creation),
// so contexts are created, used and freed one at a time. A transaction takes well under a millisecond of it.
std::mutex g_mutex;
NftApi g_api;
bool g_loaded = false;
std::string g_load_error;

template <typename T>
bool Sym(void* lib, const char* name, T* out) {
  *out = reinterpret_cast<T>(::dlsym(lib, name));
  return *out != nullptr;
}

/** Opens the library once (caller holds g_mutex). Throws ENOENT naming the package when it is not there. */
void LoadLocked() {
  if (g_loaded) return;
  if (g_load_error.empty()) {
    // Test seam: MACVTAP_TEST_LIBNFTABLES names another file to open instead (one that does not exist), so the
    // refusal a machine without libnftables gives is tested on a machine that has it (test/portsec-policy.test.ts).
    const char* seam = ::getenv("MACVTAP_TEST_LIBNFTABLES");
    void* lib = ::dlopen(seam != nullptr ? seam : kLibrary, RTLD_NOW | RTLD_LOCAL);
    if (lib == nullptr) {
      const char* why = ::dlerror();
      g_load_error = why != nullptr ? why : "dlopen failed";
    } else if (Sym(lib, "nft_ctx_new", &g_api.ctx_new) && Sym(lib, "nft_ctx_free", &g_api.ctx_free) &&
               Sym(lib, "nft_ctx_output_set_flags", &g_api.output_set_flags) &&
               Sym(lib, "nft_ctx_buffer_output", &g_api.buffer_output) &&
               Sym(lib, "nft_ctx_buffer_error", &g_api.buffer_error) &&
               Sym(lib, "nft_ctx_get_output_buffer", &g_api.get_output_buffer) &&
               Sym(lib, "nft_ctx_get_error_buffer", &g_api.get_error_buffer) &&
               Sym(lib, "nft_run_cmd_from_buffer", &g_api.run_cmd_from_buffer)) {
      g_loaded = true;
      return;
    } else {
      g_load_error = "a symbol of the libnftables C API is missing";
      ::dlclose(lib);
    }
  }
  const char* seam = ::getenv("MACVTAP_TEST_LIBNFTABLES");
  ThrowSys(ENOENT, "dlopen", seam != nullptr ? seam : kLibrary, {},
           "nftables port security needs libnftables (Debian/Ubuntu: apt install libnftables1): " + g_load_error);
}

/**
 * The errno behind libnftables' message: the kernel's refusal arrives as "Error: Could not process rule: <strerror
 * text>" (also "...: <text>" for list/delete commands). Matched against the C library's own descriptions, so the
 * code is the kernel's, not a guess; a parse or evaluation error (no kernel errno) is EINVAL.
 */
int ErrnoFromMessage(const std::string& msg) {
  int best = 0;
  size_t best_len = 0;
  for (int e = 1; e < 134; e++) {
    const char* desc = ::strerrordesc_np(e);
    if (desc == nullptr) continue;
    size_t len = strlen(desc);
    if (len > best_len && msg.find(std::string(": ") + desc) != std::string::npos) {
      best = e;
      best_len = len;
    }
  }
  return best != 0 ? best : EINVAL;
}

struct Ctx {
  void* p;
  explicit Ctx(void* ctx) : p(ctx) {}
  ~Ctx() { if (p != nullptr) g_api.ctx_free(p); }
  Ctx(const Ctx&) = delete;
  Ctx& operator=(const Ctx&) = delete;
};

std::string Trim(const char* s) {
  std::string t = s != nullptr ? s : "";
  while (!t.empty() && (t.back() == '\n' || t.back() == ' ')) t.pop_back();
  return t;
}

}  // namespace

/** Runs `commands` (nft syntax) as one transaction inside `ns`; returns what the commands print (JSON when asked). */
std::string NftRun(const std::string& commands, bool json, const NetnsRef& ns, const std::string& device) {
  std::lock_guard<std::mutex> lock(g_mutex);
  LoadLocked();
  // The context's netlink socket is created at its first command, so the whole life of the context is spent inside
  // the namespace; NetnsGuard leaves it again (and poisons the thread if it cannot).
  NetnsGuard guard(ns);
  Ctx ctx(g_api.ctx_new(kDefault));
  if (ctx.p == nullptr) ThrowSys(ENOMEM, "nft_ctx_new", {}, device);
  g_api.output_set_flags(ctx.p, json ? (kOutputJson | kOutputHandle) : 0);
  g_api.buffer_output(ctx.p);
  g_api.buffer_error(ctx.p);
  int rc = g_api.run_cmd_from_buffer(ctx.p, commands.c_str());
  if (rc != 0) {
    std::string err = Trim(g_api.get_error_buffer(ctx.p));
    SysError e;
    e.err = ErrnoFromMessage(err);
    e.syscall = "nftables";
    e.device = device;
    e.extack = err.empty() ? "libnftables failed without a message" : err;
    throw SysException(std::move(e));
  }
  return Trim(g_api.get_output_buffer(ctx.p));
}

namespace {

bool NftSafeName(const std::string& name) {
  if (name.empty() || name.size() > 15) return false;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
    if (!ok) return false;
  }
  return true;
}

struct NfAttr {
  uint16_t type;
  std::string value;  // bytes as sent (a string with its NUL, a big-endian number)
};

void AppendNfMsg(std::vector<uint8_t>* out, uint16_t type, uint16_t flags, uint32_t seq, uint8_t family,
                 uint16_t res_id, const std::vector<NfAttr>& attrs) {
  size_t start = out->size();
  nlmsghdr h{};
  h.nlmsg_type = type;
  h.nlmsg_flags = flags;
  h.nlmsg_seq = seq;
  nfgenmsg g{};
  g.nfgen_family = family;
  g.version = NFNETLINK_V0;
  g.res_id = htons(res_id);
  out->resize(start + NLMSG_HDRLEN + NLMSG_ALIGN(sizeof g));
  memcpy(out->data() + start + NLMSG_HDRLEN, &g, sizeof g);
  for (const NfAttr& attr : attrs) {
    nlattr a{};
    a.nla_type = attr.type;
    a.nla_len = static_cast<uint16_t>(NLA_HDRLEN + attr.value.size());
    size_t at = out->size();
    out->resize(at + NLA_ALIGN(a.nla_len));
    memcpy(out->data() + at, &a, sizeof a);
    memcpy(out->data() + at + NLA_HDRLEN, attr.value.data(), attr.value.size());
  }
  h.nlmsg_len = static_cast<uint32_t>(out->size() - start);
  memcpy(out->data() + start, &h, sizeof h);
}

/** Sends `msg` and reads one datagram into `buf`; its length, or -1. */
ssize_t Exchange(int fd, const std::vector<uint8_t>& msg, uint8_t* buf, size_t len) {
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  if (::sendto(fd, msg.data(), msg.size(), 0, reinterpret_cast<sockaddr*>(&kernel), sizeof kernel) < 0) return -1;
  return ::recv(fd, buf, len, 0);
}

}  // namespace

bool DeletePortSecurityTable(const NetnsRef& ns, const std::string& device) {
  if (!NftSafeName(device)) return false;
  FileDescriptor sock;
  {
    NetnsGuard guard(ns);
    int fd = ::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
    if (fd < 0) return false;  // no nfnetlink here: no table of ours either
    sock.reset(fd);
  }
  CheckThreadNetns();
  timeval tv{};
  tv.tv_sec = 5;
  ::setsockopt(sock.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::string name = "mvtps-" + device;
  name.push_back('\0');
  alignas(nlmsghdr) uint8_t buf[8192];

  // NFT_MSG_GETTABLE: is there one, and is it ours (our comment)? A table of that name we did not make stays.
  std::vector<uint8_t> get;
  AppendNfMsg(&get, (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETTABLE, NLM_F_REQUEST, 1, NFPROTO_NETDEV, 0,
              {{NFTA_TABLE_NAME, name}});
  ssize_t n = Exchange(sock.get(), get, buf, sizeof buf);
  NftTableReply reply;
  if (n <= 0 || !ParseTableReply(buf, static_cast<size_t>(n), &reply)) return false;  // -ENOENT: there is none
  if (!reply.ours || reply.handle.empty()) return false;

  // One batch deleting exactly that table, by its handle (not a table made under the name meanwhile).
  std::vector<uint8_t> batch;
  AppendNfMsg(&batch, NFNL_MSG_BATCH_BEGIN, NLM_F_REQUEST, 2, AF_UNSPEC, NFNL_SUBSYS_NFTABLES, {});
  AppendNfMsg(&batch, (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_DELTABLE, NLM_F_REQUEST | NLM_F_ACK, 3, NFPROTO_NETDEV, 0,
              {{NFTA_TABLE_HANDLE, reply.handle}});
  AppendNfMsg(&batch, NFNL_MSG_BATCH_END, NLM_F_REQUEST, 4, AF_UNSPEC, NFNL_SUBSYS_NFTABLES, {});
  n = Exchange(sock.get(), batch, buf, sizeof buf);
  if (n < static_cast<ssize_t>(NLMSG_HDRLEN + sizeof(nlmsgerr))) return false;
  nlmsghdr h;
  memcpy(&h, buf, sizeof h);
  if (h.nlmsg_type != NLMSG_ERROR) return false;
  nlmsgerr e;
  memcpy(&e, buf + NLMSG_HDRLEN, sizeof e);
  return e.error == 0;
}

/**
 * nftRun(commands, { json, device }, ns) → Promise<string>. Equivalent to `ip netns exec NS nft [-j] -f FILE` with
 * FILE = `commands`: one transaction, all or nothing. errno contract (syscall 'nftables', extack = libnftables' error
 * text): ENOENT (syscall 'dlopen') libnftables is not installed; the kernel's errno for a refused command (ENOENT no
 * such table/device, EOPNOTSUPP no such hook, EEXIST…); EINVAL a command libnftables could not parse or evaluate.
 */
Napi::Value JsNftRun(const Napi::CallbackInfo& info) {
  std::string commands = ReqString(info[0], "commands");
  Napi::Object opts = ReqObject(info[1], "opts");
  bool json = OptBool(opts, "json").value_or(false);
  std::string device = OptString(opts, "device").value_or("");
  NetnsRef ns = ReadNetns(info[2], "ns");
  return PromiseWorker<std::string>::Start(
      info.Env(), "macvtap:nftRun", [commands, json, ns, device]() { return NftRun(commands, json, ns, device); },
      [](Napi::Env env, std::string& out) -> Napi::Value { return Napi::String::New(env, out); });
}

}  // namespace macvtap
