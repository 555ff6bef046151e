// SPDX-License-Identifier: Apache-2.0
#include "node/net/layered_transport.h"

#include <openssl/err.h>
#include <unistd.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "node/base/log.h"

namespace mqtt::net {

namespace {
using boost::asio::ip::tcp;
constexpr size_t kKeepOutputCapacity = 64 * 1024;  // as TcpTransport
constexpr int kMaxReadsPerWakeup = 4;
constexpr size_t kPauseReadingAbove = 1024 * 1024;

std::string TlsError() {
  unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) return "connection closed";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof(buf));
  return buf;
}

void Release(std::string* s) {
  if (s->capacity() > kKeepOutputCapacity) {
    std::string().swap(*s);
  } else {
    s->clear();
  }
}
}  // namespace

LayeredTransport::LayeredTransport(IoWorker* worker, TcpSocket socket,
                                   std::shared_ptr<LayeredOptions> options, SslPtr ssl)
    : worker_(worker), socket_(std::move(socket)), options_(std::move(options)) {
  boost::system::error_code ec;
  socket_.non_blocking(true, ec);
  socket_.set_option(tcp::no_delay(true), ec);
  layers_.ssl = std::move(ssl);
  if (layers_.ssl) {
    SSL_set_fd(layers_.ssl.get(), socket_.native_handle());
    SSL_set_accept_state(layers_.ssl.get());
  }
  if (options_->websocket) layers_.ws = std::make_unique<WsDecoder>();
  layers_.phase = layers_.ssl ? Phase::kTls : options_->websocket ? Phase::kUpgrade : Phase::kOpen;
}

LayeredTransport::LayeredTransport(IoWorker* worker, TcpSocket socket,
                                   std::shared_ptr<LayeredOptions> options, Layers layers)
    : worker_(worker),
      socket_(std::move(socket)),
      options_(std::move(options)),
      layers_(std::move(layers)) {}

// A detached connection's place in the gate went with it (DetachedLayered).
LayeredTransport::~LayeredTransport() {
  if (options_->gate != nullptr && state_ != State::kDetached) options_->gate->Closed();
}

std::string LayeredTransport::peer() const {
  boost::system::error_code ec;
  tcp::endpoint remote = socket_.remote_endpoint(ec);
  if (ec) return "-";
  return absl::StrCat(remote.address().to_string(), ":", remote.port());
}

void LayeredTransport::Start(TransportCallbacks* callbacks, std::string initial_input) {
  callbacks_ = callbacks;
  if (layers_.phase != Phase::kOpen) StartHandshakeTimer();
  if (!initial_input.empty()) ProcessInput(initial_input);
  if (state_ != State::kOpen) return;
  WaitReadable();  // at once if the SSL object holds records read on the previous worker
}

void LayeredTransport::ResumeReading() {
  paused_by_owner_ = false;
  WaitReadable();
}

void LayeredTransport::StartHandshakeTimer() {
  handshake_timer_ = std::make_unique<Timer>(worker_->io());
  handshake_timer_->expires_after(options_->handshake_timeout);
  handshake_timer_->async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
    if (ec || self->state_ != State::kOpen || self->layers_.phase == Phase::kOpen) return;
    MQTT_LOG_INFO("connection %s: %s handshake not finished within %d ms: closed", self->peer(),
                  self->options_->protocol,
                  static_cast<int>(self->options_->handshake_timeout.count()));
    self->Abort();
  });
}

void LayeredTransport::StopHandshakeTimer() {
  if (handshake_timer_ == nullptr) return;
  handshake_timer_->cancel();
  handshake_timer_.reset();  // its handler holds a reference to this transport, not the timer
}

// Reads when the socket becomes readable, or at once (posted) when the SSL object already
// holds records: the socket would not signal those again.
void LayeredTransport::WaitReadable() {
  if (state_ != State::kOpen || reading_) return;
  if (paused_by_owner_ && layers_.phase == Phase::kOpen) return;
  if (unsent_bytes() > kPauseReadingAbove) {
    read_paused_ = true;  // resumed by FlushOutput once the output is written
    return;
  }
  read_paused_ = false;
  if (layers_.ssl && SSL_has_pending(layers_.ssl.get())) {
    PostRead();
    return;
  }
  reading_ = true;
  socket_.async_wait(read_wants_write_ ? tcp::socket::wait_write : tcp::socket::wait_read,
                     [self = shared_from_this()](const boost::system::error_code& ec) {
                       self->reading_ = false;
                       if (ec || self->state_ != State::kOpen) return;
                       self->OnReadable();
                     });
}

