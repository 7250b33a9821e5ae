// Attaching programs to interfaces: XDP (native or generic) and tc clsact.
// Interface indexes are those of the calling thread's network namespace.
#include <bpf/libbpf.h>
#include <linux/if_link.h>
#include <net/if.h>

#include <cerrno>

#include "common.h"

namespace xlb {
namespace {

// xdpAttach(ifindex, progFd, flags, expectedOldProgFd?)
Napi::Value XdpAttach(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int ifindex = static_cast<int>(ArgU32(info, 0, "ifindex"));
  int progFd = ArgFd(info, 1);
  uint32_t flags = ArgU32(info, 2, "flags");
  DECLARE_LIBBPF_OPTS(bpf_xdp_attach_opts, opts);
  if (!IsAbsent(info, 3)) {
    // Atomic replace: the kernel refuses if another program got there first.
    opts.old_prog_fd = ArgFd(info, 3);
    flags |= XDP_FLAGS_REPLACE;
  }
  LibbpfLog::Clear();
  int err = bpf_xdp_attach(ifindex, progFd, flags, &opts);
  if (err) ThrowErrno(env, "attach XDP to ifindex " + std::to_string(ifindex), ErrnoOf(err));
  return env.Undefined();
}

Napi::Value XdpDetach(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int ifindex = static_cast<int>(ArgU32(info, 0, "ifindex"));
  LibbpfLog::Clear();
  int err = bpf_xdp_detach(ifindex, ArgU32(info, 1, "flags"), nullptr);
  if (err) ThrowErrno(env, "detach XDP from ifindex " + std::to_string(ifindex), ErrnoOf(err));
  return env.Undefined();
}

// xdpQuery(ifindex) -> { mode, progId, driverProgId, genericProgId, offloadProgId }
Napi::Value XdpQuery(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int ifindex = static_cast<int>(ArgU32(info, 0, "ifindex"));
  DECLARE_LIBBPF_OPTS(bpf_xdp_query_opts, opts);
  LibbpfLog::Clear();
  int err = bpf_xdp_query(ifindex, 0, &opts);
  if (err) ThrowErrno(env, "query XDP on ifindex " + std::to_string(ifindex), ErrnoOf(err));
  Napi::Object o = Napi::Object::New(env);
  o.Set("mode", opts.attach_mode);
  o.Set("progId", opts.prog_id);
  o.Set("driverProgId", opts.drv_prog_id);
  o.Set("genericProgId", opts.skb_prog_id);
  o.Set("offloadProgId", opts.hw_prog_id);
  return o;
}

bpf_tc_attach_point Direction(const Napi::CallbackInfo& info, size_t i) {
  std::string d = ArgString(info, i, "direction");
  if (d == "ingress") return BPF_TC_INGRESS;
  if (d == "egress") return BPF_TC_EGRESS;
  throw Napi::TypeError::New(info.Env(), "direction must be 'ingress' or 'egress'");
}

// tcAttach(ifindex, direction, progFd, handle, priority) -> { handle, priority }
// Creates the clsact qdisc when missing; replaces a filter with the same
// handle and priority, so re-attaching is idempotent.
Napi::Value TcAttach(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  DECLARE_LIBBPF_OPTS(bpf_tc_hook, hook);
  hook.ifindex = static_cast<int>(ArgU32(info, 0, "ifindex"));
  hook.attach_point = Direction(info, 1);
  LibbpfLog::Clear();
  int err = bpf_tc_hook_create(&hook);
  if (err && ErrnoOf(err) != EEXIST) ThrowErrno(env, "create clsact qdisc", ErrnoOf(err));
  DECLARE_LIBBPF_OPTS(bpf_tc_opts, opts);
  opts.prog_fd = ArgFd(info, 2);
  opts.handle = ArgU32(info, 3, "handle");
  opts.priority = ArgU32(info, 4, "priority");
  opts.flags = BPF_TC_F_REPLACE;
  LibbpfLog::Clear();
  err = bpf_tc_attach(&hook, &opts);
  if (err) ThrowErrno(env, "attach tc program", ErrnoOf(err));
  Napi::Object o = Napi::Object::New(env);
  o.Set("handle", opts.handle);
  o.Set("priority", opts.priority);
  o.Set("progId", opts.prog_id);
  return o;
}

// tcDetach(ifindex, direction, handle, priority) -> true, or false when no such filter
Napi::Value TcDetach(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  DECLARE_LIBBPF_OPTS(bpf_tc_hook, hook);
  hook.ifindex = static_cast<int>(ArgU32(info, 0, "ifindex"));
  hook.attach_point = Direction(info, 1);
  DECLARE_LIBBPF_OPTS(bpf_tc_opts, opts);
  opts.handle = ArgU32(info, 2, "handle");
  opts.priority = ArgU32(info, 3, "priority");
  LibbpfLog::Clear();
  int err = bpf_tc_detach(&hook, &opts);
  if (err) {
    int e = ErrnoOf(err);
    if (e == ENOENT) return Napi::Boolean::New(env, false);
    ThrowErrno(env, "detach tc program", e);
  }
  return Napi::Boolean::New(env, true);
}

// tcQuery(ifindex, direction, handle, priority) -> progId | 0 when none
Napi::Value TcQuery(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  DECLARE_LIBBPF_OPTS(bpf_tc_hook, hook);
  hook.ifindex = static_cast<int>(ArgU32(info, 0, "ifindex"));
  hook.attach_point = Direction(info, 1);
  DECLARE_LIBBPF_OPTS(bpf_tc_opts, opts);
  opts.handle = ArgU32(info, 2, "handle");
  opts.priority = ArgU32(info, 3, "priority");
  LibbpfLog::Clear();
  int err = bpf_tc_query(&hook, &opts);
  if (err) {
    int e = ErrnoOf(err);
    if (e == ENOENT || e == EINVAL) return Napi::Number::New(env, 0);
    ThrowErrno(env, "query tc program", e);
  }
  return Napi::Number::New(env, opts.prog_id);
}

// tcRemoveClsact(ifindex): removes the clsact qdisc with every filter on it.
Napi::Value TcRemoveClsact(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  DECLARE_LIBBPF_OPTS(bpf_tc_hook, hook);
  hook.ifindex = static_cast<int>(ArgU32(info, 0, "ifindex"));
  hook.attach_point = static_cast<bpf_tc_attach_point>(BPF_TC_INGRESS | BPF_TC_EGRESS);
  LibbpfLog::Clear();
  int err = bpf_tc_hook_destroy(&hook);
  if (err) {
    int e = ErrnoOf(err);
    if (e == ENOENT || e == EINVAL) return Napi::Boolean::New(env, false);
    ThrowErrno(env, "remove clsact qdisc", e);
  }
  return Napi::Boolean::New(env, true);
}

Napi::Value IfIndex(const Napi::CallbackInfo& info) {
  std::string name = ArgString(info, 0, "interface");
  unsigned idx = if_nametoindex(name.c_str());
  if (idx == 0) ThrowErrno(info.Env(), "no interface '" + name + "' in this namespace", errno);
  return Napi::Number::New(info.Env(), idx);
}

}  // namespace

void InitAttach(Napi::Env env, Napi::Object exports) {
  exports.Set("xdpAttach", Napi::Function::New(env, XdpAttach));
  exports.Set("xdpDetach", Napi::Function::New(env, XdpDetach));
  exports.Set("xdpQuery", Napi::Function::New(env, XdpQuery));
  exports.Set("tcAttach", Napi::Function::New(env, TcAttach));
  exports.Set("tcDetach", Napi::Function::New(env, TcDetach));
  exports.Set("tcQuery", Napi::Function::New(env, TcQuery));
  exports.Set("tcRemoveClsact", Napi::Function::New(env, TcRemoveClsact));
  exports.Set("ifIndex", Napi::Function::New(env, IfIndex));
}

}  // namespace xlb
