// One AsyncWorker shape for every Promise-returning export: Execute() runs a C++ callable on the libuv pool and stores
// a SysError (it never touches JS); the result is converted, or the error built, on the main thread.
#pragma once

#include <errno.h>
#include <napi.h>

#include <functional>
#include <new>
#include <optional>
#include <utility>

#include "errors.h"

namespace macvtap {

/** Result type for operations that resolve `undefined`. */
struct Nothing {};

template <typename Result>
class PromiseWorker : public Napi::AsyncWorker {
 public:
  using Work = std::function<Result()>;
  using Convert = std::function<Napi::Value(Napi::Env, Result&)>;

  /** Queues `work`; the returned promise resolves with `convert(result)` or rejects with a SysError-shaped Error. */
  static Napi::Promise Start(Napi::Env env, const char* name, Work work, Convert convert) {
    auto* worker = new PromiseWorker(env, name, std::move(work), std::move(convert));
    Napi::Promise promise = worker->deferred_.Promise();
    worker->Queue();  // the worker deletes itself after OnOK/OnError
    return promise;
  }

 protected:
  PromiseWorker(Napi::Env env, const char* name, Work work, Convert convert)
      : Napi::AsyncWorker(env, name), deferred_(Napi::Promise::Deferred::New(env)), work_(std::move(work)),
        convert_(std::move(convert)) {}

  void Execute() override {
    try {
      result_.emplace(work_());
    } catch (const SysException& e) {
      error_ = e.error();
      failed_ = true;
    } catch (const std::bad_alloc&) {
      error_ = SysError{ENOMEM, "malloc", {}, {}, {}, {}};
      failed_ = true;
    } catch (const std::exception& e) {
      error_ = SysError{EIO, "native", {}, {}, {}, e.what()};
      failed_ = true;
    }
  }

  // Replaces node-addon-api's version, whose Error::New/ThrowAsJavaScriptException can throw out of the callback
  // (std::terminate) when the environment is being torn down (a worker_thread terminated with this in flight).
  void OnWorkComplete(Napi::Env env, napi_status status) override {
    if (status != napi_cancelled && CanCallIntoJs(env)) {
      try {
        Napi::HandleScope scope(env);
        if (failed_) {
          deferred_.Reject(MakeError(env, error_).Value());
        } else {
          try {
            deferred_.Resolve(convert_(env, *result_));
          } catch (const Napi::Error& e) {
            deferred_.Reject(e.Value());
          }
        }
      } catch (...) {
        // The environment is going away: nobody can observe this promise any more. Unclaimed fds in the result
        // are closed by its destructor below.
      }
    }
    Destroy();
  }

  void OnOK() override {}
  void OnError(const Napi::Error&) override {}

 private:
  Napi::Promise::Deferred deferred_;
  Work work_;
  Convert convert_;
  std::optional<Result> result_;
  SysError error_;
  bool failed_ = false;
};

}  // namespace macvtap