void LayeredTransport::OnReadable() {
  bool more = false;  // stopped with input left: decrypted records or unread socket bytes
  for (int i = 0; i < kMaxReadsPerWakeup && state_ == State::kOpen; ++i) {
    if (paused_by_owner_ && layers_.phase == Phase::kOpen) break;
    if (layers_.phase == Phase::kTls) {
      if (!ContinueTlsHandshake()) break;
      continue;
    }
    size_t n = 0;
    Io io = ReadSome(worker_->read_scratch(), worker_->read_scratch_size(), &n);
    if (io == Io::kWouldBlock) {
      more = false;
      break;
    }
    if (io != Io::kDone) {
      Abort();
      return;
    }
    OnBytes(worker_->read_scratch(), n);
    more = n == worker_->read_scratch_size() ||
           (layers_.ssl != nullptr && SSL_has_pending(layers_.ssl.get()));
    if (!more) break;
  }
  if (more && state_ == State::kOpen) {
    PostRead();  // yield to other connections, then go on without waiting for a new edge
  } else {
    WaitReadable();
  }
}

void LayeredTransport::PostRead() {
  if (reading_) return;
  reading_ = true;
  boost::asio::post(socket_.get_executor(), [self = shared_from_this()] {
    self->reading_ = false;
    if (self->state_ != State::kOpen) return;
    if (self->paused_by_owner_ && self->layers_.phase == Phase::kOpen) return;  // Resume reads
    if (self->unsent_bytes() > kPauseReadingAbove) {
      self->read_paused_ = true;  // FlushOutput resumes
      return;
    }
    self->OnReadable();
  });
}

// One step of the server handshake; true once it is done, false while it waits (or failed).
bool LayeredTransport::ContinueTlsHandshake() {
  ERR_clear_error();
  int r = SSL_do_handshake(layers_.ssl.get());
  if (r == 1) {
    OnTlsEstablished();
    return true;
  }
  int error = SSL_get_error(layers_.ssl.get(), r);
  if (error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE) {
    read_wants_write_ = error == SSL_ERROR_WANT_WRITE;
    return false;
  }
  tls_failed_ = true;
  MQTT_LOG_INFO("connection %s: TLS handshake failed: %s", peer(), TlsError());
  Abort();
  return false;
}

void LayeredTransport::OnTlsEstablished() {
  read_wants_write_ = false;
  SSL* ssl = layers_.ssl.get();
  layers_.identity = PeerCertificateIdentity(ssl, options_->tls->options().identity);
  MQTT_LOG_DEBUG("connection %s: %s %s, client certificate identity '%s'", peer(),
                 SSL_get_version(ssl), SSL_get_cipher_name(ssl), layers_.identity);
  layers_.phase = options_->websocket ? Phase::kUpgrade : Phase::kOpen;
  if (layers_.phase == Phase::kOpen) StopHandshakeTimer();
}

LayeredTransport::Io LayeredTransport::ReadSome(char* data, size_t size, size_t* n) {
  if (!layers_.ssl) {
    boost::system::error_code ec;
    *n = socket_.read_some(boost::asio::buffer(data, size), ec);
    if (ec == boost::asio::error::would_block) return Io::kWouldBlock;
    if (ec == boost::asio::error::eof) return Io::kEof;
    if (ec) MQTT_LOG_DEBUG("connection %s: read error: %s", peer(), ec.message());
    return ec ? Io::kError : Io::kDone;
  }
  // One SSL_read returns one record (16 KiB at most): fill the buffer with several, so that a
  // burst is handed up in as few OnInput calls as with TCP.
  *n = 0;
  int result = 1;
  while (*n < size && result == 1) {
    ERR_clear_error();
    size_t got = 0;
    result = SSL_read_ex(layers_.ssl.get(), data + *n, size - *n, &got);
    *n += got;
  }
  if (*n > 0) {
    read_wants_write_ = false;
    return Io::kDone;  // an error after data is seen again by the next read
  }
  int error = SSL_get_error(layers_.ssl.get(), result);
  if (error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE) {
    read_wants_write_ = error == SSL_ERROR_WANT_WRITE;
    return Io::kWouldBlock;
  }
  if (error == SSL_ERROR_ZERO_RETURN) return Io::kEof;
  tls_failed_ = true;
  MQTT_LOG_DEBUG("connection %s: TLS read error: %s", peer(), TlsError());
  return Io::kError;
}

