// Everything else the agent needs from the kernel that Node does not offer:
// BPF filesystem pins, descriptor closing, entering network namespaces, TCP
// MD5 signatures for BGP sessions, and classic BPF socket filters (the BFD
// received-TTL check).
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "common.h"

namespace xlb {
namespace {

Napi::Value ObjPin(const Napi::CallbackInfo& info) {
  int fd = ArgFd(info, 0);
  std::string path = ArgString(info, 1, "path");
  int err = bpf_obj_pin(fd, path.c_str());
  if (err) ThrowErrno(info.Env(), "pin to " + path, ErrnoOf(err));
  return info.Env().Undefined();
}

Napi::Value ObjGet(const Napi::CallbackInfo& info) {
  std::string path = ArgString(info, 0, "path");
  int fd = bpf_obj_get(path.c_str());
  if (fd < 0) ThrowErrno(info.Env(), "open pinned object " + path, ErrnoOf(fd));
  return Napi::Number::New(info.Env(), fd);
}

Napi::Value CloseFd(const Napi::CallbackInfo& info) {
  if (close(ArgFd(info, 0)) != 0) ThrowErrno(info.Env(), "close", errno);
  return info.Env().Undefined();
}

// netnsEnter(path) -> descriptor of the namespace the thread was in.
// setns() moves only the calling thread, which is the JavaScript thread:
// callers must restore before yielding to the event loop.
Napi::Value NetnsEnter(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = ArgString(info, 0, "path");
  int old = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  if (old < 0) ThrowErrno(env, "open current network namespace", errno);
  int target = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (target < 0) {
    int e = errno;
    close(old);
    ThrowErrno(env, "open network namespace " + path, e);
  }
  int rc = setns(target, CLONE_NEWNET);
  int e = errno;
  close(target);
  if (rc != 0) {
    close(old);
    ThrowErrno(env, "enter network namespace " + path, e);
  }
  return Napi::Number::New(env, old);
}

Napi::Value NetnsRestore(const Napi::CallbackInfo& info) {
  int fd = ArgFd(info, 0);
  int rc = setns(fd, CLONE_NEWNET);
  int e = errno;
  close(fd);
  if (rc != 0) ThrowErrno(info.Env(), "return to the original network namespace", e);
  return info.Env().Undefined();
}

// tcpMd5(fd, family, addressBytes, key, prefixLen?) sets (or, with an empty
// key, removes) the RFC 2385 signature key for a peer on a socket. A
// listening socket passes the key on to the connections it accepts.
Napi::Value TcpMd5(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0);
  uint32_t family = ArgU32(info, 1, "family");
  auto addr = ArgBuffer(info, 2, "address");
  auto key = ArgBuffer(info, 3, "key");
  struct tcp_md5sig sig = {};
  if (family == 4 && addr.Length() == 4) {
    auto* sin = reinterpret_cast<sockaddr_in*>(&sig.tcpm_addr);
    sin->sin_family = AF_INET;
    memcpy(&sin->sin_addr, addr.Data(), 4);
  } else if (family == 6 && addr.Length() == 16) {
    auto* sin6 = reinterpret_cast<sockaddr_in6*>(&sig.tcpm_addr);
    sin6->sin6_family = AF_INET6;
    memcpy(&sin6->sin6_addr, addr.Data(), 16);
  } else {
    throw Napi::RangeError::New(env, "address must be 4 bytes (family 4) or 16 bytes (family 6)");
  }
  if (key.Length() > TCP_MD5SIG_MAXKEYLEN) {
    throw Napi::RangeError::New(
        env, "TCP MD5 key is at most " + std::to_string(TCP_MD5SIG_MAXKEYLEN) + " bytes");
  }
  sig.tcpm_keylen = static_cast<uint16_t>(key.Length());
  memcpy(sig.tcpm_key, key.Data(), key.Length());
  int opt = TCP_MD5SIG;
  if (!IsAbsent(info, 4)) {
    sig.tcpm_flags = TCP_MD5SIG_FLAG_PREFIX;
    sig.tcpm_prefixlen = static_cast<uint8_t>(ArgU32(info, 4, "prefixLen"));
    opt = TCP_MD5SIG_EXT;
  }
  if (setsockopt(fd, IPPROTO_TCP, opt, &sig, sizeof sig) != 0) {
    ThrowErrno(env, "set TCP_MD5SIG", errno);
  }
  return env.Undefined();
}

// setSockOptInt(fd, level, name, value): integer socket options Node lacks
// (IP_TTL and IP_MINTTL for GTSM, for instance).
Napi::Value SetSockOptInt(const Napi::CallbackInfo& info) {
  int fd = ArgFd(info, 0);
  int level = ArgI32(info, 1, "level");
  int name = ArgI32(info, 2, "name");
  int value = ArgI32(info, 3, "value");
  if (setsockopt(fd, level, name, &value, sizeof value) != 0) {
    ThrowErrno(info.Env(),
               "setsockopt(" + std::to_string(level) + ", " + std::to_string(name) + ")", errno);
  }
  return info.Env().Undefined();
}

// getSockOptInt(fd, level, name) -> value: reads back an integer option, so
// a caller (or a test) can see that IP_TTL / IP_MINTTL took effect.
Napi::Value GetSockOptInt(const Napi::CallbackInfo& info) {
  int fd = ArgFd(info, 0);
  int level = ArgI32(info, 1, "level");
  int name = ArgI32(info, 2, "name");
  int value = 0;
  socklen_t len = sizeof value;
  if (getsockopt(fd, level, name, &value, &len) != 0) {
    ThrowErrno(info.Env(),
               "getsockopt(" + std::to_string(level) + ", " + std::to_string(name) + ")", errno);
  }
  return Napi::Number::New(info.Env(), value);
}

// tcpSocket(family) -> a new, unconnected, non-blocking TCP socket. Options
// that must be in place before the SYN (TCP_MD5SIG, IP_TTL) are set on it,
// then Node takes it over with new net.Socket({ fd }).connect(...).
Napi::Value TcpSocket(const Napi::CallbackInfo& info) {
  uint32_t family = ArgU32(info, 0, "family");
  if (family != 4 && family != 6) throw Napi::RangeError::New(info.Env(), "family must be 4 or 6");
  int fd = socket(family == 4 ? AF_INET : AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) ThrowErrno(info.Env(), "socket", errno);
  return Napi::Number::New(info.Env(), fd);
}

// attachSocketFilter(fd, program): SO_ATTACH_FILTER with a classic BPF
// program given as [code, jt, jf, k] rows. The kernel then drops what the
// program refuses before it is queued on the socket; no privilege is needed
// on a socket of one's own.
Napi::Value AttachSocketFilter(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0);
  if (info.Length() < 2 || !info[1].IsArray()) {
    throw Napi::TypeError::New(env, "program must be an array of [code, jt, jf, k] rows");
  }
  auto rows = info[1].As<Napi::Array>();
  if (rows.Length() == 0 || rows.Length() > BPF_MAXINSNS) {
    throw Napi::RangeError::New(
        env, "a socket filter has 1.." + std::to_string(BPF_MAXINSNS) + " instructions");
  }
  std::vector<sock_filter> insns(rows.Length());
  for (uint32_t i = 0; i < rows.Length(); i++) {
    Napi::Value row = rows[i];
    if (!row.IsArray() || row.As<Napi::Array>().Length() != 4) {
      throw Napi::TypeError::New(
          env, "instruction " + std::to_string(i) + " is not a [code, jt, jf, k] row");
    }
    auto r = row.As<Napi::Array>();
    auto field = [&](uint32_t j, double max) {
      Napi::Value v = r[j];
      double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -1;
      if (!(d >= 0 && d <= max) || d != static_cast<double>(static_cast<uint64_t>(d))) {
        throw Napi::RangeError::New(env, "instruction " + std::to_string(i) + " field " +
                                             std::to_string(j) + " is out of range");
      }
      return static_cast<uint64_t>(d);
    };
    insns[i].code = static_cast<uint16_t>(field(0, 0xffff));
    insns[i].jt = static_cast<uint8_t>(field(1, 0xff));
    insns[i].jf = static_cast<uint8_t>(field(2, 0xff));
    insns[i].k = static_cast<uint32_t>(field(3, 0xffffffff));
  }
  sock_fprog prog = {static_cast<unsigned short>(insns.size()), insns.data()};
  if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof prog) != 0) {
    ThrowErrno(env, "set SO_ATTACH_FILTER", errno);
  }
  return env.Undefined();
}

