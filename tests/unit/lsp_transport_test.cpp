// StdioTransport over real pipes: framing both ways, EINTR, stop() while blocked, EOF.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <future>
#include <thread>

#include "fake_completer.h"
#include "in_process_server.h"
#include "stdio_transport.h"

using namespace hearth::lsp;
using namespace std::chrono_literals;

namespace {

struct Pipe {
    int r = -1;
    int w = -1;
    Pipe() {
        int fds[2];
        EXPECT_EQ(::pipe(fds), 0);
        r = fds[0];
        w = fds[1];
    }
    ~Pipe() {
        close_r();
        close_w();
    }
    void close_r() {
        if (r >= 0) ::close(r);
        r = -1;
    }
    void close_w() {
        if (w >= 0) ::close(w);
        w = -1;
    }
};

void write_all(int fd, const std::string& bytes) {
    size_t done = 0;
    while (done < bytes.size()) {
        ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
        if (n < 0 && errno == EINTR) continue;
        ASSERT_GT(n, 0);
        done += static_cast<size_t>(n);
    }
}

// Reads framed messages from `fd` until one with `id` arrives (or the timeout).
json read_response(int fd, FrameReader& reader, const json& id, std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    json found;
    while (found.is_null() && std::chrono::steady_clock::now() < deadline) {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 50) <= 0) continue;
        char buf[4096];
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        reader.feed(
            std::string_view(buf, static_cast<size_t>(n)),
            [&](std::string body) {
                json m = json::parse(body, nullptr, false);
                if (m.is_object() && m.value("id", json()) == id && !m.contains("method"))
                    found = m;
            },
            [](std::string_view) {});
    }
    return found;
}

extern "C" void ignore_signal(int) {}

}  // namespace

TEST(LspStdioTransport, ServesOverPipesSurvivesSignalsAndEndsAtEof) {
    // A handler without SA_RESTART: blocking calls return EINTR when it runs.
    struct sigaction sa {};
    sa.sa_handler = ignore_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;
    struct sigaction old {};
    ASSERT_EQ(::sigaction(SIGUSR1, &sa, &old), 0);

    Pipe in;
    Pipe out;
    auto fake = std::make_shared<FakeCompleterState>();
    StdioTransport transport(in.r, out.w);
    LspServerOptions options;
    Server server(transport, options, InProcessServer::fake_factory(fake));
    auto exit_code = std::async(std::launch::async, [&] { return server.run(); });

    FrameReader reader;
    write_all(in.w, frame_message(dump_json(
                        make_request(1, "initialize", {{"capabilities", json::object()}}))));
    json init = read_response(out.r, reader, 1, 5s);
    ASSERT_FALSE(init.is_null());
    EXPECT_EQ(init["result"]["serverInfo"]["name"], "hearth");

    // Signals while the reader thread sits in poll()/read().
    for (int i = 0; i < 50; ++i) {
        ::kill(::getpid(), SIGUSR1);
        std::this_thread::sleep_for(1ms);
    }
    // A message split across writes, with signals in between.
    std::string msg = frame_message(
        dump_json(make_request(2, "workspace/executeCommand", {{"command", "hearth.status"}})));
    write_all(in.w, msg.substr(0, 10));
    ::kill(::getpid(), SIGUSR1);
    write_all(in.w, msg.substr(10));
    json status = read_response(out.r, reader, 2, 5s);
    ASSERT_FALSE(status.is_null());
    EXPECT_TRUE(status.contains("result"));

    in.close_w();  // end of input without shutdown
    ASSERT_EQ(exit_code.wait_for(5s), std::future_status::ready);
    EXPECT_EQ(exit_code.get(), 1);
    ::sigaction(SIGUSR1, &old, nullptr);
}

TEST(LspStdioTransport, StopWakesABlockedReader) {
    Pipe in;
    Pipe out;
    StdioTransport transport(in.r, out.w);
    std::atomic<bool> closed{false};
    TransportCallbacks cb;
    cb.on_frame = [](std::string) {};
    cb.on_framing_error = [](std::string_view) {};
    cb.on_closed = [&] { closed = true; };
    transport.start(cb);
    std::this_thread::sleep_for(20ms);
    auto t0 = std::chrono::steady_clock::now();
    transport.stop();
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 1s);
    EXPECT_FALSE(closed.load());              // stop() is not end of input
    transport.send(json{{"after", "stop"}});  // still safe to call
}

TEST(LspStdioTransport, WriteToAClosedPipeIsAnErrorNotACrash) {
    std::signal(SIGPIPE, SIG_IGN);
    Pipe in;
    Pipe out;
    out.close_r();
    StdioTransport transport(in.r, out.w);
    transport.send(json{{"x", 1}});  // EPIPE: logged, output marked broken
    // Later messages are dropped without touching the descriptor again.
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < 10000; ++i) transport.send(json{{"x", i}});
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 2s);
}