LayeredTransport::Io LayeredTransport::WriteSome(const char* data, size_t size, size_t* n) {
  if (!layers_.ssl) {
    boost::system::error_code ec;
    *n = socket_.write_some(boost::asio::buffer(data, size), ec);
    if (ec == boost::asio::error::would_block) return Io::kWouldBlock;
    if (ec) MQTT_LOG_DEBUG("connection %s: write error: %s", peer(), ec.message());
    return ec ? Io::kError : Io::kDone;
  }
  ERR_clear_error();
  if (SSL_write_ex(layers_.ssl.get(), data, size, n) == 1) return Io::kDone;
  int error = SSL_get_error(layers_.ssl.get(), 0);
  if (error == SSL_ERROR_WANT_WRITE) return Io::kWouldBlock;
  // WANT_READ would mean a renegotiation, which the context forbids: treat it as an error.
  tls_failed_ = true;
  MQTT_LOG_DEBUG("connection %s: TLS write error: %s", peer(), TlsError());
  return Io::kError;
}

// Bytes read from the socket (decrypted): the HTTP Upgrade, WebSocket frames or MQTT.
void LayeredTransport::OnBytes(char* data, size_t n) {
  if (!layers_.ws) {
    ProcessInput(std::string_view(data, n));
    return;
  }
  if (layers_.phase == Phase::kUpgrade) {
    size_t used = HandleUpgrade(data, n);
    if (state_ != State::kOpen || layers_.phase != Phase::kOpen) return;
    data += used;
    n -= used;
  }
  size_t app = 0;
  std::string error;
  const size_t wire_before = wire_.size();
  WsDecoder::Result result = layers_.ws->Decode(data, n, &app, &wire_, &error);
  if (wire_.size() != wire_before) RequestFlush();
  if (app > 0) ProcessInput(std::string_view(data, app));
  if (result == WsDecoder::Result::kOk || state_ != State::kOpen) return;
  if (result == WsDecoder::Result::kError) {
    MQTT_LOG_INFO("connection %s: WebSocket: %s: closed", peer(), error);
  }
  ws_close_sent_ = true;  // the decoder queued the close frame
  Close();
}

// Collects the Upgrade request; returns how many of the `n` bytes it used (the rest are
// WebSocket frames sent right behind it).
size_t LayeredTransport::HandleUpgrade(const char* data, size_t n) {
  if (http_ == nullptr) http_ = std::make_unique<std::string>();
  const size_t before = http_->size();
  http_->append(data, n);
  const size_t end = HttpHeadEnd(*http_);
  // A complete head is measured too: one large read must not get past the limit.
  if (HttpHeadTooLarge(http_->size(), end)) {
    MQTT_LOG_INFO("connection %s: HTTP request head over %d bytes: closed", peer(),
                  static_cast<int>(kMaxHttpHead));
    Abort();
    return n;
  }
  if (end == std::string::npos) return n;
  WsUpgrade answer = AnswerUpgrade(std::string_view(*http_).substr(0, end), options_->ws_path);
  http_.reset();
  wire_.append(answer.response);
  if (!answer.accepted) {
    MQTT_LOG_INFO("connection %s: WebSocket upgrade refused: %s", peer(), answer.error);
    ws_close_sent_ = true;  // no WebSocket frames after an HTTP error
    Close();
    return n;
  }
  layers_.phase = Phase::kOpen;
  StopHandshakeTimer();
  RequestFlush();
  return end - before;  // the head ends in the new bytes: it was not complete before them
}

void LayeredTransport::ProcessInput(std::string_view fresh) {
  if (in_ == nullptr) {
    size_t consumed = callbacks_->OnInput(fresh);
    if (state_ == State::kOpen && consumed < fresh.size()) {
      in_ = std::make_unique<std::string>(fresh.substr(consumed));
    }
    return;
  }
  in_->append(fresh);
  size_t consumed = callbacks_->OnInput(*in_);
  if (state_ != State::kOpen) return;
  in_->erase(0, consumed);
  if (in_->empty()) in_.reset();
}

void LayeredTransport::RequestFlush() {
  if (flush_requested_ || writing_ || state_ == State::kClosed || state_ == State::kDetached) {
    return;
  }
  flush_requested_ = true;
  worker_->ScheduleFlush(shared_from_this());
}

// MQTT output to wire bytes: a binary frame per turn over WebSocket, else the bytes as they are.
void LayeredTransport::EncodeOutput() {
  if (layers_.phase != Phase::kOpen) return;  // nothing but the handshake before MQTT
  if (!out_.empty()) {
    if (layers_.ws) {
      AppendWsFrame(out_, kWsBinary, &wire_);
      Release(&out_);
    } else if (wire_.empty()) {
      wire_.swap(out_);
    } else {
      wire_.append(out_);
      Release(&out_);
    }
  }
  if (state_ == State::kClosing && layers_.ws && !ws_close_sent_) {
    AppendWsClose(1000, &wire_);
    ws_close_sent_ = true;
  }
}

