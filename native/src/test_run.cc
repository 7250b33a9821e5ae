// bpf_prog_test_run: runs a loaded program on a packet (and optional context)
// inside the kernel. The test harness and the packet generator both use it;
// the generator's live-frames runs block for seconds, hence the async form.
#include <bpf/bpf.h>

#include <cerrno>
#include <vector>

#include "common.h"

namespace xlb {
namespace {

struct RunSpec {
  int progFd = -1;
  std::vector<uint8_t> dataIn;
  uint32_t dataOutSize = 0;
  std::vector<uint8_t> ctxIn;
  uint32_t ctxOutSize = 0;
  int repeat = 1;
  uint32_t flags = 0;
  uint32_t batchSize = 0;
  uint32_t cpu = 0;
};

struct RunResult {
  int err = 0;
  uint32_t retval = 0;
  uint32_t duration = 0;
  std::vector<uint8_t> dataOut;
  std::vector<uint8_t> ctxOut;
};

uint32_t OptU32(const Napi::Object& o, const char* key, uint32_t dflt) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return dflt;
  if (!v.IsNumber()) throw Napi::TypeError::New(o.Env(), std::string(key) + " must be a number");
  return v.As<Napi::Number>().Uint32Value();
}

std::vector<uint8_t> OptBytes(const Napi::Object& o, const char* key) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return {};
  if (!v.IsBuffer()) throw Napi::TypeError::New(o.Env(), std::string(key) + " must be a Buffer");
  auto b = v.As<Napi::Buffer<uint8_t>>();
  return std::vector<uint8_t>(b.Data(), b.Data() + b.Length());
}

RunSpec ParseSpec(const Napi::CallbackInfo& info) {
  RunSpec s;
  s.progFd = ArgFd(info, 0);
  if (!info[1].IsObject()) throw Napi::TypeError::New(info.Env(), "options must be an object");
  Napi::Object o = info[1].As<Napi::Object>();
  s.dataIn = OptBytes(o, "data");
  s.dataOutSize = OptU32(o, "dataOutSize", 0);
  s.ctxIn = OptBytes(o, "ctx");
  s.ctxOutSize = OptU32(o, "ctxOutSize", 0);
  s.repeat = static_cast<int>(OptU32(o, "repeat", 1));
  s.flags = OptU32(o, "flags", 0);
  s.batchSize = OptU32(o, "batchSize", 0);
  s.cpu = OptU32(o, "cpu", 0);
  return s;
}

RunResult Execute(const RunSpec& s) {
  RunResult r;
  r.dataOut.resize(s.dataOutSize);
  r.ctxOut.resize(s.ctxOutSize);
  DECLARE_LIBBPF_OPTS(bpf_test_run_opts, opts);
  if (!s.dataIn.empty()) {
    opts.data_in = s.dataIn.data();
    opts.data_size_in = static_cast<uint32_t>(s.dataIn.size());
  }
  if (s.dataOutSize) {
    opts.data_out = r.dataOut.data();
    opts.data_size_out = s.dataOutSize;
  }
  if (!s.ctxIn.empty()) {
    opts.ctx_in = s.ctxIn.data();
    opts.ctx_size_in = static_cast<uint32_t>(s.ctxIn.size());
  }
  if (s.ctxOutSize) {
    opts.ctx_out = r.ctxOut.data();
    opts.ctx_size_out = s.ctxOutSize;
  }
  opts.repeat = s.repeat;
  opts.flags = s.flags;
  opts.batch_size = s.batchSize;
  opts.cpu = s.cpu;
  int err = bpf_prog_test_run_opts(s.progFd, &opts);
  if (err) {
    r.err = ErrnoOf(err);
    return r;
  }
  r.retval = opts.retval;
  r.duration = opts.duration;
  r.dataOut.resize(s.dataOutSize ? opts.data_size_out : 0);
  r.ctxOut.resize(s.ctxOutSize ? opts.ctx_size_out : 0);
  return r;
}

Napi::Object ToJs(Napi::Env env, const RunResult& r) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("retval", r.retval);
  o.Set("duration", r.duration);
  o.Set("data", CopyBuffer(env, r.dataOut.data(), r.dataOut.size()));
  o.Set("ctx", CopyBuffer(env, r.ctxOut.data(), r.ctxOut.size()));
  return o;
}

Napi::Value TestRun(const Napi::CallbackInfo& info) {
  RunSpec spec = ParseSpec(info);
  RunResult r = Execute(spec);
  if (r.err) ThrowErrno(info.Env(), "BPF_PROG_TEST_RUN", r.err);
  return ToJs(info.Env(), r);
}

class TestRunWorker : public Napi::AsyncWorker {
 public:
  TestRunWorker(Napi::Env env, RunSpec spec)
      : Napi::AsyncWorker(env), spec_(std::move(spec)), deferred_(env) {}
  Napi::Promise Promise() { return deferred_.Promise(); }

 protected:
  void Execute() override { result_ = xlb::Execute(spec_); }
  void OnOK() override {
    Napi::Env env = Env();
    if (result_.err) {
      try {
        ThrowErrno(env, "BPF_PROG_TEST_RUN", result_.err);
      } catch (const Napi::Error& e) {
        deferred_.Reject(e.Value());
      }
      return;
    }
    deferred_.Resolve(ToJs(env, result_));
  }

 private:
  RunSpec spec_;
  RunResult result_;
  Napi::Promise::Deferred deferred_;
};

Napi::Value TestRunAsync(const Napi::CallbackInfo& info) {
  auto* worker = new TestRunWorker(info.Env(), ParseSpec(info));
  Napi::Promise p = worker->Promise();
  worker->Queue();
  return p;
}

}  // namespace

void InitTestRun(Napi::Env env, Napi::Object exports) {
  exports.Set("testRun", Napi::Function::New(env, TestRun));
  exports.Set("testRunAsync", Napi::Function::New(env, TestRunAsync));
}

}  // namespace xlb
