// Map operations on descriptors, so the same calls serve maps from a loaded
// object, maps created at run time (Maglev inner tables) and pinned maps an
// agent adopts after a restart. Per-CPU values travel as one buffer of
// (rounded value size x possible CPUs); the TypeScript wrapper splits it.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "common.h"

namespace xlb {
namespace {

Napi::Value MapInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0);
  struct bpf_map_info mi = {};
  uint32_t len = sizeof mi;
  int err = bpf_obj_get_info_by_fd(fd, &mi, &len);
  if (err) ThrowErrno(env, "map info", ErrnoOf(err));
  Napi::Object o = Napi::Object::New(env);
  o.Set("id", mi.id);
  o.Set("type", mi.type);
  o.Set("name", mi.name);
  o.Set("keySize", mi.key_size);
  o.Set("valueSize", mi.value_size);
  o.Set("maxEntries", mi.max_entries);
  o.Set("flags", mi.map_flags);
  return o;
}

Napi::Value ProgInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0);
  struct bpf_prog_info pi = {};
  uint32_t len = sizeof pi;
  int err = bpf_obj_get_info_by_fd(fd, &pi, &len);
  if (err) ThrowErrno(env, "program info", ErrnoOf(err));
  Napi::Object o = Napi::Object::New(env);
  o.Set("id", pi.id);
  o.Set("type", pi.type);
  o.Set("name", pi.name);
  o.Set("tag", CopyBuffer(env, pi.tag, sizeof pi.tag));
  return o;
}

// lookup(fd, key, valueBytes, flags) -> Buffer | null (null when absent)
Napi::Value Lookup(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0);
  auto key = ArgBuffer(info, 1, "key");
  uint32_t size = ArgU32(info, 2, "valueBytes");
  uint64_t flags = IsAbsent(info, 3) ? 0 : ArgU32(info, 3, "flags");
  Napi::Buffer<uint8_t> out = Napi::Buffer<uint8_t>::New(env, size);
  int err = bpf_map_lookup_elem_flags(fd, key.Data(), out.Data(), flags);
  if (err) {
    int e = ErrnoOf(err);
    if (e == ENOENT) return env.Null();
    ThrowErrno(env, "map lookup", e);
  }
  return out;
}

Napi::Value Update(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0);
  auto key = ArgBuffer(info, 1, "key");
  auto value = ArgBuffer(info, 2, "value");
  uint64_t flags = IsAbsent(info, 3) ? uint32_t(BPF_ANY) : ArgU32(info, 3, "flags");
  int err = bpf_map_update_elem(fd, key.Data(), value.Data(), flags);
  if (err) ThrowErrno(env, "map update", ErrnoOf(err));
  return env.Undefined();
}

// delete(fd, key) -> true when an entry was removed, false when none was there.
Napi::Value Delete(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int err = bpf_map_delete_elem(ArgFd(info, 0), ArgBuffer(info, 1, "key").Data());
  if (err) {
    int e = ErrnoOf(err);
    if (e == ENOENT) return Napi::Boolean::New(env, false);
    ThrowErrno(env, "map delete", e);
  }
  return Napi::Boolean::New(env, true);
}

// nextKey(fd, key | null, keySize) -> Buffer | null (null after the last key)
Napi::Value NextKey(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0);
  const void* cur = nullptr;
  if (!IsAbsent(info, 1)) cur = ArgBuffer(info, 1, "key").Data();
  uint32_t size = ArgU32(info, 2, "keySize");
  Napi::Buffer<uint8_t> out = Napi::Buffer<uint8_t>::New(env, size);
  int err = bpf_map_get_next_key(fd, cur, out.Data());
  if (err) {
    int e = ErrnoOf(err);
    if (e == ENOENT) return env.Null();
    ThrowErrno(env, "map next key", e);
  }
  return out;
}