void LayeredTransport::FlushOutput() {
  flush_requested_ = false;
  if (state_ == State::kClosed || state_ == State::kDetached || writing_) return;
  if (state_ == State::kClosing && layers_.phase == Phase::kTls) {
    Shutdown();  // no TLS session to say goodbye on
    return;
  }
  EncodeOutput();
  while (wire_sent_ < wire_.size()) {
    size_t n = 0;
    Io io = WriteSome(wire_.data() + wire_sent_, wire_.size() - wire_sent_, &n);
    if (io == Io::kWouldBlock) {
      WaitWritable();
      return;
    }
    if (io != Io::kDone) {
      Abort();
      return;
    }
    wire_sent_ += n;
  }
  wire_sent_ = 0;
  Release(&wire_);
  if (state_ == State::kClosing) {
    Shutdown();
    return;
  }
  if (read_paused_) WaitReadable();
  if (notify_written_ && out_.empty()) {
    notify_written_ = false;
    worker_->Post([self = shared_from_this()] {
      if (self->state_ == State::kOpen && self->callbacks_ != nullptr) {
        self->callbacks_->OnOutputWritten();
      }
    });
  }
}

void LayeredTransport::WaitWritable() {
  writing_ = true;
  socket_.async_wait(tcp::socket::wait_write,
                     [self = shared_from_this()](const boost::system::error_code& ec) {
                       self->writing_ = false;
                       if (ec) return;
                       self->RequestFlush();
                     });
}

void LayeredTransport::Close() {
  if (state_ != State::kOpen) return;
  state_ = State::kClosing;
  close_started_ = std::chrono::steady_clock::now();
  RequestFlush();
}

void LayeredTransport::Abort() {
  if (state_ == State::kClosed || state_ == State::kDetached) return;
  out_.clear();
  wire_.clear();
  wire_sent_ = 0;
  Shutdown();
}

void LayeredTransport::Shutdown() {
  state_ = State::kClosed;
  StopHandshakeTimer();
  if (layers_.ssl && layers_.phase != Phase::kTls && !tls_failed_) {
    ERR_clear_error();
    SSL_shutdown(layers_.ssl.get());  // close_notify, best effort: the socket is non-blocking
  }
  ERR_clear_error();
  boost::system::error_code ec;
  socket_.shutdown(tcp::socket::shutdown_both, ec);
  socket_.close(ec);
  layers_.ssl.reset();
  in_.reset();
  http_.reset();
  std::string().swap(out_);
  std::string().swap(wire_);
  TransportCallbacks* callbacks = std::exchange(callbacks_, nullptr);
  if (callbacks != nullptr) callbacks->OnClosed();
}

namespace {

// A TLS and/or WebSocket connection between two workers: the socket's descriptor plus the
// layers' state. The SSL object keeps the descriptor number (SSL_set_fd), which stays valid.
class DetachedLayered final : public DetachedTransport {
 public:
  DetachedLayered(int fd, bool is_v6, std::shared_ptr<LayeredOptions> options,
                  LayeredTransport::Layers layers)
      : fd_(fd), is_v6_(is_v6), options_(std::move(options)), layers_(std::move(layers)) {}
  ~DetachedLayered() override {
    if (fd_ < 0) return;
    ::close(fd_);
    if (options_->gate != nullptr) options_->gate->Closed();
  }

  std::shared_ptr<Transport> Attach(IoWorker* worker) override {
    TcpSocket socket(worker->io());
    boost::system::error_code ec;
    socket.assign(is_v6_ ? tcp::v6() : tcp::v4(), fd_, ec);
    if (ec) {
      MQTT_LOG_WARN("adopting a connection failed: %s", ec.message());
      return nullptr;  // the destructor closes fd_
    }
    fd_ = -1;
    return std::make_shared<LayeredTransport>(worker, std::move(socket), std::move(options_),
                                              std::move(layers_));
  }

 private:
  int fd_;
  const bool is_v6_;
  std::shared_ptr<LayeredOptions> options_;
  LayeredTransport::Layers layers_;
};

}  // namespace

std::unique_ptr<DetachedTransport> LayeredTransport::Detach() {
  if (state_ != State::kOpen || layers_.phase != Phase::kOpen || unsent_bytes() != 0) {
    return nullptr;
  }
  state_ = State::kDetached;
  callbacks_ = nullptr;
  in_.reset();
  StopHandshakeTimer();
  boost::system::error_code ec;
  tcp::endpoint local = socket_.local_endpoint(ec);
  const bool is_v6 = !ec && local.address().is_v6();
  socket_.cancel(ec);
  const int fd = socket_.release(ec);
  if (ec || fd < 0) {
    Shutdown();
    return nullptr;
  }
  return std::make_unique<DetachedLayered>(fd, is_v6, options_, std::move(layers_));
}

}  // namespace mqtt::net
