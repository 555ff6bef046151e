// SPDX-License-Identifier: Apache-2.0
// TcpTransport on a worker's Poller, over a socketpair: input reaches the callbacks, output is
// written at the end of the turn, the peer's close ends the connection once, a quiet
// connection gives back its output buffer, and a detached one moves to another worker.
#include "node/net/tcp_transport.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <functional>
#include <future>
#include <string>

#include "gtest/gtest.h"
#include "node/net/io_worker.h"

namespace mqtt::net {
namespace {

// Records what the transport hands up; consumes everything.
class Recorder final : public TransportCallbacks {
 public:
  size_t OnInput(std::string_view data) override {
    input += data;
    return data.size();
  }
  void OnClosed() override { ++closed; }
  void OnOutputWritten() override { ++written; }
  std::string input;
  int closed = 0;
  int written = 0;
};

// Runs `fn` on `worker`'s thread and waits for it.
template <typename Fn>
auto OnWorker(IoWorker& worker, Fn fn) {
  std::promise<decltype(fn())> done;
  worker.Post([&] {
    if constexpr (std::is_void_v<decltype(fn())>) {
      fn();
      done.set_value();
    } else {
      done.set_value(fn());
    }
  });
  return done.get_future().get();
}

// Polls `condition` on the worker until it holds (or 5 s pass).
bool Eventually(IoWorker& worker, const std::function<bool()>& condition) {
  for (int i = 0; i < 500; ++i) {
    if (OnWorker(worker, condition)) return true;
    usleep(10'000);
  }
  return false;
}

class TcpTransportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    int fds[2];
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds), 0);
    ours_ = fds[0];
    peer_ = fds[1];
    fcntl(peer_, F_SETFL, 0);  // the test's end blocks
    worker_.Start();
    transport_ = std::make_shared<TcpTransport>(&worker_, ours_);
    OnWorker(worker_, [&] { transport_->Start(&recorder_, {}); });
  }
  void TearDown() override {
    OnWorker(worker_, [&] { transport_->Abort(); });
    if (peer_ >= 0) close(peer_);
    other_.Stop();
    worker_.Stop();
  }
  std::string ReadPeer(size_t n) {
    std::string got(n, '\0');
    size_t have = 0;
    while (have < n) {
      ssize_t r = read(peer_, got.data() + have, n - have);
      if (r <= 0) break;
      have += static_cast<size_t>(r);
    }
    got.resize(have);
    return got;
  }

  IoWorker worker_{0};
  IoWorker other_{1};
  Recorder recorder_;
  std::shared_ptr<TcpTransport> transport_;
  int ours_ = -1;
  int peer_ = -1;
};

TEST_F(TcpTransportTest, InputReachesTheCallbacksAndOutputTheSocket) {
  ASSERT_EQ(write(peer_, "hello", 5), 5);
  EXPECT_TRUE(Eventually(worker_, [&] { return recorder_.input == "hello"; }));
  // Input already waiting before the next edge is read too: more writes, each reported.
  ASSERT_EQ(write(peer_, " world", 6), 6);
  EXPECT_TRUE(Eventually(worker_, [&] { return recorder_.input == "hello world"; }));
  OnWorker(worker_, [&] { transport_->Send("reply"); });
  EXPECT_EQ(ReadPeer(5), "reply");
}

// NotifyWhenWritten: one OnOutputWritten once a peer that stopped reading has taken everything.
TEST_F(TcpTransportTest, OutputWrittenIsToldOnceWhenABlockedPeerHasReadEverything) {
  const std::string big(4 << 20, 'x');  // far beyond the socket buffers: the write blocks
  OnWorker(worker_, [&] {
    transport_->Send(big);
    transport_->NotifyWhenWritten();
  });
  usleep(50'000);
  EXPECT_GT(OnWorker(worker_, [&] { return transport_->unsent_bytes(); }), 0u);
  EXPECT_EQ(OnWorker(worker_, [&] { return recorder_.written; }), 0);
  EXPECT_EQ(ReadPeer(big.size()).size(), big.size());
  EXPECT_TRUE(Eventually(worker_, [&] { return recorder_.written == 1; }));
  // Without a new request, later output is not told.
  OnWorker(worker_, [&] { transport_->Send("more"); });
  EXPECT_EQ(ReadPeer(4), "more");
  usleep(50'000);
  EXPECT_EQ(OnWorker(worker_, [&] { return recorder_.written; }), 1);
}

TEST_F(TcpTransportTest, PausedInputIsReadOnResume) {
  OnWorker(worker_, [&] { transport_->PauseReading(); });
  ASSERT_EQ(write(peer_, "later", 5), 5);
  usleep(50'000);
  EXPECT_EQ(OnWorker(worker_, [&] { return recorder_.input; }), "");
  // No new edge comes for bytes that were already there: the resume must read them.
  OnWorker(worker_, [&] { transport_->ResumeReading(); });
  EXPECT_TRUE(Eventually(worker_, [&] { return recorder_.input == "later"; }));
}

TEST_F(TcpTransportTest, PeerCloseEndsTheConnectionOnce) {
  close(peer_);
  peer_ = -1;
  EXPECT_TRUE(Eventually(worker_, [&] { return recorder_.closed == 1; }));
  EXPECT_TRUE(OnWorker(worker_, [&] { return transport_->closing(); }));
  EXPECT_EQ(OnWorker(worker_, [&] { return transport_->peer(); }), "-");
}

TEST_F(TcpTransportTest, AQuietConnectionGivesBackItsOutputBuffer) {
  const std::string big(4096, 'x');
  OnWorker(worker_, [&] { transport_->Send(big); });
  EXPECT_EQ(ReadPeer(big.size()), big);
  // Kept for reuse right after the write ...
  EXPECT_GE(OnWorker(worker_, [&] { return transport_->output_buffer()->capacity(); }), 4096u);
  // ... and still after the first sweep, since output was written since the last one ...
  OnWorker(worker_, [&] { transport_->ReleaseIdleBuffers(); });
  EXPECT_GE(OnWorker(worker_, [&] { return transport_->output_buffer()->capacity(); }), 4096u);
  // ... and given back after a sweep with nothing written.
  OnWorker(worker_, [&] { transport_->ReleaseIdleBuffers(); });
  EXPECT_LT(OnWorker(worker_, [&] { return transport_->output_buffer()->capacity(); }), 64u);
}

TEST_F(TcpTransportTest, ADetachedConnectionGoesOnOnAnotherWorker) {
  other_.Start();
  std::shared_ptr<DetachedTransport> detached =
      OnWorker(worker_, [&] { return std::shared_ptr<DetachedTransport>(transport_->Detach()); });
  ASSERT_NE(detached, nullptr);
  ASSERT_EQ(write(peer_, "moved", 5), 5);  // arrives while no worker watches the socket
  Recorder there;
  std::shared_ptr<Transport> attached = OnWorker(other_, [&] {
    std::shared_ptr<Transport> t = detached->Attach(&other_);
    t->Start(&there, {});
    return t;
  });
  EXPECT_TRUE(Eventually(other_, [&] { return there.input == "moved"; }));
  EXPECT_EQ(OnWorker(worker_, [&] { return recorder_.input; }), "");
  OnWorker(other_, [&] { attached->Abort(); });
  EXPECT_EQ(there.closed, 1);
}

}  // namespace
}  // namespace mqtt::net
