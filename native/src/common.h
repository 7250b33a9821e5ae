// Shared helpers for the xlb addon: the only code in xlb that calls libbpf.
// Every entry point converts JavaScript arguments, makes one libbpf or system
// call, and turns a failure into an Error that carries errno and whatever
// libbpf printed while the call ran.
#pragma once

#include <napi.h>

#include <cstdint>
#include <string>

namespace xlb {

// Collects libbpf's printed messages for the call in progress.
class LibbpfLog {
 public:
  static void Install();
  static void Clear();
  static std::string Take();
};

// Throws a JavaScript Error for a failed call: message "<what>: <strerror>
// (errno N)", properties errno (positive), code ("ENOENT", ...), libbpfLog and,
// when the kernel verifier rejected a program, verifierLog.
[[noreturn]] void ThrowErrno(Napi::Env env, const std::string& what, int err);

// libbpf returns -errno (and also sets errno); some syscalls return -1 and set
// errno. Normalizes both to a positive errno.
int ErrnoOf(int ret);

uint32_t ArgU32(const Napi::CallbackInfo& info, size_t i, const char* name);
int32_t ArgI32(const Napi::CallbackInfo& info, size_t i, const char* name);
int ArgFd(const Napi::CallbackInfo& info, size_t i);
std::string ArgString(const Napi::CallbackInfo& info, size_t i, const char* name);
Napi::Buffer<uint8_t> ArgBuffer(const Napi::CallbackInfo& info, size_t i, const char* name);
bool IsAbsent(const Napi::CallbackInfo& info, size_t i);

Napi::Buffer<uint8_t> CopyBuffer(Napi::Env env, const void* data, size_t len);

void InitObject(Napi::Env env, Napi::Object exports);
void InitMaps(Napi::Env env, Napi::Object exports);
void InitAttach(Napi::Env env, Napi::Object exports);
void InitTestRun(Napi::Env env, Napi::Object exports);
void InitSystem(Napi::Env env, Napi::Object exports);

}  // namespace xlb
