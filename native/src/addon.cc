#include <bpf/libbpf.h>

#include "common.h"

namespace xlb {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  LibbpfLog::Install();
  InitObject(env, exports);
  InitMaps(env, exports);
  InitAttach(env, exports);
  InitTestRun(env, exports);
  InitSystem(env, exports);
  return exports;
}

}  // namespace xlb

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) {
  return xlb::Init(env, exports);
}

NODE_API_MODULE(xlb_native, InitModule)