// lookupBatch(fd, token | null, keySize, valueBytes, count)
//   -> { count, keys, values, token, done }
Napi::Value LookupBatch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0);
  bool first = IsAbsent(info, 1);
  uint32_t keySize = ArgU32(info, 2, "keySize");
  uint32_t valueBytes = ArgU32(info, 3, "valueBytes");
  uint32_t count = ArgU32(info, 4, "count");
  // The kernel's batch cursor is a bucket or index: at most a key's size,
  // never more than 8 bytes for the map types xlb uses.
  size_t tokenSize = keySize > 8 ? keySize : 8;
  std::vector<uint8_t> in(tokenSize, 0), out(tokenSize, 0);
  if (!first) {
    auto token = ArgBuffer(info, 1, "token");
    memcpy(in.data(), token.Data(), std::min(token.Length(), tokenSize));
  }
  Napi::Buffer<uint8_t> keys = Napi::Buffer<uint8_t>::New(env, size_t(keySize) * count);
  Napi::Buffer<uint8_t> values = Napi::Buffer<uint8_t>::New(env, size_t(valueBytes) * count);
  uint32_t n = count;
  DECLARE_LIBBPF_OPTS(bpf_map_batch_opts, opts);
  int err = bpf_map_lookup_batch(fd, first ? nullptr : in.data(), out.data(), keys.Data(),
                                 values.Data(), &n, &opts);
  bool done = false;
  if (err) {
    int e = ErrnoOf(err);
    if (e != ENOENT) ThrowErrno(env, "map lookup batch", e);
    done = true;
  }
  Napi::Object o = Napi::Object::New(env);
  o.Set("count", n);
  o.Set("keys", keys);
  o.Set("values", values);
  o.Set("token", CopyBuffer(env, out.data(), tokenSize));
  o.Set("done", done);
  return o;
}

// updateBatch(fd, keys, values, count, flags) -> count updated
Napi::Value UpdateBatch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0);
  auto keys = ArgBuffer(info, 1, "keys");
  auto values = ArgBuffer(info, 2, "values");
  uint32_t n = ArgU32(info, 3, "count");
  DECLARE_LIBBPF_OPTS(bpf_map_batch_opts, opts);
  opts.elem_flags = IsAbsent(info, 4) ? uint32_t(BPF_ANY) : ArgU32(info, 4, "flags");
  int err = bpf_map_update_batch(fd, keys.Data(), values.Data(), &n, &opts);
  if (err) ThrowErrno(env, "map update batch (" + std::to_string(n) + " done)", ErrnoOf(err));
  return Napi::Number::New(env, n);
}

// writeMapped(fd, offset, data): copies `data` into the memory of a
// BPF_F_MMAPABLE array at `offset`, mapping and unmapping around the copy, so
// no mapping outlives the call. Filling a whole array this way takes
// microseconds where a batch update of tens of thousands of elements takes
// milliseconds.
Napi::Value WriteMapped(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0);
  uint32_t offset = ArgU32(info, 1, "offset");
  auto data = ArgBuffer(info, 2, "data");
  size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  size_t length = (offset + data.Length() + page - 1) / page * page;
  void* mem = mmap(nullptr, length, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (mem == MAP_FAILED) ThrowErrno(env, "mmap map", errno);
  // Whatever this process wrote before (an earlier call) is visible before
  // this copy: a table half, then the word that flips to it.
  __atomic_thread_fence(__ATOMIC_RELEASE);
  std::memcpy(static_cast<char*>(mem) + offset, data.Data(), data.Length());
  munmap(mem, length);
  return env.Undefined();
}

// writeMappedWords(fd, offset, stride, words): like writeMapped, but the
// 4-byte words of `words` go `stride` bytes apart from `offset` on: one half
// of a double-buffered table whose elements hold both halves side by side.
// Each word is one aligned store, so a reader sees a slot's old or new value,
// never a torn one.
Napi::Value WriteMappedWords(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0);
  uint32_t offset = ArgU32(info, 1, "offset");
  uint32_t stride = ArgU32(info, 2, "stride");
  auto data = ArgBuffer(info, 3, "words");
  if (offset % 4 != 0 || stride % 4 != 0 || stride == 0 || data.Length() % 4 != 0) {
    Napi::RangeError::New(env, "writeMappedWords needs 4-byte aligned offset, stride and words")
        .ThrowAsJavaScriptException();
    return env.Undefined();
  }
  size_t count = data.Length() / 4;
  if (count == 0) return env.Undefined();
  size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  size_t end = offset + (count - 1) * size_t(stride) + 4;
  size_t length = (end + page - 1) / page * page;
  void* mem = mmap(nullptr, length, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (mem == MAP_FAILED) ThrowErrno(env, "mmap map", errno);
  __atomic_thread_fence(__ATOMIC_RELEASE);
  auto* base = static_cast<char*>(mem) + offset;
  const auto* words = reinterpret_cast<const uint32_t*>(data.Data());
  for (size_t i = 0; i < count; i++) {
    uint32_t w;
    std::memcpy(&w, words + i, 4);
    __atomic_store_n(reinterpret_cast<uint32_t*>(base + i * stride), w, __ATOMIC_RELAXED);
  }
  munmap(mem, length);
  return env.Undefined();
}

