// BpfObject: one ELF object file through its life: open, adjust (read-only
// globals, autoload, map sizes, adopted map descriptors), load, hand out
// duplicated descriptors for its programs and maps, close.
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstring>
#include <vector>

#include "common.h"

namespace xlb {
namespace {

bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

int DupFd(Napi::Env env, int fd, const std::string& what) {
  int copy = fcntl(fd, F_DUPFD_CLOEXEC, 3);
  if (copy < 0) ThrowErrno(env, what, errno);
  return copy;
}

struct GlobalVar {
  std::string section;
  std::string name;
  uint32_t offset;
  uint32_t size;
};

class BpfObject : public Napi::ObjectWrap<BpfObject> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "BpfObject",
                       {
                           InstanceMethod("programs", &BpfObject::Programs),
                           InstanceMethod("maps", &BpfObject::Maps),
                           InstanceMethod("globals", &BpfObject::Globals),
                           InstanceMethod("setGlobal", &BpfObject::SetGlobal),
                           InstanceMethod("setAutoload", &BpfObject::SetAutoload),
                           InstanceMethod("setMapMaxEntries", &BpfObject::SetMapMaxEntries),
                           InstanceMethod("reuseMapFd", &BpfObject::ReuseMapFd),
                           InstanceMethod("load", &BpfObject::Load),
                           InstanceMethod("programFd", &BpfObject::ProgramFd),
                           InstanceMethod("mapFd", &BpfObject::MapFd),
                           InstanceMethod("close", &BpfObject::Close),
                       });
  }

  explicit BpfObject(const Napi::CallbackInfo& info) : Napi::ObjectWrap<BpfObject>(info) {
    std::string path = ArgString(info, 0, "path");
    std::string objName;
    if (!IsAbsent(info, 1)) objName = ArgString(info, 1, "objectName");
    LibbpfLog::Clear();
    struct bpf_object_open_opts o = {};
    o.sz = sizeof o;
    if (!objName.empty()) o.object_name = objName.c_str();
    obj_ = bpf_object__open_file(path.c_str(), &o);
    int err = libbpf_get_error(obj_);
    if (err) {
      obj_ = nullptr;
      ThrowErrno(info.Env(), "open BPF object " + path, -err);
    }
    LibbpfLog::Clear();
  }

  ~BpfObject() override {
    if (obj_) bpf_object__close(obj_);
  }

 private:
  bpf_object* Obj(Napi::Env env) {
    if (!obj_) throw Napi::Error::New(env, "BPF object is closed");
    return obj_;
  }

  void RequireNotLoaded(Napi::Env env, const char* what) {
    if (loaded_) {
      throw Napi::Error::New(env, std::string(what) + " is only possible before load()");
    }
  }

  bpf_program* FindProgram(Napi::Env env, const std::string& name) {
    bpf_program* prog = bpf_object__find_program_by_name(Obj(env), name.c_str());
    if (!prog) throw Napi::Error::New(env, "no program named '" + name + "' in the object");
    return prog;
  }

  bpf_map* FindMap(Napi::Env env, const std::string& name) {
    bpf_map* map = bpf_object__find_map_by_name(Obj(env), name.c_str());
    if (!map) throw Napi::Error::New(env, "no map named '" + name + "' in the object");
    return map;
  }

  std::vector<GlobalVar> CollectGlobals(Napi::Env env) {
    std::vector<GlobalVar> out;
    const struct btf* btf = bpf_object__btf(Obj(env));
    if (!btf) return out;
    uint32_t n = btf__type_cnt(btf);
    for (uint32_t id = 1; id < n; id++) {
      const struct btf_type* t = btf__type_by_id(btf, id);
      if (!btf_is_datasec(t)) continue;
      std::string section = btf__name_by_offset(btf, t->name_off);
      const struct btf_var_secinfo* vs = btf_var_secinfos(t);
      for (uint16_t i = 0; i < btf_vlen(t); i++, vs++) {
        const struct btf_type* var = btf__type_by_id(btf, vs->type);
        if (!btf_is_var(var)) continue;
        out.push_back({section, btf__name_by_offset(btf, var->name_off), vs->offset, vs->size});
      }
    }
    return out;
  }

  bpf_map* SectionMap(Napi::Env env, const std::string& section) {
    bpf_map* map;
    bpf_object__for_each_map(map, Obj(env)) {
      if (bpf_map__is_internal(map) && EndsWith(bpf_map__name(map), section)) return map;
    }
    throw Napi::Error::New(env, "no internal map backs section " + section);
  }

  Napi::Value Programs(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Array arr = Napi::Array::New(env);
    bpf_program* prog;
    uint32_t i = 0;
    bpf_object__for_each_program(prog, Obj(env)) {
      Napi::Object o = Napi::Object::New(env);
      o.Set("name", bpf_program__name(prog));
      o.Set("section", bpf_program__section_name(prog));
      o.Set("type", static_cast<double>(bpf_program__type(prog)));
      o.Set("autoload", bpf_program__autoload(prog));
      arr.Set(i++, o);
    }
    return arr;
  }

  Napi::Value Maps(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Array arr = Napi::Array::New(env);
    bpf_map* map;
    uint32_t i = 0;
    bpf_object__for_each_map(map, Obj(env)) {
      Napi::Object o = Napi::Object::New(env);
      o.Set("name", bpf_map__name(map));
      o.Set("type", static_cast<double>(bpf_map__type(map)));
      o.Set("keySize", bpf_map__key_size(map));
      o.Set("valueSize", bpf_map__value_size(map));
      o.Set("maxEntries", bpf_map__max_entries(map));
      o.Set("internal", bpf_map__is_internal(map));
      arr.Set(i++, o);
    }
    return arr;
  }

  Napi::Value Globals(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Array arr = Napi::Array::New(env);
    uint32_t i = 0;
    for (const GlobalVar& g : CollectGlobals(env)) {
      Napi::Object o = Napi::Object::New(env);
      o.Set("section", g.section);
      o.Set("name", g.name);
      o.Set("offset", g.offset);
      o.Set("size", g.size);
      arr.Set(i++, o);
    }
    return arr;
  }

  // Writes a global's initial value. Read-only globals (`const volatile` in
  // .rodata) become constants the verifier folds, so this is how runtime
  // settings reach the datapath without #ifdef builds.
  Napi::Value SetGlobal(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    std::string name = ArgString(info, 0, "name");
    Napi::Buffer<uint8_t> value = ArgBuffer(info, 1, "value");
    RequireNotLoaded(env, "setting a global");
    for (const GlobalVar& g : CollectGlobals(env)) {
      if (g.name != name) continue;
      if (value.Length() != g.size) {
        throw Napi::RangeError::New(env, "global '" + name + "' is " + std::to_string(g.size) +
                                             " bytes, value has " + std::to_string(value.Length()));
      }
      bpf_map* map = SectionMap(env, g.section);
      size_t size = 0;
      void* data = const_cast<void*>(bpf_map__initial_value(map, &size));
      if (!data || g.offset + g.size > size) {
        throw Napi::Error::New(env, "section " + g.section + " has no writable initial value");
      }
      memcpy(static_cast<uint8_t*>(data) + g.offset, value.Data(), g.size);
      return env.Undefined();
    }
    throw Napi::Error::New(env, "no global variable named '" + name + "' in the object");
  }

  Napi::Value SetAutoload(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    bpf_program* prog = FindProgram(env, ArgString(info, 0, "program"));
    RequireNotLoaded(env, "setting autoload");
    int err = bpf_program__set_autoload(prog, info[1].ToBoolean().Value());
    if (err) ThrowErrno(env, "set autoload", ErrnoOf(err));
    return env.Undefined();
  }

  Napi::Value SetMapMaxEntries(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    bpf_map* map = FindMap(env, ArgString(info, 0, "map"));
    RequireNotLoaded(env, "resizing a map");
    int err = bpf_map__set_max_entries(map, ArgU32(info, 1, "maxEntries"));
    if (err) ThrowErrno(env, "set max entries", ErrnoOf(err));
    return env.Undefined();
  }

  // Makes the object use an existing map (for example one pinned by an
  // earlier agent) instead of creating a new one at load.
  Napi::Value ReuseMapFd(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    std::string name = ArgString(info, 0, "map");
    bpf_map* map = FindMap(env, name);
    RequireNotLoaded(env, "reusing a map");
    LibbpfLog::Clear();
    int err = bpf_map__reuse_fd(map, ArgFd(info, 1));
    if (err) ThrowErrno(env, "reuse map fd for '" + name + "'", ErrnoOf(err));
    return env.Undefined();
  }

  Napi::Value Load(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    RequireNotLoaded(env, "load");
    LibbpfLog::Clear();
    int err = bpf_object__load(Obj(env));
    if (err) ThrowErrno(env, "load BPF object", ErrnoOf(err));
    LibbpfLog::Clear();
    loaded_ = true;
    return env.Undefined();
  }

  Napi::Value ProgramFd(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    std::string name = ArgString(info, 0, "program");
    bpf_program* prog = FindProgram(env, name);
    int fd = bpf_program__fd(prog);
    if (fd < 0) throw Napi::Error::New(env, "program '" + name + "' is not loaded");
    return Napi::Number::New(env, DupFd(env, fd, "dup program fd"));
  }

  Napi::Value MapFd(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    std::string name = ArgString(info, 0, "map");
    bpf_map* map = FindMap(env, name);
    int fd = bpf_map__fd(map);
    if (fd < 0) throw Napi::Error::New(env, "map '" + name + "' is not created yet (load first)");
    return Napi::Number::New(env, DupFd(env, fd, "dup map fd"));
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    if (obj_) bpf_object__close(obj_);
    obj_ = nullptr;
    return info.Env().Undefined();
  }

  bpf_object* obj_ = nullptr;
  bool loaded_ = false;
};

}  // namespace

void InitObject(Napi::Env env, Napi::Object exports) {
  exports.Set("BpfObject", BpfObject::Define(env));
}

}  // namespace xlb
