// The error value every layer throws, without N-API: worker threads, the netlink layer and the fuzz/fault-injection
// programs (native/fuzz) use it; errors.h turns it into a JS error on the main thread.
#pragma once

#include <exception>
#include <string>

namespace macvtap {

/** A failed syscall or netlink request, as produced on any thread. `err` is a positive errno value. */
struct SysError {
  int err = 0;
  std::string syscall;
  std::string path;
  std::string device;
  /** The kernel's extended-ack text (NLMSGERR_ATTR_MSG). */
  std::string extack;
  /** Our own explanation, for refusals that do not come from the kernel (e.g. "not a macvtap link"). */
  std::string detail;
};

/** Thrown by the C++ operations (never across a N-API boundary: workers catch it in Execute()). */
class SysException : public std::exception {
 public:
  explicit SysException(SysError error);
  const char* what() const noexcept override { return what_.c_str(); }
  const SysError& error() const { return error_; }

 private:
  SysError error_;
  std::string what_;
};

/** Throws a SysException built from `err` (positive errno) and the context. */
[[noreturn]] void ThrowSys(int err, std::string syscall, std::string path = {}, std::string device = {},
                           std::string detail = {});

/** The errno name ("EEXIST"); "E<number>" for numbers glibc does not name. */
std::string ErrnoName(int err);

/** The message text: `EEXIST: File exists, RTM_NEWLINK 'macvtap0' — kernel: <extack>`. */
std::string FormatMessage(const SysError& e);

}  // namespace macvtap
