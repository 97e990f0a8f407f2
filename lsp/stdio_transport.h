// StdioTransport: LSP over a pair of file descriptors (0 and 1 for `hearth lsp`).
//
// A reader thread blocks in poll()+read() on the input descriptor and feeds a FrameReader;
// every read and write retries on EINTR, so a signal (a debugger attaching, SIGWINCH in a
// terminal) never looks like end of input. The poll also watches a self-pipe, which is how
// stop() wakes the reader without closing descriptors it does not own. Writes are
// serialised by a mutex and loop over partial writes; a failed write (the editor went
// away) marks the output broken and later messages are dropped. The caller should ignore
// SIGPIPE (run_lsp_server does), or a write to a closed pipe would kill the process.
#pragma once

#include <atomic>
#include <mutex>
#include <thread>

#include "framing.h"
#include "transport.h"

namespace hearth::lsp {

class StdioTransport final : public Transport {
  public:
    StdioTransport(int in_fd, int out_fd, FramingLimits limits = {});
    ~StdioTransport() override;
    StdioTransport(const StdioTransport&) = delete;
    StdioTransport& operator=(const StdioTransport&) = delete;

    void start(TransportCallbacks callbacks) override;
    void send(const json& message) override;
    void stop() override;

  private:
    void read_loop();

    int in_fd_;
    int out_fd_;
    int wake_[2] = {-1, -1};
    FrameReader reader_;
    TransportCallbacks callbacks_;
    std::thread thread_;
    std::mutex write_mu_;
    bool write_broken_ = false;  // guarded by write_mu_
    std::atomic<bool> stopping_{false};
};

}  // namespace hearth::lsp
