// A file descriptor with exactly one owner. Every fd the addon opens is opened O_CLOEXEC / SOCK_CLOEXEC, so a child
// spawned by Node never inherits one by accident; handing an fd on is always explicit (release(), execvp keepFds).
#pragma once

#include <unistd.h>

#include <utility>

namespace macvtap {

/** Owns one fd and closes it on destruction. Move-only: two owners would mean a double close. */
class FileDescriptor {
 public:
  FileDescriptor() = default;
  explicit FileDescriptor(int fd) : fd_(fd) {}
  ~FileDescriptor() { reset(); }

  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  FileDescriptor(FileDescriptor&& other) noexcept : fd_(other.release()) {}
  FileDescriptor& operator=(FileDescriptor&& other) noexcept {
    if (this != &other) reset(other.release());
    return *this;
  }

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }

  /** Gives the fd away; this object will never close it. */
  int release() { return std::exchange(fd_, -1); }

  /** Closes the current fd (if any) and takes ownership of `fd`. */
  void reset(int fd = -1) {
    // close() is not retried on EINTR: on Linux the fd is gone either way, and a retry could close a reused number.
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

}  // namespace macvtap