// deleteBatch(fd, keys, count) -> count deleted; a missing key stops the
// batch with ENOENT, which is reported with how far it got.
Napi::Value DeleteBatch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0);
  auto keys = ArgBuffer(info, 1, "keys");
  uint32_t n = ArgU32(info, 2, "count");
  DECLARE_LIBBPF_OPTS(bpf_map_batch_opts, opts);
  int err = bpf_map_delete_batch(fd, keys.Data(), &n, &opts);
  if (err) ThrowErrno(env, "map delete batch (" + std::to_string(n) + " done)", ErrnoOf(err));
  return Napi::Number::New(env, n);
}

// createMap(type, name, keySize, valueSize, maxEntries, flags, innerMapFd?) -> fd
Napi::Value CreateMap(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t type = ArgU32(info, 0, "type");
  std::string name = ArgString(info, 1, "name");
  DECLARE_LIBBPF_OPTS(bpf_map_create_opts, opts);
  opts.map_flags = ArgU32(info, 5, "flags");
  if (!IsAbsent(info, 6)) opts.inner_map_fd = ArgU32(info, 6, "innerMapFd");
  LibbpfLog::Clear();
  int fd =
      bpf_map_create(static_cast<enum bpf_map_type>(type), name.c_str(), ArgU32(info, 2, "keySize"),
                     ArgU32(info, 3, "valueSize"), ArgU32(info, 4, "maxEntries"), &opts);
  if (fd < 0) ThrowErrno(env, "create map '" + name + "'", ErrnoOf(fd));
  return Napi::Number::New(env, fd);
}

Napi::Value MapFdById(const Napi::CallbackInfo& info) {
  int fd = bpf_map_get_fd_by_id(ArgU32(info, 0, "id"));
  if (fd < 0) ThrowErrno(info.Env(), "open map by id", ErrnoOf(fd));
  return Napi::Number::New(info.Env(), fd);
}

Napi::Value ProgFdById(const Napi::CallbackInfo& info) {
  int fd = bpf_prog_get_fd_by_id(ArgU32(info, 0, "id"));
  if (fd < 0) ThrowErrno(info.Env(), "open program by id", ErrnoOf(fd));
  return Napi::Number::New(info.Env(), fd);
}

Napi::Value NumPossibleCpus(const Napi::CallbackInfo& info) {
  int n = libbpf_num_possible_cpus();
  if (n < 0) ThrowErrno(info.Env(), "count possible CPUs", ErrnoOf(n));
  return Napi::Number::New(info.Env(), n);
}

}  // namespace

void InitMaps(Napi::Env env, Napi::Object exports) {
  exports.Set("mapInfo", Napi::Function::New(env, MapInfo));
  exports.Set("progInfo", Napi::Function::New(env, ProgInfo));
  exports.Set("mapLookup", Napi::Function::New(env, Lookup));
  exports.Set("mapUpdate", Napi::Function::New(env, Update));
  exports.Set("mapDelete", Napi::Function::New(env, Delete));
  exports.Set("mapNextKey", Napi::Function::New(env, NextKey));
  exports.Set("mapLookupBatch", Napi::Function::New(env, LookupBatch));
  exports.Set("mapUpdateBatch", Napi::Function::New(env, UpdateBatch));
  exports.Set("mapDeleteBatch", Napi::Function::New(env, DeleteBatch));
  exports.Set("mapWriteMapped", Napi::Function::New(env, WriteMapped));
  exports.Set("mapWriteMappedWords", Napi::Function::New(env, WriteMappedWords));
  exports.Set("createMap", Napi::Function::New(env, CreateMap));
  exports.Set("mapFdById", Napi::Function::New(env, MapFdById));
  exports.Set("progFdById", Napi::Function::New(env, ProgFdById));
  exports.Set("numPossibleCpus", Napi::Function::New(env, NumPossibleCpus));
}

}  // namespace xlb
