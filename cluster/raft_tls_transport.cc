// SPDX-License-Identifier: Apache-2.0
#include "cluster/raft_tls_transport.h"

#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

// libraft's headers declare C functions without extern "C".
extern "C" {
#include <raft.h>
#include <raft/uv.h>
}

#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "node/base/host_port.h"
#include "node/base/log.h"
#include "node/base/log_limiter.h"

namespace mqtt::cluster {
namespace {

constexpr uint64_t kProtocolVersion = 1;  // of the preamble (raft_uv_tcp's is 1 too)
constexpr size_t kPreambleHeader = 24;    // version, id, address length
constexpr size_t kAckSize = 8;            // the accepting side's answer: u64 version
constexpr size_t kMaxAddress = 512;       // padded; a longer preamble is refused
constexpr size_t kReadChunk = 16 * 1024;
// Handshake failures are worth a warning, but libraft retries a peer every connect_retry_delay:
// at most one warning per interval, the rest at debug level.
constexpr absl::Duration kWarnInterval = absl::Seconds(10);

std::string SslErrors() {
  std::string text;
  char buf[256];
  for (unsigned long e = ERR_get_error(); e != 0; e = ERR_get_error()) {
    ERR_error_string_n(e, buf, sizeof(buf));
    absl::StrAppend(&text, text.empty() ? "" : "; ", buf);
  }
  return text.empty() ? "no OpenSSL error" : text;
}

struct SslCtxFree {
  void operator()(SSL_CTX* ctx) const { SSL_CTX_free(ctx); }
};
using SslCtxPtr = std::unique_ptr<SSL_CTX, SslCtxFree>;

absl::Status FileError(const char* what, const std::string& path) {
  return absl::InvalidArgumentError(
      absl::StrCat("raft TLS: cannot load the ", what, " ", path, ": ", SslErrors()));
}

// Both roles alike: present our certificate, require the peer's, verify it against the CA and
// require `server_name` among its DNS SANs (never the subject CN: the gRPC side checks SANs).
absl::StatusOr<SslCtxPtr> LoadContext(const ClusterTlsFiles& f) {
  ERR_clear_error();
  SslCtxPtr ctx(SSL_CTX_new(TLS_method()));
  if (ctx == nullptr) return absl::InternalError("raft TLS: SSL_CTX_new: " + SslErrors());
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  SSL_CTX_set_num_tickets(ctx.get(), 0);  // no resumption: connections are long-lived
  if (SSL_CTX_use_certificate_chain_file(ctx.get(), f.cert_file.c_str()) != 1) {
    return FileError("certificate", f.cert_file);
  }
  if (SSL_CTX_use_PrivateKey_file(ctx.get(), f.key_file.c_str(), SSL_FILETYPE_PEM) != 1 ||
      SSL_CTX_check_private_key(ctx.get()) != 1) {
    return FileError("key", f.key_file);
  }
  if (SSL_CTX_load_verify_locations(ctx.get(), f.ca_file.c_str(), nullptr) != 1) {
    return FileError("CA", f.ca_file);
  }
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  X509_VERIFY_PARAM* param = SSL_CTX_get0_param(ctx.get());
  X509_VERIFY_PARAM_set_hostflags(
      param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS | X509_CHECK_FLAG_NEVER_CHECK_SUBJECT);
  if (X509_VERIFY_PARAM_set1_host(param, f.server_name.data(), f.server_name.size()) != 1) {
    return absl::InvalidArgumentError("raft TLS: bad server name " + f.server_name);
  }
  return ctx;
}

void PutU64(std::string* out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

uint64_t GetU64(const char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

// The connecting side's preamble (see the header).
std::string Preamble(raft_id id, const std::string& address) {
  const size_t padded = (address.size() + 1 + 7) / 8 * 8;  // at least one NUL
  std::string out;
  PutU64(&out, kProtocolVersion);
  PutU64(&out, id);
  PutU64(&out, padded);
  out += address;
  out.resize(kPreambleHeader + padded, '\0');
  return out;
}

struct WriteReq {
  uv_write_t req;
  std::string data;
};

// Queues `data` on `stream`; the request frees itself (a handle's close cancels it).
int Write(uv_stream_t* stream, std::string data) {
  auto* w = new WriteReq;
  w->data = std::move(data);
  uv_buf_t buf = uv_buf_init(w->data.data(), static_cast<unsigned>(w->data.size()));
  w->req.data = w;
  const int rv = uv_write(&w->req, stream, &buf, 1,
                          [](uv_write_t* r, int) { delete static_cast<WriteReq*>(r->data); });
  if (rv != 0) delete w;
  return rv;
}

struct Conn;

// The transport's state (raft_uv_transport::impl). Invariant: every Conn in `conns` is alive;
// a Conn leaves the set (and is deleted) once its handles are closed and no request is pending.
struct Transport {
  uv_loop_t* loop = nullptr;
  raft_uv_transport* t = nullptr;
  RaftTlsOptions options;
  raft_id id = 0;
  std::string address;
  SslCtxPtr ctx;
  absl::Time loaded_at;
  LogLimiter warnings{kWarnInterval};  // Warn's: the others go to the debug level

  uv_tcp_t listener{};
  bool listener_open = false;  // initialized and not yet closed
  raft_uv_accept_cb accept_cb = nullptr;
  absl::flat_hash_set<Conn*> conns;
  bool closing = false;
  raft_uv_transport_close_cb close_cb = nullptr;

  SSL_CTX* Context();
  void Warn(const std::string& message);
  void MaybeFinishClose();
};

// One TCP connection, accepted or dialled, until it and the pipe to libraft are closed.
struct Conn {
  enum class State { kResolving, kConnecting, kHandshake, kPreamble, kOpen, kClosing };

  Transport* tr = nullptr;
  bool client = false;
  State state = State::kHandshake;
  std::string peer;  // for logs

  uv_tcp_t tcp{};
  uv_timer_t timer{};  // the handshake deadline
  uv_pipe_t local{};   // our end of the socketpair, once handed over
  bool local_open = false;
  int handles = 0;         // initialized handles whose close callback has not run
  bool resolving = false;  // `gai` in flight
  uv_getaddrinfo_t gai{};
  uv_connect_t connect{};
  int raft_fd = -1;  // libraft's end before it is opened as its stream

  SSL* ssl = nullptr;
  BIO* net_in = nullptr;           // ciphertext from the peer, into SSL
  BIO* net_out = nullptr;          // ciphertext from SSL, to the peer
  raft_uv_connect* req = nullptr;  // client: until its callback is called
  raft_uv_connect_cb cb = nullptr;
  std::string preamble;  // plaintext received before the preamble (server) or ack (client)
  char net_buf[kReadChunk];
  char local_buf[kReadChunk];
};

void Fail(Conn* c, const std::string& why, bool warn);
void Close(Conn* c);
void Advance(Conn* c);

SSL_CTX* Transport::Context() {
  if (absl::Now() - loaded_at >= options.reload_interval) {
    absl::StatusOr<SslCtxPtr> fresh = LoadContext(options.files);
    if (fresh.ok()) {
      ctx = std::move(*fresh);  // SSLs made from the old one hold a reference to it
    } else {
      Warn(absl::StrCat(fresh.status().message(), "; keeping the files read before"));
    }
    loaded_at = absl::Now();
  }
  return ctx.get();
}

void Transport::Warn(const std::string& message) {
  if (warnings.Allow()) {
    MQTT_LOG_WARN("registry: raft TLS: %s", message);
  } else {
    MQTT_LOG_DEBUG("registry: raft TLS: %s", message);
  }
}

void Transport::MaybeFinishClose() {
  if (!closing || listener_open || !conns.empty() || close_cb == nullptr) return;
  raft_uv_transport_close_cb done = close_cb;
  close_cb = nullptr;
  done(t);
}

Conn* FromHandle(void* handle) {
  return static_cast<Conn*>(static_cast<uv_handle_t*>(handle)->data);
}

// Deletes `c` once nothing of libuv refers to it; a dialled connection that never reached
// libraft fails its request first (RAFT_CANCELED when the transport closes, as raft_uv_tcp).
void MaybeDestroy(Conn* c) {
  if (c->handles > 0 || c->resolving) return;
  Transport* tr = c->tr;
  if (c->req != nullptr) {
    raft_uv_connect* req = c->req;
    c->req = nullptr;
    c->cb(req, nullptr, tr->closing ? RAFT_CANCELED : RAFT_NOCONNECTION);
  }
  SSL_free(c->ssl);  // frees both BIOs
  tr->conns.erase(c);
  delete c;
  tr->MaybeFinishClose();
}

void OnHandleClosed(uv_handle_t* h) {
  Conn* c = FromHandle(h);
  --c->handles;
  MaybeDestroy(c);
}

void Close(Conn* c) {
  if (c->state == Conn::State::kClosing) return;
  c->state = Conn::State::kClosing;
  uv_close(reinterpret_cast<uv_handle_t*>(&c->tcp), OnHandleClosed);
  uv_close(reinterpret_cast<uv_handle_t*>(&c->timer), OnHandleClosed);
  if (c->local_open) uv_close(reinterpret_cast<uv_handle_t*>(&c->local), OnHandleClosed);
  c->local_open = false;
  if (c->raft_fd >= 0) ::close(c->raft_fd);
  c->raft_fd = -1;
  if (c->resolving) uv_cancel(reinterpret_cast<uv_req_t*>(&c->gai));
}

void Fail(Conn* c, const std::string& why, bool warn) {
  if (c->state == Conn::State::kClosing) return;
  const std::string message =
      absl::StrCat(c->client ? "connection to " : "connection from ", c->peer, ": ", why);
  if (warn) {
    c->tr->Warn(message);
  } else {
    MQTT_LOG_DEBUG("registry: raft TLS: %s", message);
  }
  Close(c);
}

Conn* NewConn(Transport* tr, bool client) {
  auto* c = new Conn;
  c->tr = tr;
  c->client = client;
  uv_tcp_init(tr->loop, &c->tcp);
  uv_timer_init(tr->loop, &c->timer);
  c->tcp.data = c->timer.data = c->gai.data = c->connect.data = c;
  c->handles = 2;
  tr->conns.insert(c);
  const uint64_t ms =
      static_cast<uint64_t>(absl::ToInt64Milliseconds(tr->options.handshake_timeout));
  uv_timer_start(
      &c->timer,
      [](uv_timer_t* h) {
        Conn* timed_out = FromHandle(h);
        Fail(timed_out, "no TLS handshake and preamble in time", !timed_out->client);
      },
      ms, 0);
  return c;
}

// ---- Bytes in both directions -----------------------------------------------------------------

void FlushNet(Conn* c) {
  while (c->state != Conn::State::kClosing && BIO_ctrl_pending(c->net_out) > 0) {
    std::string data(BIO_ctrl_pending(c->net_out), '\0');
    const int n = BIO_read(c->net_out, data.data(), static_cast<int>(data.size()));
    if (n <= 0) return;
    data.resize(static_cast<size_t>(n));
    const int rv = Write(reinterpret_cast<uv_stream_t*>(&c->tcp), std::move(data));
    if (rv != 0) Fail(c, absl::StrCat("write: ", uv_strerror(rv)), false);
  }
}

void AllocNet(uv_handle_t* h, size_t, uv_buf_t* buf) {
  *buf = uv_buf_init(FromHandle(h)->net_buf, sizeof(Conn::net_buf));
}

void AllocLocal(uv_handle_t* h, size_t, uv_buf_t* buf) {
  *buf = uv_buf_init(FromHandle(h)->local_buf, sizeof(Conn::local_buf));
}

// Plaintext from libraft: encrypted to the peer. EOF: libraft closed its stream.
void OnLocalRead(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
  Conn* c = FromHandle(stream);
  if (nread < 0) return Fail(c, "closed by raft", false);
  if (nread == 0) return;
  ERR_clear_error();
  if (SSL_write(c->ssl, buf->base, static_cast<int>(nread)) <= 0) {
    return Fail(c, "TLS write: " + SslErrors(), false);
  }
  FlushNet(c);
}

// Gives libraft its end of a new socketpair as a stream (nullptr after a failure: `c` closes).
uv_stream_t* HandOver(Conn* c) {
  int fds[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
    Fail(c, absl::StrCat("socketpair: ", std::strerror(errno)), true);
    return nullptr;
  }
  c->raft_fd = fds[1];
  uv_pipe_init(c->tr->loop, &c->local, 0);
  c->local.data = c;
  c->local_open = true;
  ++c->handles;
  int rv = uv_pipe_open(&c->local, fds[0]);
  if (rv != 0) {
    ::close(fds[0]);  // not attached to the handle
    Fail(c, absl::StrCat("uv_pipe_open: ", uv_strerror(rv)), true);
    return nullptr;
  }
  auto* stream = static_cast<uv_pipe_t*>(raft_malloc(sizeof(uv_pipe_t)));
  if (stream == nullptr) {
    Fail(c, "no memory", true);
    return nullptr;
  }
  uv_pipe_init(c->tr->loop, stream, 0);
  if ((rv = uv_pipe_open(stream, c->raft_fd)) != 0) {
    uv_close(reinterpret_cast<uv_handle_t*>(stream), [](uv_handle_t* h) { raft_free(h); });
    Fail(c, absl::StrCat("uv_pipe_open: ", uv_strerror(rv)), true);
    return nullptr;
  }
  c->raft_fd = -1;  // the stream's now
  uv_read_start(reinterpret_cast<uv_stream_t*>(&c->local), AllocLocal, OnLocalRead);
  uv_timer_stop(&c->timer);
  c->state = Conn::State::kOpen;
  return reinterpret_cast<uv_stream_t*>(stream);
}

// Server: the preamble, then libraft's accept callback; bytes after it go to libraft.
void TakePreamble(Conn* c) {
  if (c->preamble.size() < kPreambleHeader) return;
  const char* p = c->preamble.data();
  const uint64_t version = GetU64(p), id = GetU64(p + 8), padded = GetU64(p + 16);
  if (version != kProtocolVersion || id == 0 || padded == 0 || padded % 8 != 0 ||
      padded > kMaxAddress) {
    return Fail(c, "bad preamble", true);
  }
  if (c->preamble.size() < kPreambleHeader + padded) return;
  const std::string address(p + kPreambleHeader, strnlen(p + kPreambleHeader, padded));
  std::string rest = c->preamble.substr(kPreambleHeader + padded);
  c->preamble.clear();
  if (c->tr->closing) return Close(c);
  std::string ack;
  PutU64(&ack, kProtocolVersion);
  if (SSL_write(c->ssl, ack.data(), static_cast<int>(ack.size())) <= 0) {
    return Fail(c, "TLS write: " + SslErrors(), false);
  }
  uv_stream_t* stream = HandOver(c);
  if (stream == nullptr) return;
  c->peer = absl::StrCat(address, " (", c->peer, ")");
  c->tr->accept_cb(c->tr->t, id, address.c_str(), stream);
  if (!rest.empty() && c->state == Conn::State::kOpen) {
    Write(reinterpret_cast<uv_stream_t*>(&c->local), std::move(rest));
  }
}

// Client: the server's ack, then libraft gets the stream (the server has verified our
// certificate by then: under TLS 1.3 our handshake ends before it does).
void TakeAck(Conn* c) {
  if (c->preamble.size() < kAckSize) return;
  if (GetU64(c->preamble.data()) != kProtocolVersion) return Fail(c, "bad acknowledgement", true);
  std::string rest = c->preamble.substr(kAckSize);
  c->preamble.clear();
  uv_stream_t* stream = HandOver(c);
  if (stream == nullptr) return;
  raft_uv_connect* req = c->req;
  c->req = nullptr;
  c->cb(req, stream, 0);
  if (!rest.empty() && c->state == Conn::State::kOpen) {  // libraft never sends first: unlikely
    Write(reinterpret_cast<uv_stream_t*>(&c->local), std::move(rest));
  }
}

void Deliver(Conn* c, const char* data, size_t n) {
  if (c->state == Conn::State::kPreamble) {
    c->preamble.append(data, n);
    if (c->client) return TakeAck(c);
    TakePreamble(c);
  } else if (c->state == Conn::State::kOpen) {
    const int rv = Write(reinterpret_cast<uv_stream_t*>(&c->local), std::string(data, n));
    if (rv != 0) Fail(c, absl::StrCat("write to raft: ", uv_strerror(rv)), false);
  }
}

// Before the preamble (or its answer) went through, a failure is the peer refusing us (a TLS 1.3
// server checks our certificate after our handshake ended): worth a warning.
void ReadPlain(Conn* c) {
  char buf[kReadChunk];
  ERR_clear_error();
  while (c->state == Conn::State::kPreamble || c->state == Conn::State::kOpen) {
    const int n = SSL_read(c->ssl, buf, sizeof(buf));
    if (n > 0) {
      Deliver(c, buf, static_cast<size_t>(n));
      continue;
    }
    const int error = SSL_get_error(c->ssl, n);
    if (error == SSL_ERROR_WANT_READ) break;
    const bool refused = c->state == Conn::State::kPreamble;
    if (error == SSL_ERROR_ZERO_RETURN) return Fail(c, "closed by the peer", refused);
    return Fail(c, "TLS: " + SslErrors(), refused);
  }
  FlushNet(c);
}

// Server: wait for the preamble. Client: send it, then wait for the ack.
void OnHandshakeDone(Conn* c) {
  c->state = Conn::State::kPreamble;
  if (!c->client) return;
  const std::string preamble = Preamble(c->tr->id, c->tr->address);
  if (SSL_write(c->ssl, preamble.data(), static_cast<int>(preamble.size())) <= 0) {
    return Fail(c, "TLS write: " + SslErrors(), false);
  }
  FlushNet(c);
}

void Handshake(Conn* c) {
  ERR_clear_error();
  const int rv = SSL_do_handshake(c->ssl);
  FlushNet(c);  // our part of the handshake, or an alert
  if (rv == 1) return OnHandshakeDone(c);
  if (SSL_get_error(c->ssl, rv) == SSL_ERROR_WANT_READ) return;
  std::string why = "TLS handshake failed: " + SslErrors();
  const long verify = SSL_get_verify_result(c->ssl);
  if (verify != X509_V_OK) absl::StrAppend(&why, " (", X509_verify_cert_error_string(verify), ")");
  Fail(c, why, true);
}

void Advance(Conn* c) {
  if (c->state == Conn::State::kHandshake) Handshake(c);
  ReadPlain(c);
}

void OnNetRead(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
  Conn* c = FromHandle(stream);
  if (nread == UV_EOF) {
    return Fail(c, "closed by the peer", c->state != Conn::State::kOpen);
  }
  if (nread < 0) return Fail(c, uv_strerror(static_cast<int>(nread)), false);
  if (nread == 0) return;
  BIO_write(c->net_in, buf->base, static_cast<int>(nread));
  Advance(c);
}

void StartTls(Conn* c) {
  c->ssl = SSL_new(c->tr->Context());
  if (c->ssl == nullptr) return Fail(c, "SSL_new: " + SslErrors(), true);
  c->net_in = BIO_new(BIO_s_mem());
  c->net_out = BIO_new(BIO_s_mem());
  SSL_set_bio(c->ssl, c->net_in, c->net_out);  // owned by ssl from here
  if (c->client) {
    SSL_set_connect_state(c->ssl);
  } else {
    SSL_set_accept_state(c->ssl);
  }
  c->state = Conn::State::kHandshake;
  uv_read_start(reinterpret_cast<uv_stream_t*>(&c->tcp), AllocNet, OnNetRead);
  if (c->client) Handshake(c);  // the ClientHello
}

// ---- Dialling ---------------------------------------------------------------------------------

void OnConnected(uv_connect_t* req, int status) {
  Conn* c = static_cast<Conn*>(req->data);
  if (c->state == Conn::State::kClosing) return;
  if (status != 0) return Fail(c, absl::StrCat("connect: ", uv_strerror(status)), false);
  StartTls(c);
}

void OnResolved(uv_getaddrinfo_t* req, int status, addrinfo* res) {
  Conn* c = static_cast<Conn*>(req->data);
  c->resolving = false;
  if (c->state == Conn::State::kClosing) {
    uv_freeaddrinfo(res);
    return MaybeDestroy(c);
  }
  if (status != 0) return Fail(c, absl::StrCat("resolve: ", uv_strerror(status)), false);
  c->state = Conn::State::kConnecting;
  const int rv = uv_tcp_connect(&c->connect, &c->tcp, res->ai_addr, OnConnected);
  uv_freeaddrinfo(res);
  if (rv != 0) Fail(c, absl::StrCat("connect: ", uv_strerror(rv)), false);
}

int Connect(raft_uv_transport* t, raft_uv_connect* req, raft_id, const char* address,
            raft_uv_connect_cb cb) {
  auto* tr = static_cast<Transport*>(t->impl);
  if (tr->closing) return RAFT_CANCELED;
  absl::StatusOr<HostPort> peer = ParseHostPort(address, {.allow_port_zero = true});
  if (!peer.ok()) return RAFT_NOCONNECTION;
  const std::string port = absl::StrCat(peer->port);
  Conn* c = NewConn(tr, true);
  c->req = req;
  c->cb = cb;
  c->peer = address;
  c->state = Conn::State::kResolving;
  addrinfo hints{};
  hints.ai_family = AF_INET;  // as raft_uv_tcp: IPv4
  hints.ai_socktype = SOCK_STREAM;
  const int rv =
      uv_getaddrinfo(tr->loop, &c->gai, OnResolved, peer->host.c_str(), port.c_str(), &hints);
  c->resolving = rv == 0;
  if (rv != 0) Fail(c, absl::StrCat("resolve: ", uv_strerror(rv)), false);  // cb from the close
  return 0;
}

// ---- Listening --------------------------------------------------------------------------------

std::string PeerName(uv_tcp_t* tcp) {
  sockaddr_storage addr{};
  int len = sizeof(addr);
  char host[INET6_ADDRSTRLEN] = "?";
  if (uv_tcp_getpeername(tcp, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return "?";
  const auto* in = reinterpret_cast<const sockaddr_in*>(&addr);
  if (addr.ss_family != AF_INET) return "?";
  uv_ip4_name(in, host, sizeof(host));
  return absl::StrCat(host, ":", ntohs(in->sin_port));
}

void OnConnection(uv_stream_t* server, int status) {
  auto* tr = static_cast<Transport*>(server->data);
  if (status != 0 || tr->closing) return;
  Conn* c = NewConn(tr, false);
  if (const int rv = uv_accept(server, reinterpret_cast<uv_stream_t*>(&c->tcp)); rv != 0) {
    return Fail(c, absl::StrCat("accept: ", uv_strerror(rv)), false);
  }
  c->peer = PeerName(&c->tcp);
  StartTls(c);
}

int ListenError(raft_uv_transport* t, const std::string& what) {
  std::snprintf(t->errmsg, sizeof(t->errmsg), "%s", what.c_str());
  return RAFT_IOERR;
}

int Listen(raft_uv_transport* t, raft_uv_accept_cb cb) {
  auto* tr = static_cast<Transport*>(t->impl);
  tr->accept_cb = cb;
  const std::string& bind =
      tr->options.bind_address.empty() ? tr->address : tr->options.bind_address;
  absl::StatusOr<HostPort> local = ParseHostPort(bind, {.allow_port_zero = true});
  if (!local.ok()) return ListenError(t, "bad bind address " + bind);
  const std::string port = absl::StrCat(local->port);
  addrinfo hints{}, *res = nullptr;
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  if (const int rv = getaddrinfo(local->host.c_str(), port.c_str(), &hints, &res); rv != 0) {
    return ListenError(t, absl::StrCat("resolve ", bind, ": ", gai_strerror(rv)));
  }
  uv_tcp_init(tr->loop, &tr->listener);
  tr->listener.data = tr;
  tr->listener_open = true;
  int rv = uv_tcp_bind(&tr->listener, res->ai_addr, 0);
  freeaddrinfo(res);
  if (rv == 0) {
    rv = uv_listen(reinterpret_cast<uv_stream_t*>(&tr->listener), 64, OnConnection);
  }
  if (rv != 0) return ListenError(t, absl::StrCat("listen on ", bind, ": ", uv_strerror(rv)));
  return 0;
}

int Init(raft_uv_transport* t, raft_id id, const char* address) {
  auto* tr = static_cast<Transport*>(t->impl);
  tr->id = id;
  tr->address = address;
  return 0;
}

// Stops listening and closes every connection (libraft's streams see EOF); the callback runs
// once every handle is closed and every pending connect request has had RAFT_CANCELED.
void CloseTransport(raft_uv_transport* t, raft_uv_transport_close_cb cb) {
  auto* tr = static_cast<Transport*>(t->impl);
  tr->closing = true;
  tr->close_cb = cb;
  if (tr->listener_open) {
    uv_close(reinterpret_cast<uv_handle_t*>(&tr->listener), [](uv_handle_t* h) {
      auto* closed = static_cast<Transport*>(h->data);
      closed->listener_open = false;
      closed->MaybeFinishClose();
    });
  }
  std::vector<Conn*> open(tr->conns.begin(), tr->conns.end());
  for (Conn* c : open) Close(c);
  tr->MaybeFinishClose();
}

}  // namespace

absl::Status RaftTlsTransportInit(raft_uv_transport* t, uv_loop_s* loop, RaftTlsOptions options) {
  absl::StatusOr<SslCtxPtr> ctx = LoadContext(options.files);
  if (!ctx.ok()) return ctx.status();
  auto tr = std::make_unique<Transport>();
  tr->loop = loop;
  tr->t = t;
  tr->options = std::move(options);
  tr->ctx = std::move(*ctx);
  tr->loaded_at = absl::Now();
  t->impl = tr.release();
  t->errmsg[0] = '\0';
  t->init = Init;
  t->listen = Listen;
  t->connect = Connect;
  t->close = CloseTransport;
  return absl::OkStatus();
}

void RaftTlsTransportClose(raft_uv_transport* t) {
  auto* tr = static_cast<Transport*>(t->impl);
  if (tr != nullptr && !tr->conns.empty()) {
    MQTT_LOG_ERROR("registry: raft TLS transport freed with %d connections open",
                   static_cast<int>(tr->conns.size()));
    return;  // leaked rather than freed under libuv's feet
  }
  delete tr;
  t->impl = nullptr;
}

}  // namespace mqtt::cluster
