#include "child_server.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include "stdio_transport.h"

extern char** environ;

namespace hearth::lsp {

namespace {

Error errno_error(const std::string& what) {
    return Error{what + ": " + std::strerror(errno)};
}

}  // namespace

Expected<std::unique_ptr<ChildServer>> ChildServer::spawn(const std::vector<std::string>& argv,
                                                          const std::string& stderr_path) {
    if (argv.empty()) return make_error("no command to run");
    int in[2], out[2];  // child's stdin, child's stdout
    if (::pipe2(in, O_CLOEXEC) != 0) return errno_error("pipe");
    if (::pipe2(out, O_CLOEXEC) != 0) {
        ::close(in[0]);
        ::close(in[1]);
        return errno_error("pipe");
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    if (!stderr_path.empty()) {
        posix_spawn_file_actions_addopen(&fa, 2, stderr_path.c_str(), O_WRONLY | O_CREAT | O_APPEND,
                                         0600);
    }
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    pid_t pid = -1;
    const int rc = ::posix_spawn(&pid, argv[0].c_str(), &fa, nullptr, args.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    ::close(in[0]);
    ::close(out[1]);
    if (rc != 0) {
        ::close(in[1]);
        ::close(out[0]);
        return make_error("cannot start " + argv[0] + ": " + std::strerror(rc));
    }
    std::unique_ptr<ChildServer> c(new ChildServer());
    c->pid_ = pid;
    c->to_child_ = in[1];
    c->from_child_ = out[0];
    c->transport_ = std::make_unique<StdioTransport>(c->from_child_, c->to_child_);
    ChildServer* self = c.get();
    c->transport_->start(TransportCallbacks{
        [self](std::string body) { self->on_frame(std::move(body)); }, [](std::string_view) {},
        [self] {
            std::lock_guard lock(self->mu_);
            self->closed_ = true;
            self->cv_.notify_all();
        }});
    return c;
}

ChildServer::~ChildServer() {
    if (pid_ > 0 && !reaped_) wait_exit(std::chrono::seconds(10));
    if (transport_) transport_->stop();
    if (to_child_ >= 0) ::close(to_child_);
    if (from_child_ >= 0) ::close(from_child_);
}

void ChildServer::on_frame(std::string body) {
    Message msg = parse_message(body);
    if (auto* req = std::get_if<Request>(&msg)) {
        // What a plain client says to registerCapability and workDoneProgress/create.
        transport_->send(make_response(req->id, nullptr));
        return;
    }
    std::lock_guard lock(mu_);
    if (auto* note = std::get_if<Notification>(&msg)) {
        notifications_.push_back(json{{"method", note->method}, {"params", note->params}});
    } else if (auto* resp = std::get_if<Response>(&msg)) {
        responses_.push_back(
            json{{"id", resp->id}, {"is_error", resp->is_error}, {"result", resp->result}});
    }
    cv_.notify_all();
}

void ChildServer::notify(const std::string& method, json params) {
    transport_->send(make_notification(method, std::move(params)));
}

Expected<json> ChildServer::call(const std::string& method, json params,
                                 std::chrono::milliseconds timeout) {
    int64_t id;
    {
        std::lock_guard lock(mu_);
        id = next_id_++;
    }
    transport_->send(make_request(id, method, std::move(params)));
    std::unique_lock lock(mu_);
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
        for (auto it = responses_.begin(); it != responses_.end(); ++it) {
            if ((*it)["id"] != json(id)) continue;
            json r = std::move(*it);
            responses_.erase(it);
            if (r["is_error"].get<bool>()) {
                return make_error(
                    method + " failed: " + r["result"].value("message", dump_json(r["result"])));
            }
            return r["result"];
        }
        if (closed_) return make_error(method + ": the server exited");
        if (cv_.wait_until(lock, deadline) == std::cv_status::timeout) {
            return make_error(method + ": timed out");
        }
    }
}

Expected<json> ChildServer::wait_notification(
    const std::function<bool(const std::string&, const json&)>& match,
    std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
        while (!notifications_.empty()) {
            json n = std::move(notifications_.front());
            notifications_.pop_front();
            if (match(n["method"].get<std::string>(), n["params"])) return n["params"];
        }
        if (closed_) return make_error("the server exited");
        if (cv_.wait_until(lock, deadline) == std::cv_status::timeout) {
            return make_error("timed out");
        }
    }
}

int ChildServer::wait_exit(std::chrono::milliseconds timeout) {
    if (reaped_) return exit_code_;
    if (to_child_ >= 0) {
        ::close(to_child_);  // end of input counts as `exit`
        to_child_ = -1;
    }
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    int status = 0;
    while (true) {
        const pid_t r = ::waitpid(pid_, &status, WNOHANG);
        if (r == pid_) break;
        if (r < 0 && errno != EINTR) return -1;
        if (std::chrono::steady_clock::now() >= deadline) {
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, &status, 0);
            reaped_ = true;
            exit_code_ = -1;
            return -1;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    reaped_ = true;
    exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return exit_code_;
}

}  // namespace hearth::lsp
