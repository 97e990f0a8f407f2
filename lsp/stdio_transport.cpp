#include "stdio_transport.h"

#include <fcntl.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace hearth::lsp {

StdioTransport::StdioTransport(int in_fd, int out_fd, FramingLimits limits)
    : in_fd_(in_fd), out_fd_(out_fd), reader_(limits) {
    if (::pipe(wake_) != 0) {
        spdlog::error("stdio transport: pipe() failed: {}", std::strerror(errno));
        wake_[0] = wake_[1] = -1;
    } else {
        ::fcntl(wake_[0], F_SETFD, FD_CLOEXEC);
        ::fcntl(wake_[1], F_SETFD, FD_CLOEXEC);
    }
}

StdioTransport::~StdioTransport() {
    stop();
    for (int fd : wake_) {
        if (fd >= 0) ::close(fd);
    }
}

void StdioTransport::start(TransportCallbacks callbacks) {
    callbacks_ = std::move(callbacks);
    thread_ = std::thread([this] { read_loop(); });
}

void StdioTransport::read_loop() {
    char buf[1 << 16];
    auto on_frame = [this](std::string body) {
        if (!stopping_) callbacks_.on_frame(std::move(body));
    };
    auto on_error = [this](std::string_view what) {
        if (!stopping_) callbacks_.on_framing_error(what);
    };
    while (!stopping_) {
        pollfd fds[2] = {{in_fd_, POLLIN, 0}, {wake_[0], POLLIN, 0}};
        int nfds = wake_[0] >= 0 ? 2 : 1;
        int rc = ::poll(fds, static_cast<nfds_t>(nfds), -1);
        if (rc < 0) {
            if (errno == EINTR) continue;
            spdlog::error("stdio transport: poll failed: {}", std::strerror(errno));
            break;
        }
        if (nfds == 2 && fds[1].revents != 0) break;  // stop() woke us
        if (fds[0].revents == 0) continue;
        ssize_t n = ::read(in_fd_, buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN) continue;
            spdlog::error("stdio transport: read failed: {}", std::strerror(errno));
            break;
        }
        if (n == 0) {
            if (reader_.mid_message()) spdlog::warn("stdio transport: input ended mid-message");
            break;
        }
        reader_.feed(std::string_view(buf, static_cast<size_t>(n)), on_frame, on_error);
    }
    if (!stopping_ && callbacks_.on_closed) callbacks_.on_closed();
}

void StdioTransport::send(const json& message) {
    std::string bytes = frame_message(dump_json(message));
    std::lock_guard lock(write_mu_);
    if (write_broken_) return;
    size_t done = 0;
    while (done < bytes.size()) {
        ssize_t n = ::write(out_fd_, bytes.data() + done, bytes.size() - done);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN) {
                // A non-blocking output (rare for stdout): wait until it drains.
                pollfd fd{out_fd_, POLLOUT, 0};
                ::poll(&fd, 1, 1000);
                continue;
            }
            spdlog::error("stdio transport: write failed: {}; dropping further output",
                          std::strerror(errno));
            write_broken_ = true;
            return;
        }
        done += static_cast<size_t>(n);
    }
}

void StdioTransport::stop() {
    if (stopping_.exchange(true)) {
        if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
        return;
    }
    if (wake_[1] >= 0) {
        char c = 1;
        while (::write(wake_[1], &c, 1) < 0 && errno == EINTR) {
        }
    }
    if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
}

}  // namespace hearth::lsp
