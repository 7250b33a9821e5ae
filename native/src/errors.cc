#include <bpf/libbpf.h>

#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>

#include "common.h"

namespace xlb {
namespace {

// The addon runs libbpf on the JavaScript thread only (the async test run
// calls no libbpf function that prints), so one buffer is enough.
std::string g_log;

int Print(enum libbpf_print_level level, const char* fmt, va_list args) {
  if (level == LIBBPF_DEBUG) return 0;
  char buf[4096];
  va_list copy;
  va_copy(copy, args);
  int n = vsnprintf(buf, sizeof buf, fmt, copy);
  va_end(copy);
  if (n < 0) return n;
  if (static_cast<size_t>(n) < sizeof buf) {
    g_log.append(buf, n);
  } else {
    // Verifier logs run to megabytes: format again into a buffer that fits.
    std::string big(static_cast<size_t>(n) + 1, '\0');
    vsnprintf(big.data(), big.size(), fmt, args);
    big.resize(n);
    g_log += big;
  }
  return n;
}

// glibc's symbolic names ("ENOENT") are what users search for.
const char* ErrnoName(int err) {
  const char* name = strerrorname_np(err);
  return name ? name : "EUNKNOWN";
}

// libbpf prints a rejected program's verifier log between these markers.
std::string ExtractVerifierLog(const std::string& log) {
  const std::string begin = "-- BEGIN PROG LOAD LOG --";
  const std::string end = "-- END PROG LOAD LOG --";
  std::string out;
  size_t pos = 0;
  while ((pos = log.find(begin, pos)) != std::string::npos) {
    size_t start = pos + begin.size();
    if (start < log.size() && log[start] == '\n') start++;
    size_t stop = log.find(end, start);
    if (stop == std::string::npos) stop = log.size();
    out += log.substr(start, stop - start);
    pos = stop;
  }
  return out;
}

}  // namespace

void LibbpfLog::Install() { libbpf_set_print(Print); }
void LibbpfLog::Clear() { g_log.clear(); }
std::string LibbpfLog::Take() {
  std::string out;
  out.swap(g_log);
  return out;
}

int ErrnoOf(int ret) {
  if (ret < -1) return -ret;
  return errno != 0 ? errno : EINVAL;
}

void ThrowErrno(Napi::Env env, const std::string& what, int err) {
  std::string log = LibbpfLog::Take();
  std::string verifier = ExtractVerifierLog(log);
  std::string msg =
      what + ": " + strerror(err) + " (" + ErrnoName(err) + ", errno " + std::to_string(err) + ")";
  if (!log.empty()) {
    // The verifier log can be huge; the message keeps its tail, where the
    // rejected instruction is, and the property keeps all of it.
    std::string shown = log.size() > 4000 ? "...\n" + log.substr(log.size() - 4000) : log;
    msg += "\nlibbpf: " + shown;
  }
  Napi::Error error = Napi::Error::New(env, msg);
  error.Set("errno", Napi::Number::New(env, err));
  error.Set("code", Napi::String::New(env, ErrnoName(err)));
  error.Set("libbpfLog", Napi::String::New(env, log));
  if (!verifier.empty()) error.Set("verifierLog", Napi::String::New(env, verifier));
  throw error;
}

uint32_t ArgU32(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (!info[i].IsNumber()) {
    throw Napi::TypeError::New(info.Env(), std::string(name) + " must be a number");
  }
  double v = info[i].As<Napi::Number>().DoubleValue();
  if (v < 0 || v > 4294967295.0 || v != static_cast<double>(static_cast<uint64_t>(v))) {
    throw Napi::RangeError::New(info.Env(), std::string(name) + " must be an integer in [0, 2^32)");
  }
  return static_cast<uint32_t>(v);
}

int32_t ArgI32(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (!info[i].IsNumber()) {
    throw Napi::TypeError::New(info.Env(), std::string(name) + " must be a number");
  }
  return info[i].As<Napi::Number>().Int32Value();
}

int ArgFd(const Napi::CallbackInfo& info, size_t i) {
  int32_t fd = ArgI32(info, i, "fd");
  if (fd < 0) throw Napi::RangeError::New(info.Env(), "fd must be a non-negative descriptor");
  return fd;
}

std::string ArgString(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (!info[i].IsString()) {
    throw Napi::TypeError::New(info.Env(), std::string(name) + " must be a string");
  }
  return info[i].As<Napi::String>().Utf8Value();
}

Napi::Buffer<uint8_t> ArgBuffer(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (!info[i].IsBuffer()) {
    throw Napi::TypeError::New(info.Env(), std::string(name) + " must be a Buffer");
  }
  return info[i].As<Napi::Buffer<uint8_t>>();
}

bool IsAbsent(const Napi::CallbackInfo& info, size_t i) {
  return info.Length() <= i || info[i].IsUndefined() || info[i].IsNull();
}

Napi::Buffer<uint8_t> CopyBuffer(Napi::Env env, const void* data, size_t len) {
  return Napi::Buffer<uint8_t>::Copy(env, static_cast<const uint8_t*>(data), len);
}

}  // namespace xlb
