// What the addon keeps per Node environment (the main thread and each worker_thread separately), as the
// environment's instance data: deleted by node-addon-api's finalizer when the environment ends.
#pragma once

#include <napi.h>

#include <memory>

namespace macvtap {

class Ownership;

struct EnvData {
  /** Shared, so libuv work still running at exit can keep it alive (see Ownership). */
  std::shared_ptr<Ownership> ownership;
  /** The function every decoded link is handed to (setLinkFactory); empty until lib registers it. */
  Napi::FunctionReference link_factory;
  ~EnvData();
};

/** Creates the environment's EnvData (once, from Init). */
EnvData& InstallEnvData(Napi::Env env);
/** The environment's EnvData. */
EnvData& GetEnvData(Napi::Env env);

}  // namespace macvtap
