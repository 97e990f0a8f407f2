// ChildServer: a language server run as a child process, spoken to over its stdin/stdout
// exactly as an editor does (Content-Length framing through StdioTransport).
//
// For the benchmarks and tests that must exercise the real binary: process start, model
// load, the disk cache surviving a restart. Requests from the server (registerCapability,
// workDoneProgress/create) are answered with a null result at once, as a plain client
// would; every notification is kept in order so callers can wait for one.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "json_rpc.h"
#include "result.h"

namespace hearth::lsp {

class StdioTransport;

class ChildServer {
  public:
    // Starts argv[0] with argv; the child's stderr goes to `stderr_path` (appended) or,
    // when empty, to this process's stderr.
    static Expected<std::unique_ptr<ChildServer>> spawn(const std::vector<std::string>& argv,
                                                        const std::string& stderr_path = {});
    ~ChildServer();  // closes the pipes; a child still running after 10 s is killed
    ChildServer(const ChildServer&) = delete;
    ChildServer& operator=(const ChildServer&) = delete;

    void notify(const std::string& method, json params);
    // Sends a request and waits for its response: the result, or an error carrying the
    // response's error message (or "timed out" / "the server exited").
    Expected<json> call(const std::string& method, json params,
                        std::chrono::milliseconds timeout = std::chrono::seconds(600));
    // Waits for a notification for which `match(method, params)` holds; notifications
    // before it are consumed. Error on timeout or when the server exits first.
    Expected<json> wait_notification(
        const std::function<bool(const std::string&, const json&)>& match,
        std::chrono::milliseconds timeout);
    // Closes stdin and waits for the exit code (-1 after the timeout, then the child is
    // killed; a signal gives 128 + its number).
    int wait_exit(std::chrono::milliseconds timeout);

    pid_t pid() const { return pid_; }

  private:
    ChildServer() = default;
    void on_frame(std::string body);

    pid_t pid_ = -1;
    int to_child_ = -1, from_child_ = -1;
    std::unique_ptr<StdioTransport> transport_;
    std::mutex mu_;
    std::condition_variable cv_;
    std::deque<json> notifications_;
    std::vector<json> responses_;
    bool closed_ = false;
    int64_t next_id_ = 1;
    int exit_code_ = -1;
    bool reaped_ = false;
};

}  // namespace hearth::lsp