// socketDrops(fd) -> the socket's drop count (SO_MEMINFO, SK_MEMINFO_DROPS):
// packets the kernel threw away for this socket, a socket filter's verdict
// or a full receive buffer among them.
Napi::Value SocketDrops(const Napi::CallbackInfo& info) {
  int fd = ArgFd(info, 0);
  uint32_t meminfo[SK_MEMINFO_VARS] = {};
  socklen_t len = sizeof meminfo;
  if (getsockopt(fd, SOL_SOCKET, SO_MEMINFO, meminfo, &len) != 0) {
    ThrowErrno(info.Env(), "getsockopt(SO_MEMINFO)", errno);
  }
  if (len <= SK_MEMINFO_DROPS * sizeof(uint32_t)) {
    throw Napi::Error::New(info.Env(), "SO_MEMINFO did not report a drop count");
  }
  return Napi::Number::New(info.Env(), meminfo[SK_MEMINFO_DROPS]);
}

// pinThreadToCpu(cpu?) -> cpu: keeps the calling thread (Node's main thread)
// on one CPU, by default the one it runs on now. BPF_PROG_TEST_RUN runs XDP
// on the caller's CPU, and per-CPU state (the flow cache) is only seen again
// from the same CPU.
Napi::Value PinThreadToCpu(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int cpu = IsAbsent(info, 0) ? sched_getcpu() : static_cast<int>(ArgU32(info, 0, "cpu"));
  if (cpu < 0) ThrowErrno(env, "sched_getcpu", errno);
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  if (sched_setaffinity(0, sizeof set, &set) != 0) ThrowErrno(env, "sched_setaffinity", errno);
  return Napi::Number::New(env, cpu);
}

Napi::Value LibbpfVersion(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), libbpf_version_string());
}

}  // namespace

void InitSystem(Napi::Env env, Napi::Object exports) {
  exports.Set("objPin", Napi::Function::New(env, ObjPin));
  exports.Set("objGet", Napi::Function::New(env, ObjGet));
  exports.Set("closeFd", Napi::Function::New(env, CloseFd));
  exports.Set("netnsEnter", Napi::Function::New(env, NetnsEnter));
  exports.Set("netnsRestore", Napi::Function::New(env, NetnsRestore));
  exports.Set("tcpMd5", Napi::Function::New(env, TcpMd5));
  exports.Set("setSockOptInt", Napi::Function::New(env, SetSockOptInt));
  exports.Set("getSockOptInt", Napi::Function::New(env, GetSockOptInt));
  exports.Set("tcpSocket", Napi::Function::New(env, TcpSocket));
  exports.Set("attachSocketFilter", Napi::Function::New(env, AttachSocketFilter));
  exports.Set("socketDrops", Napi::Function::New(env, SocketDrops));
  exports.Set("libbpfVersion", Napi::Function::New(env, LibbpfVersion));
  exports.Set("pinThreadToCpu", Napi::Function::New(env, PinThreadToCpu));
}

}  // namespace xlb
