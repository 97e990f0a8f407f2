#include "server.h"

#include <signal.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include "code_actions.h"
#include "context.h"
#include "documents.h"
#include "handler_table.h"
#include "postprocess.h"
#include "protocol.h"
#include "reply.h"
#include "stdio_transport.h"
#include "worker.h"

namespace hearth::lsp {

namespace {

constexpr const char* kCmdApplyRewrite = "hearth.applyRewrite";
constexpr const char* kCmdStatus = "hearth.status";
constexpr const char* kCmdReloadModel = "hearth.reloadModel";
constexpr const char* kCmdClearCache = "hearth.clearCache";
constexpr size_t kMaxOutstandingServerRequests = 256;
constexpr size_t kSuffixHeadBytes = 8192;  // enough suffix for the post-processing rules
// Token cap of an automatic request with text after the cursor, whose answer is the rest of
// one line: 95% of the non-blank lines of a sample of Python's standard library (40 files)
// are at most 31 tokens long in the bundled model's 2,048-token vocabulary (fewer in larger
// ones), so a model that rambles on within a line costs at most this much while the user
// types.
constexpr int32_t kMidLineAutomaticTokens = 32;
// Messages parsed but not yet handled by the loop: beyond these the reader thread waits, so
// a client that writes faster than the server handles is slowed down instead of filling
// memory (one message is always admitted, however large).
constexpr size_t kMaxBacklogMessages = 1024;
constexpr size_t kMaxBacklogBytes = size_t{256} << 20;
constexpr int32_t kMessageTypeError = 1;
constexpr int32_t kMessageTypeWarning = 2;
constexpr int32_t kMessageTypeInfo = 3;

// Why the loop stops model work early.
struct CancelState {
    std::atomic<bool> cancelled{false};   // $/cancelRequest, shutdown or exit
    std::atomic<bool> superseded{false};  // a newer request for the same document
    bool stop() const { return cancelled.load() || superseded.load(); }
};

enum class JobKind { Inline, Classic, Rewrite };

// One unit of model work waiting for, or running on, the worker.
struct Job {
    Job(JobKind k, ReplyOnce r) : kind(k), reply(std::move(r)) {}

    uint64_t seq = 0;
    JobKind kind;
    ReplyOnce reply;
    std::shared_ptr<CancelState> cancel;
    std::string slot;  // completions: one pending job per slot (kind + uri)
    std::string uri;
    int32_t version = 0;  // the document version the request refers to
    bool ready = true;    // false while debouncing
    std::unique_ptr<asio::steady_timer> timer;

    // When the loop got the request: latency budgets and ms_queue count from here, so the
    // debounce and the wait for the worker are included.
    std::chrono::steady_clock::time_point received = std::chrono::steady_clock::now();
    std::chrono::steady_clock::time_point dispatched;

    // Completions.
    Position position;
    std::optional<SelectedCompletionInfo> selected;
    // An inline request the editor made by itself while the user types (triggerKind 2):
    // the editor gives up on it after a while, so it gets a smaller token budget and the
    // latency budget (settings.h).
    bool automatic = false;
    // Filled when dispatched, for post-processing and the reply.
    std::string prefix_line;  // the prefix's last line (what is before the cursor on it)
    std::string suffix_head;  // the first kSuffixHeadBytes of the suffix
    // The same options for the stop rules while generating and after, even when the
    // settings change in between.
    PostprocessOptions postprocess;
    std::string eol;
    std::string insert_prefix;  // selected item text, or the word before the cursor
    Range replace_range;
    std::string progress_token;

    // Rewrites.
    RewriteData rewrite;
    std::string title;
    json action;               // codeAction/resolve: the action to return with its edit
    bool via_command = false;  // hearth.applyRewrite: send workspace/applyEdit
};

bool is_word_byte(char c) {
    auto u = static_cast<unsigned char>(c);
    return u >= 0x80 || std::isalnum(u) || c == '_';
}

// Automatic inline requests are skipped when the rest of the cursor's line holds anything
// but whitespace and closing punctuation: the cursor is then in the middle of a word or
// of code, where an unrequested suggestion gets in the way. Typing before `)` or `");`
// still gets suggestions.
bool mid_line_skip(std::string_view rest_of_line) {
    for (char c : rest_of_line) {
        if (c == ' ' || c == '\t') continue;
        if (std::string_view(")]}>\"'`;,:").find(c) != std::string_view::npos) continue;
        return true;
    }
    return false;
}

std::string convert_eol(std::string_view text, std::string_view eol) {
    if (eol == "\n") return std::string(text);
    std::string out;
    out.reserve(text.size() + text.size() / 16);
    for (char c : text) {
        if (c == '\n') {
            out += eol;
        } else {
            out.push_back(c);
        }
    }
    return out;
}

std::string first_line_label(std::string_view text) {
    size_t start = text.find_first_not_of(" \t\r\n");
    if (start == std::string_view::npos) return std::string();
    std::string_view rest = text.substr(start);
    return truncate_label(rest.substr(0, rest.find_first_of("\r\n")), 80);
}

double ms_between(std::chrono::steady_clock::time_point a,
                  std::chrono::steady_clock::time_point b) {
    return std::chrono::duration<double, std::milli>(b - a).count();
}

json stats_json(const CompletionStats& s) {
    return json{{"backend", s.backend},
                {"device", s.device},
                {"prompt_tokens", s.prompt_tokens},
                {"context_tokens", s.context_tokens},
                {"reused_tokens", s.reused_tokens},
                {"restored_tokens", s.restored_tokens},
                {"prefilled_tokens", s.prefilled_tokens},
                {"generated_tokens", s.generated_tokens},
                {"ms_total", s.ms_total},
                {"ms_prefill", s.ms_prefill},
                {"ms_restore", s.ms_restore},
                {"ms_decode", s.ms_decode},
                {"tokens_per_second", s.tokens_per_second}};
}

// "file:///a/my%20dir/x.py" -> "/a/my dir/x.py"; other schemes are kept whole.
std::string uri_to_path(std::string_view uri) {
    constexpr std::string_view kFile = "file://";
    if (uri.substr(0, kFile.size()) != kFile) return std::string(uri);
    uri.remove_prefix(kFile.size());
    std::string out;
    out.reserve(uri.size());
    auto hex = [](char c) -> int {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        return -1;
    };
    for (size_t i = 0; i < uri.size(); ++i) {
        if (uri[i] == '%' && i + 2 < uri.size() && hex(uri[i + 1]) >= 0 && hex(uri[i + 2]) >= 0) {
            out.push_back(static_cast<char>(hex(uri[i + 1]) * 16 + hex(uri[i + 2])));
            i += 2;
        } else {
            out.push_back(uri[i]);
        }
    }
    return out;
}

// "file:///a/b/" -> "/a/b": a workspace folder's path, without trailing slashes.
std::string folder_path(const std::string& uri) {
    std::string root = uri_to_path(uri);
    while (root.size() > 1 && root.back() == '/') root.pop_back();
    return root;
}

// A workspace folder's name, for repository-level prompt templates ("" for "/").
std::string folder_name(std::string_view root) {
    const size_t slash = root.find_last_of('/');
    return std::string(slash == std::string_view::npos ? root : root.substr(slash + 1));
}

}  // namespace

class Server::Impl {
    // One per workspace folder. A document belongs to the deepest folder holding it; its
    // repository context and its disk cache are that folder's.
    struct Folder {
        std::string root;  // absolute path, no trailing slash
        std::shared_ptr<const RepoIndex> index;
        std::vector<std::string> pending_refresh;  // changes seen while a scan runs
        bool scanning = false;
        RecentEdits edits;
    };
    struct Place {
        Folder* folder = nullptr;
        std::string rel;  // root-relative path
    };

  public:
    Impl(Transport& transport, LspServerOptions options, CompleterFactory factory);
    ~Impl();
    int run();

    // Requests.
    void initialize(const InitializeParams& p, Reply<json> reply);
    void shutdown(const EmptyParams& p, Reply<json> reply);
    void inline_completion(const InlineCompletionParams& p, Reply<InlineCompletionList> reply);
    void completion(const CompletionParams& p, Reply<CompletionList> reply);
    void code_action(const CodeActionParams& p, Reply<json> reply);
    void code_action_resolve(const CodeActionResolveParams& p, Reply<json> reply);
    void execute_command(const ExecuteCommandParams& p, Reply<json> reply);

    // Notifications.
    void initialized(const EmptyParams& p);
    void did_open(const DidOpenTextDocumentParams& p);
    void did_change(const DidChangeTextDocumentParams& p);
    void did_close(const DidCloseTextDocumentParams& p);
    void did_save(const DidSaveTextDocumentParams& p);
    void did_change_watched_files(const DidChangeWatchedFilesParams& p);
    void did_change_configuration(const DidChangeConfigurationParams& p);
    void cancel_request(const CancelParams& p);
    void set_trace(const SetTraceParams& p);

  private:
    enum class Lifecycle { Uninitialized, Running, ShutDown };
    enum class EngineState { NotLoaded, Loading, Ready, Failed };

    // Incoming messages (on the loop).
    void on_message(Message msg);
    void on_request(Request req);
    void on_notification(Notification note);
    void on_response(Response resp);
    void on_closed();
    void trace_incoming(const std::string& what, const json& params);

    // Outgoing.
    void send(const json& msg) { transport_.send(msg); }
    void notify(std::string_view method, json params) {
        send(make_notification(method, std::move(params)));
    }
    void request_client(std::string_view method, json params,
                        std::function<void(const Response&)> done);
    void log_message(int32_t type, const std::string& text);
    void send_status(std::string event, const json& extra);

    // Progress ($/progress after window/workDoneProgress/create).
    std::string progress_begin(const std::string& title, const std::string& message);
    void progress_report(const std::string& token, const std::string& message, int32_t percentage);
    void progress_end(const std::string& token, const std::string& message);
    void progress_send(const std::string& token, json value);

    // Scheduling.
    void schedule_completion(std::shared_ptr<Job> job, bool debounce);
    void schedule_rewrite(std::shared_ptr<Job> job);
    void answer_superseded(Job& job);
    void answer_cancelled(Job& job, const std::string& why);
    void drop_pending(const std::shared_ptr<Job>& job);
    void pump();
    void dispatch_completion(std::shared_ptr<Job> job);
    void dispatch_rewrite(std::shared_ptr<Job> job);
    void finish_completion(std::shared_ptr<Job> job, Expected<CompletionResult> result);
    void finish_rewrite(std::shared_ptr<Job> job, Expected<CompletionResult> result);
    void start_load();
    // (Re)indexes every workspace folder on a background thread, one after another.
    void start_scan();
    void finish_scan(const std::string& root, Expected<RepoIndex> index, uint64_t generation);
    // Re-checks files of a folder's index after they changed on disk (root-relative paths).
    void refresh_files(Folder& folder, const std::vector<std::string>& rel_paths);
    // The folder holding a document URI and its path there; no folder outside them all.
    Place workspace_path(const std::string& uri);
    // The path prompts show for a document: relative to its folder, else absolute.
    std::string document_path(const std::string& uri);
    void add_folder(const std::string& uri);
    void did_change_workspace_folders(const DidChangeWorkspaceFoldersParams& p);
    void clear_cache(Reply<json> reply);
    void finish_load(std::string error, std::string backend, std::string device);
    ProgressFn prefill_progress(const std::shared_ptr<Job>& job);
    void cancel_everything(const std::string& why);
    void stop_loop(int code);
    // A client that never sends `initialized` still gets a model when it first needs one.
    void load_if_never_loaded() {
        if (engine_state_ == EngineState::NotLoaded && !loading_) load_pending_ = true;
    }
    void watch_parent(int64_t pid);
    void close_backlog();
    size_t backlog_high_water() {
        std::lock_guard lock(backlog_mu_);
        return backlog_high_water_;
    }

    json workspace_edit(const std::string& uri, std::optional<int32_t> version, const Range& range,
                        const std::string& new_text) const;
    json status_json();
    json workspace_json() const;
    void apply_log_level();

    // Requests in flight, by id, shared with ReplyOnce callbacks on any thread. Declared
    // before io_ so they outlive the handlers io_ still holds when it is destroyed.
    std::mutex inflight_mu_;
    std::map<std::string, std::shared_ptr<CancelState>> inflight_;

    // Backpressure between the reader thread and the loop.
    std::mutex backlog_mu_;
    std::condition_variable backlog_cv_;
    size_t backlog_messages_ = 0;
    size_t backlog_bytes_ = 0;
    size_t backlog_high_water_ = 0;
    bool backlog_closed_ = false;  // the loop has ended: the reader must not wait

    // Threads and I/O.
    asio::io_context io_;
    asio::executor_work_guard<asio::io_context::executor_type> work_;
    Transport& transport_;
    LspServerOptions options_;
    CompleterFactory factory_;

    // Loop state.
    HandlerTable table_;
    Lifecycle lifecycle_ = Lifecycle::Uninitialized;
    bool stopping_ = false;
    int exit_code_ = 1;
    Capabilities caps_;
    Settings settings_;
    std::string root_uri_;
    std::string trace_ = "off";
    DocumentStore docs_;

    std::map<int64_t, std::function<void(const Response&)>> outgoing_;
    int64_t next_outgoing_id_ = 1;

    struct ProgressState {
        bool created = false;
        bool ended = false;
        std::vector<json> buffered;
    };
    std::map<std::string, ProgressState> progress_;
    uint64_t next_progress_ = 1;

    uint64_t next_seq_ = 1;
    std::map<std::string, std::shared_ptr<Job>> completions_;  // by slot
    std::deque<std::shared_ptr<Job>> rewrites_;
    std::shared_ptr<Job> running_;
    bool load_pending_ = false;
    bool loading_ = false;
    EngineState engine_state_ = EngineState::NotLoaded;
    std::string engine_error_;
    std::string backend_;
    std::string device_;
    std::string load_token_;
    std::string scan_token_;  // $/progress of the running workspace scan
    std::unique_ptr<asio::steady_timer> parent_timer_;
    json last_stats_ = nullptr;
    size_t completions_high_water_ = 0;
    uint64_t superseded_count_ = 0;

    // Repository context (docs/context.md). The index is immutable once published: a
    // change makes a new one, so a worker task keeps using the one it was given.
    std::vector<Folder> folders_;
    uint64_t scan_generation_ = 0;
    std::shared_ptr<std::atomic<bool>> scan_cancel_;
    std::thread scan_thread_;
    std::map<std::string, int64_t> last_edit_;  // by URI: edit sequence number
    std::set<std::string> dirty_;               // URIs edited since opened or saved
    int64_t edit_seq_ = 0;
    // Deferred engine work (disk cache checkpoints) runs when nothing else does.
    bool background_pending_ = false;
    bool background_running_ = false;
    CacheSummary cache_;
    int32_t n_ctx_ = 0;  // the loaded completer's context size (0: unknown)

    // Worker side: only touched by tasks on the worker thread.
    std::unique_ptr<Completer> completer_;
    // Declared last so it is destroyed (joined) before everything its tasks use.
    EngineWorker worker_;
};

Server::Impl::Impl(Transport& transport, LspServerOptions options, CompleterFactory factory)
    : work_(asio::make_work_guard(io_)),
      transport_(transport),
      options_(std::move(options)),
      factory_(std::move(factory)),
      settings_(options_.settings) {
    table_.bind("initialize", this, &Impl::initialize);
    table_.bind("shutdown", this, &Impl::shutdown);
    table_.bind("textDocument/inlineCompletion", this, &Impl::inline_completion);
    table_.bind("textDocument/completion", this, &Impl::completion);
    table_.bind("textDocument/codeAction", this, &Impl::code_action);
    table_.bind("codeAction/resolve", this, &Impl::code_action_resolve);
    table_.bind("workspace/executeCommand", this, &Impl::execute_command);
    table_.bind_notification("initialized", this, &Impl::initialized);
    table_.bind_notification("textDocument/didOpen", this, &Impl::did_open);
    table_.bind_notification("textDocument/didChange", this, &Impl::did_change);
    table_.bind_notification("textDocument/didClose", this, &Impl::did_close);
    table_.bind_notification("textDocument/didSave", this, &Impl::did_save);
    table_.bind_notification("workspace/didChangeWatchedFiles", this,
                             &Impl::did_change_watched_files);
    table_.bind_notification("workspace/didChangeWorkspaceFolders", this,
                             &Impl::did_change_workspace_folders);
    table_.bind_notification("workspace/didChangeConfiguration", this,
                             &Impl::did_change_configuration);
    table_.bind_notification("$/cancelRequest", this, &Impl::cancel_request);
    table_.bind_notification("$/setTrace", this, &Impl::set_trace);
}

Server::Impl::~Impl() {
    close_backlog();
    transport_.stop();
    if (scan_cancel_) scan_cancel_->store(true);
    if (scan_thread_.joinable()) scan_thread_.join();
    worker_.stop();
    // Jobs still here answer InternalError from their ReplyOnce (to a stopped transport,
    // so nobody sees it) while the state their callbacks use is still alive.
    completions_.clear();
    rewrites_.clear();
    running_.reset();
    outgoing_.clear();
    parent_timer_.reset();
}

int Server::Impl::run() {
    TransportCallbacks callbacks;
    callbacks.on_frame = [this](std::string body) {
        const size_t bytes = body.size();
        {
            std::unique_lock lock(backlog_mu_);
            backlog_cv_.wait(lock, [&] {
                return backlog_closed_ || backlog_messages_ == 0 ||
                       (backlog_messages_ < kMaxBacklogMessages &&
                        backlog_bytes_ + bytes <= kMaxBacklogBytes);
            });
            if (backlog_closed_) return;
            ++backlog_messages_;
            backlog_bytes_ += bytes;
            backlog_high_water_ = std::max(backlog_high_water_, backlog_messages_);
        }
        // Parse on the reader thread; the loop only sees typed messages.
        asio::post(io_, [this, bytes, msg = parse_message(body)]() mutable {
            {
                std::lock_guard lock(backlog_mu_);
                --backlog_messages_;
                backlog_bytes_ -= bytes;
            }
            backlog_cv_.notify_all();
            on_message(std::move(msg));
        });
    };
    callbacks.on_framing_error = [this](std::string_view what) {
        asio::post(io_, [what = std::string(what)] { spdlog::warn("framing error: {}", what); });
    };
    callbacks.on_closed = [this] { asio::post(io_, [this] { on_closed(); }); };
    transport_.start(std::move(callbacks));
    io_.run();
    close_backlog();
    transport_.stop();
    worker_.stop();
    return exit_code_;
}

// ---- incoming ---------------------------------------------------------------------------

void Server::Impl::on_message(Message msg) {
    if (stopping_) return;
    std::visit(
        [this](auto&& m) {
            using T = std::decay_t<decltype(m)>;
            if constexpr (std::is_same_v<T, Request>) {
                on_request(std::move(m));
            } else if constexpr (std::is_same_v<T, Notification>) {
                on_notification(std::move(m));
            } else if constexpr (std::is_same_v<T, Response>) {
                on_response(std::move(m));
            } else {
                spdlog::warn("invalid message: {}", m.error.message);
                send(make_error_response(m.id, m.error));
            }
        },
        std::move(msg));
}

void Server::Impl::trace_incoming(const std::string& what, const json& params) {
    if (trace_ == "off") return;
    json p{{"message", "Received " + what}};
    if (trace_ == "verbose") {
        std::string text = dump_json(params);
        constexpr size_t kMaxVerbose = 4096;
        if (text.size() > kMaxVerbose) text = text.substr(0, kMaxVerbose) + "...";
        p["verbose"] = "Params: " + text;
    }
    notify("$/logTrace", std::move(p));
}

void Server::Impl::on_request(Request req) {
    const RpcError* refusal = nullptr;
    static const RpcError kNotInitialized{ErrorCode::ServerNotInitialized,
                                          "server not initialized"};
    static const RpcError kShutDown{ErrorCode::InvalidRequest, "server is shutting down"};
    static const RpcError kTwice{ErrorCode::InvalidRequest, "initialize may only be sent once"};
    if (req.method == "initialize") {
        if (lifecycle_ != Lifecycle::Uninitialized) refusal = &kTwice;
    } else if (lifecycle_ == Lifecycle::Uninitialized) {
        refusal = &kNotInitialized;
    } else if (lifecycle_ == Lifecycle::ShutDown) {
        refusal = &kShutDown;
    }
    if (refusal) {
        send(make_error_response(req.id, *refusal));
        return;
    }
    trace_incoming("request '" + req.method + " - (" + dump_json(req.id) + ")'", req.params);

    const HandlerTable::RequestFn* handler = table_.request(req.method);
    if (!handler) {
        send(make_error_response(
            req.id, RpcError{ErrorCode::MethodNotFound, "method not found: " + req.method}));
        return;
    }
    std::string key = id_key(req.id);
    auto cancel = std::make_shared<CancelState>();
    {
        std::lock_guard lock(inflight_mu_);
        if (!inflight_.emplace(key, cancel).second) {
            send(make_error_response(req.id, RpcError{ErrorCode::InvalidRequest,
                                                      "a request with this id is still pending"}));
            return;
        }
    }
    ReplyOnce reply(
        req.id, req.method, [transport = &transport_](const json& m) { transport->send(m); },
        [this, key] {
            std::lock_guard lock(inflight_mu_);
            inflight_.erase(key);
        });
    (*handler)(req.params, std::move(reply));
}

void Server::Impl::on_notification(Notification note) {
    if (note.method == "exit") {
        stop_loop(lifecycle_ == Lifecycle::ShutDown ? 0 : 1);
        return;
    }
    // Before initialize and after shutdown, notifications other than exit are dropped.
    if (lifecycle_ != Lifecycle::Running) return;
    if (note.method != "$/cancelRequest")
        trace_incoming("notification '" + note.method + "'", note.params);
    const HandlerTable::NotificationFn* handler = table_.notification(note.method);
    if (!handler) {
        // "$/" notifications are optional by definition; others are logged, never answered.
        if (note.method.rfind("$/", 0) != 0) spdlog::debug("ignored notification {}", note.method);
        return;
    }
    (*handler)(note.params);
}

void Server::Impl::on_response(Response resp) {
    if (!resp.id.is_number_integer()) {
        spdlog::warn("response with unknown id {}", dump_json(resp.id));
        return;
    }
    auto it = outgoing_.find(resp.id.get<int64_t>());
    if (it == outgoing_.end()) {
        spdlog::warn("response with unknown id {}", dump_json(resp.id));
        return;
    }
    auto done = std::move(it->second);
    outgoing_.erase(it);
    if (done) done(resp);
}

void Server::Impl::on_closed() {
    if (stopping_) return;
    spdlog::info("input closed");
    stop_loop(lifecycle_ == Lifecycle::ShutDown ? 0 : 1);
}

// LSP: "if the parent process is not alive then the server should exit". An editor that
// crashes would otherwise leave the server, and the model in memory, behind.
void Server::Impl::watch_parent(int64_t pid) {
    if (!parent_timer_) parent_timer_ = std::make_unique<asio::steady_timer>(io_);
    parent_timer_->expires_after(options_.parent_check_interval);
    parent_timer_->async_wait([this, pid](const std::error_code& ec) {
        if (ec || stopping_) return;
        if (::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) {
            spdlog::warn("the editor process {} is gone; exiting", pid);
            stop_loop(1);
            return;
        }
        watch_parent(pid);
    });
}

void Server::Impl::close_backlog() {
    {
        std::lock_guard lock(backlog_mu_);
        backlog_closed_ = true;
    }
    backlog_cv_.notify_all();
}

void Server::Impl::stop_loop(int code) {
    exit_code_ = code;
    cancel_everything("server exiting");
    stopping_ = true;
    work_.reset();
    io_.stop();
}

// ---- outgoing ---------------------------------------------------------------------------

void Server::Impl::request_client(std::string_view method, json params,
                                  std::function<void(const Response&)> done) {
    int64_t id = next_outgoing_id_++;
    // A client that never answers must not make the table grow without end.
    if (outgoing_.size() >= kMaxOutstandingServerRequests) outgoing_.erase(outgoing_.begin());
    outgoing_[id] = std::move(done);
    send(make_request(id, method, std::move(params)));
}

void Server::Impl::log_message(int32_t type, const std::string& text) {
    notify("window/logMessage", json{{"type", type}, {"message", text}});
}

void Server::Impl::send_status(std::string event, const json& extra) {
    json params = stats_json(CompletionStats{});
    params["backend"] = backend_;
    params["device"] = device_;
    for (auto it = extra.begin(); it != extra.end(); ++it) params[it.key()] = it.value();
    params["event"] = std::move(event);
    notify("hearth/status", std::move(params));
}

std::string Server::Impl::progress_begin(const std::string& title, const std::string& message) {
    if (!caps_.work_done_progress) return std::string();
    std::string token = "hearth-progress-" + std::to_string(next_progress_++);
    progress_[token].buffered.push_back(json{{"kind", "begin"},
                                             {"title", title},
                                             {"message", message},
                                             {"percentage", 0},
                                             {"cancellable", false}});
    request_client(
        "window/workDoneProgress/create", json{{"token", token}},
        [this, token](const Response& resp) {
            auto it = progress_.find(token);
            if (it == progress_.end()) return;
            if (resp.is_error) {
                progress_.erase(it);  // the client refused: report nothing
                return;
            }
            it->second.created = true;
            for (auto& value : it->second.buffered) {
                notify("$/progress", json{{"token", token}, {"value", std::move(value)}});
            }
            it->second.buffered.clear();
            if (it->second.ended) progress_.erase(it);
        });
    // Tokens whose create request is never answered are forgotten with the oldest ones.
    while (progress_.size() > kMaxOutstandingServerRequests) progress_.erase(progress_.begin());
    return token;
}

void Server::Impl::progress_send(const std::string& token, json value) {
    auto it = progress_.find(token);
    if (it == progress_.end()) return;
    bool end = value.value("kind", "") == "end";
    if (it->second.created) {
        notify("$/progress", json{{"token", token}, {"value", std::move(value)}});
        if (end) progress_.erase(it);
        return;
    }
    // Not created yet: keep the begin, the latest report and the end.
    auto& buf = it->second.buffered;
    if (buf.size() > 1 && buf.back().value("kind", "") == "report") buf.pop_back();
    buf.push_back(std::move(value));
    if (end) it->second.ended = true;
}

void Server::Impl::progress_report(const std::string& token, const std::string& message,
                                   int32_t percentage) {
    if (token.empty()) return;
    progress_send(token,
                  json{{"kind", "report"}, {"message", message}, {"percentage", percentage}});
}

void Server::Impl::progress_end(const std::string& token, const std::string& message) {
    if (token.empty()) return;
    progress_send(token, json{{"kind", "end"}, {"message", message}});
}

// ---- lifecycle --------------------------------------------------------------------------

void Server::Impl::initialize(const InitializeParams& p, Reply<json> reply) {
    caps_ = negotiate(p.capabilities);
    for (const auto& warning : settings_.apply(p.initialization_options)) {
        spdlog::warn("{}", warning);
        log_message(kMessageTypeWarning, warning);
    }
    apply_log_level();
    // Every workspace folder is indexed; the first one is also where documents outside all
    // of them keep their disk cache (docs/lsp.md).
    if (!p.workspace_folders.empty()) {
        root_uri_ = p.workspace_folders.front();
        for (const std::string& f : p.workspace_folders) add_folder(f);
    } else if (p.root_uri) {
        root_uri_ = *p.root_uri;
        add_folder(root_uri_);
    }
    settings_.workspace_root = folders_.empty() ? std::string() : folders_.front().root;
    if (p.trace) trace_ = *p.trace;
    if (trace_ != "off" && trace_ != "messages" && trace_ != "verbose") trace_ = "off";
    if (p.client_info) {
        spdlog::info("client: {} {}", p.client_info->name, p.client_info->version);
    }
    if (p.process_id && *p.process_id > 0) watch_parent(*p.process_id);

    json code_action_provider{{"codeActionKinds", json::array({"quickfix", "refactor.rewrite"})},
                              {"resolveProvider", caps_.code_action_resolve}};
    json capabilities{
        {"positionEncoding", to_string(caps_.encoding)},
        {"textDocumentSync",
         {{"openClose", true}, {"change", 2}, {"save", {{"includeText", false}}}}},
        {"codeActionProvider", code_action_provider},
        {"executeCommandProvider",
         {{"commands", json::array({kCmdApplyRewrite, kCmdStatus, kCmdReloadModel,
                                     kCmdClearCache})}}},
        {"workspace", {{"workspaceFolders", {{"supported", true}, {"changeNotifications", true}}}}},
    };
    // Registered dynamically after `initialized` when the client asks for that.
    if (!caps_.inline_completion_dynamic) capabilities["inlineCompletionProvider"] = true;
    // Classic completion is offered to clients without inline completion only: a client
    // with both would ask the model twice per keystroke and show the text twice.
    if (!caps_.inline_completion) {
        capabilities["completionProvider"] = {{"resolveProvider", false}};
    }
    lifecycle_ = Lifecycle::Running;
    reply(json{{"capabilities", std::move(capabilities)},
               {"serverInfo", {{"name", "hearth"}, {"version", options_.version}}}});
}

void Server::Impl::initialized(const EmptyParams&) {
    json registrations = json::array();
    if (caps_.inline_completion_dynamic) {
        registrations.push_back({{"id", "hearth-inline-completion"},
                                 {"method", "textDocument/inlineCompletion"},
                                 {"registerOptions", {{"documentSelector", nullptr}}}});
    }
    if (caps_.watched_files_dynamic && !folders_.empty()) {
        // Every file: the index decides what it keeps (ignore files change what it keeps).
        registrations.push_back(
            {{"id", "hearth-watched-files"},
             {"method", "workspace/didChangeWatchedFiles"},
             {"registerOptions", {{"watchers", json::array({{{"globPattern", "**/*"}}})}}}});
    }
    if (caps_.configuration_dynamic) {
        // Makes clients such as VS Code send the "hearth" section on every change.
        registrations.push_back({{"id", "hearth-configuration"},
                                 {"method", "workspace/didChangeConfiguration"},
                                 {"registerOptions", {{"section", "hearth"}}}});
    }
    if (!registrations.empty()) {
        request_client("client/registerCapability", json{{"registrations", registrations}},
                       [](const Response& resp) {
                           if (resp.is_error) {
                               spdlog::warn("client/registerCapability failed: {}",
                                            dump_json(resp.result));
                           }
                       });
    }
    start_scan();
    if (engine_state_ == EngineState::NotLoaded && !loading_) {
        load_pending_ = true;
        pump();
    }
}

void Server::Impl::start_scan() {
    if (folders_.empty() || !options_.index_workspace) return;
    if (scan_cancel_) scan_cancel_->store(true);
    if (scan_thread_.joinable()) scan_thread_.join();  // a cancelled scan stops quickly
    const uint64_t generation = ++scan_generation_;
    scan_cancel_ = std::make_shared<std::atomic<bool>>(false);
    ScanOptions opts = default_scan_options();
    opts.exclude = settings_.context_exclude;
    opts.secrets.insert(opts.secrets.end(), settings_.context_secrets.begin(),
                        settings_.context_secrets.end());
    std::vector<std::string> roots;
    for (Folder& f : folders_) {
        f.scanning = true;
        roots.push_back(f.root);
    }
    progress_end(scan_token_, "");
    scan_token_ = progress_begin("hearth", "Indexing the workspace");
    scan_thread_ = std::thread([this, roots = std::move(roots), opts = std::move(opts),
                                cancel = scan_cancel_, generation] {
        for (const std::string& root : roots) {
            const auto t0 = std::chrono::steady_clock::now();
            Expected<RepoIndex> index =
                RepoIndex::scan(root, opts, [cancel] { return cancel->load(); });
            if (cancel->load()) return;
            const double ms = std::chrono::duration<double, std::milli>(
                                  std::chrono::steady_clock::now() - t0)
                                  .count();
            if (index) {
                spdlog::info("workspace {}: {} files indexed in {:.0f} ms", root,
                             index->files().size(), ms);
            }
            asio::post(io_, [this, root, index = std::move(index), generation]() mutable {
                finish_scan(root, std::move(index), generation);
            });
        }
    });
}

void Server::Impl::finish_scan(const std::string& root, Expected<RepoIndex> index,
                               uint64_t generation) {
    if (generation != scan_generation_) return;  // a newer scan is on its way
    auto it = std::find_if(folders_.begin(), folders_.end(),
                           [&](const Folder& f) { return f.root == root; });
    if (it == folders_.end()) return;  // removed meanwhile
    Folder& folder = *it;
    folder.scanning = false;
    if (std::none_of(folders_.begin(), folders_.end(), [](const Folder& f) { return f.scanning; })) {
        progress_end(scan_token_, "Workspace indexed");
        scan_token_.clear();
    }
    if (!index) {
        spdlog::warn("workspace scan of {} failed: {}", root, index.error().message);
        log_message(kMessageTypeWarning,
                    "hearth: no repository context from " + root + ": " + index.error().message);
        return;
    }
    folder.index = std::make_shared<const RepoIndex>(std::move(*index));
    std::vector<std::string> changed;
    changed.swap(folder.pending_refresh);
    if (!changed.empty()) refresh_files(folder, changed);
    send_status("workspace_indexed",
                json{{"root", root}, {"files", folder.index->files().size()}});
}

void Server::Impl::refresh_files(Folder& folder, const std::vector<std::string>& rel_paths) {
    if (folder.scanning || !folder.index) {
        folder.pending_refresh.insert(folder.pending_refresh.end(), rel_paths.begin(),
                                      rel_paths.end());
        if (folder.pending_refresh.size() > 10000) {
            // A storm of changes (a branch switch): scan again instead of replaying them.
            folder.pending_refresh.clear();
            if (!folder.scanning) start_scan();
        }
        return;
    }
    auto next = std::make_shared<RepoIndex>(*folder.index);
    bool changed = false;
    for (const std::string& rel : rel_paths) changed = next->update(rel) || changed;
    if (changed) folder.index = std::move(next);
}

Server::Impl::Place Server::Impl::workspace_path(const std::string& uri) {
    Place best;
    if (!uri.starts_with("file://")) return best;
    const std::string path = uri_to_path(uri);
    for (Folder& f : folders_) {
        const std::string root = f.root == "/" ? f.root : f.root + "/";
        if (path.size() <= root.size() || path.compare(0, root.size(), root) != 0) continue;
        if (best.folder && best.folder->root.size() >= f.root.size()) continue;  // the deepest
        best.folder = &f;
        best.rel = path.substr(root.size());
    }
    return best;
}

std::string Server::Impl::document_path(const std::string& uri) {
    Place place = workspace_path(uri);
    return place.folder ? std::move(place.rel) : uri_to_path(uri);
}

void Server::Impl::add_folder(const std::string& uri) {
    if (!uri.starts_with("file://")) return;
    std::string root = folder_path(uri);
    for (const Folder& f : folders_) {
        if (f.root == root) return;
    }
    folders_.push_back(Folder{root, nullptr, {}, false, RecentEdits{}});
}

void Server::Impl::did_change_workspace_folders(const DidChangeWorkspaceFoldersParams& p) {
    for (const std::string& uri : p.removed) {
        const std::string root = folder_path(uri);
        std::erase_if(folders_, [&](const Folder& f) { return f.root == root; });
    }
    for (const std::string& uri : p.added) add_folder(uri);
    start_scan();  // every folder again: simple, and a scan takes milliseconds per thousand files
}

void Server::Impl::did_change_watched_files(const DidChangeWatchedFilesParams& p) {
    std::map<Folder*, std::vector<std::string>> by_folder;
    for (const FileEvent& e : p.changes) {
        Place place = workspace_path(e.uri);
        if (place.folder) by_folder[place.folder].push_back(std::move(place.rel));
    }
    for (auto& [folder, rel] : by_folder) refresh_files(*folder, rel);
}

void Server::Impl::shutdown(const EmptyParams&, Reply<json> reply) {
    lifecycle_ = Lifecycle::ShutDown;
    cancel_everything("server shutting down");
    reply(nullptr);
}

void Server::Impl::set_trace(const SetTraceParams& p) {
    trace_ = p.value;
}

void Server::Impl::did_change_configuration(const DidChangeConfigurationParams& p) {
    Settings next = settings_;
    for (const auto& warning : next.apply(p.settings)) {
        spdlog::warn("{}", warning);
        log_message(kMessageTypeWarning, warning);
    }
    bool reload = next.engine_differs(settings_);
    const bool rescan = next.context_exclude != settings_.context_exclude ||
                        next.context_secrets != settings_.context_secrets;
    settings_ = std::move(next);
    if (rescan) start_scan();
    apply_log_level();
    if (reload && (engine_state_ != EngineState::NotLoaded || loading_)) {
        load_pending_ = true;
        pump();
    }
}

void Server::Impl::apply_log_level() {
    spdlog::set_level(spdlog::level::from_str(settings_.log_level));
}

// ---- documents --------------------------------------------------------------------------

void Server::Impl::did_open(const DidOpenTextDocumentParams& p) {
    if (Status st = docs_.open(p.text_document); !st) {
        spdlog::warn("didOpen {}: {}", p.text_document.uri, st.error().message);
        log_message(kMessageTypeWarning, "hearth: " + st.error().message);
    }
}

void Server::Impl::did_change(const DidChangeTextDocumentParams& p) {
    const std::string& uri = p.text_document.uri;
    if (Status st = docs_.change(p, caps_.encoding); st) {
        dirty_.insert(uri);
        last_edit_[uri] = ++edit_seq_;
        // The ring of recent edits holds a few lines around each change (never from files
        // that must stay out of prompts).
        const Place place = workspace_path(uri);
        const TextDocument* doc = docs_.get(uri);
        if (doc && place.folder && place.folder->index &&
            place.folder->index->eligible(place.rel)) {
            for (const auto& change : p.content_changes) {
                if (!change.range) continue;  // a whole-text replacement says nothing of where
                const auto first = static_cast<int32_t>(change.range->start.line);
                const auto lines = static_cast<int32_t>(
                    std::count(change.text.begin(), change.text.end(), '\n'));
                const auto removed =
                    static_cast<int32_t>(change.range->end.line - change.range->start.line);
                place.folder->edits.shift(place.rel, first, lines - removed);
                place.folder->edits.record(place.rel, doc->text(), first, first + lines);
            }
        }
    } else {
        // The document keeps its previous text: an edit that does not fit is a client
        // bug or a lost message, and guessing would corrupt every later completion.
        std::string text = "didChange " + p.text_document.uri + " rejected: " + st.error().message;
        spdlog::warn("{}", text);
        log_message(kMessageTypeWarning, "hearth: " + text);
    }
}

void Server::Impl::did_close(const DidCloseTextDocumentParams& p) {
    docs_.close(p.text_document.uri);
    dirty_.erase(p.text_document.uri);
    for (JobKind kind : {JobKind::Inline, JobKind::Classic}) {
        std::string slot = std::to_string(static_cast<int>(kind)) + p.text_document.uri;
        if (auto it = completions_.find(slot); it != completions_.end()) {
            auto job = it->second;
            drop_pending(job);
            answer_superseded(*job);
        }
    }
    if (running_ && running_->uri == p.text_document.uri && running_->kind != JobKind::Rewrite) {
        running_->cancel->superseded = true;
    }
}

void Server::Impl::did_save(const DidSaveTextDocumentParams& p) {
    dirty_.erase(p.text_document.uri);
    Place place = workspace_path(p.text_document.uri);
    if (place.folder) refresh_files(*place.folder, {std::move(place.rel)});
}

// ---- completions ------------------------------------------------------------------------

void Server::Impl::inline_completion(const InlineCompletionParams& p,
                                     Reply<InlineCompletionList> reply) {
    const TextDocument* doc = docs_.get(p.text_document.uri);
    if (!doc) {
        reply(InlineCompletionList{});
        return;
    }
    Expected<size_t> offset = doc->offset_at(p.position, caps_.encoding);
    if (!offset) {
        reply.error(ErrorCode::InvalidParams, "params.position: " + offset.error().message);
        return;
    }
    bool automatic = p.context.trigger_kind == InlineTriggerKind::Automatic;
    if (automatic && !p.context.selected_completion_info) {
        std::string_view line = doc->line_text(p.position.line);
        size_t col = *offset - doc->line_start(p.position.line);
        if (mid_line_skip(line.substr(col))) {
            reply(InlineCompletionList{});
            return;
        }
    }
    auto job = std::make_shared<Job>(JobKind::Inline, reply.raw());
    job->uri = p.text_document.uri;
    job->version = doc->version();
    job->position = p.position;
    job->selected = p.context.selected_completion_info;
    job->automatic = automatic;
    schedule_completion(std::move(job), automatic);
}

void Server::Impl::completion(const CompletionParams& p, Reply<CompletionList> reply) {
    const TextDocument* doc = docs_.get(p.text_document.uri);
    if (!doc) {
        reply(CompletionList{});
        return;
    }
    if (Expected<size_t> offset = doc->offset_at(p.position, caps_.encoding); !offset) {
        reply.error(ErrorCode::InvalidParams, "params.position: " + offset.error().message);
        return;
    }
    auto job = std::make_shared<Job>(JobKind::Classic, reply.raw());
    job->uri = p.text_document.uri;
    job->version = doc->version();
    job->position = p.position;
    schedule_completion(std::move(job), true);
}

void Server::Impl::answer_superseded(Job& job) {
    ++superseded_count_;
    switch (job.kind) {
        case JobKind::Inline:
            job.reply.result(json(InlineCompletionList{}));
            break;
        case JobKind::Classic:
            job.reply.result(json(CompletionList{}));
            break;
        case JobKind::Rewrite:
            job.reply.error(ErrorCode::RequestCancelled, "superseded");
            break;
    }
}

void Server::Impl::answer_cancelled(Job& job, const std::string& why) {
    job.reply.error(ErrorCode::RequestCancelled, why);
}

void Server::Impl::drop_pending(const std::shared_ptr<Job>& job) {
    job->timer.reset();  // cancels a debounce wait; a job off the queues holds no timer
    if (job->kind == JobKind::Rewrite) {
        rewrites_.erase(std::remove(rewrites_.begin(), rewrites_.end(), job), rewrites_.end());
    } else if (auto it = completions_.find(job->slot);
               it != completions_.end() && it->second == job) {
        completions_.erase(it);
    }
}

void Server::Impl::schedule_completion(std::shared_ptr<Job> job, bool debounce) {
    {
        std::lock_guard lock(inflight_mu_);
        auto it = inflight_.find(id_key(job->reply.id()));
        job->cancel = it != inflight_.end() ? it->second : std::make_shared<CancelState>();
    }
    job->seq = next_seq_++;
    job->slot = std::to_string(static_cast<int>(job->kind)) + job->uri;

    if (auto it = completions_.find(job->slot); it != completions_.end()) {
        auto old = it->second;
        drop_pending(old);
        answer_superseded(*old);
    }
    if (running_ && running_->slot == job->slot) running_->cancel->superseded = true;

    while (completions_.size() >= options_.max_pending_completions && !completions_.empty()) {
        auto oldest = std::min_element(completions_.begin(), completions_.end(),
                                       [](const auto& a, const auto& b) {
                                           return a.second->seq < b.second->seq;
                                       })
                          ->second;
        drop_pending(oldest);
        answer_superseded(*oldest);
    }

    if (debounce && settings_.debounce_ms > 0) {
        job->ready = false;
        job->timer = std::make_unique<asio::steady_timer>(
            io_, std::chrono::milliseconds(settings_.debounce_ms));
        std::weak_ptr<Job> weak = job;
        job->timer->async_wait([this, weak](const std::error_code& ec) {
            auto j = weak.lock();
            if (ec || !j) return;
            auto it = completions_.find(j->slot);
            if (it == completions_.end() || it->second != j) return;
            j->ready = true;
            pump();
        });
    }
    completions_[job->slot] = job;
    completions_high_water_ = std::max(completions_high_water_, completions_.size());
    load_if_never_loaded();
    pump();
}

void Server::Impl::schedule_rewrite(std::shared_ptr<Job> job) {
    {
        std::lock_guard lock(inflight_mu_);
        auto it = inflight_.find(id_key(job->reply.id()));
        job->cancel = it != inflight_.end() ? it->second : std::make_shared<CancelState>();
    }
    if (rewrites_.size() >= options_.max_queued_rewrites) {
        job->reply.error(ErrorCode::RequestFailed,
                         "too many rewrites are waiting; try again later");
        return;
    }
    job->seq = next_seq_++;
    rewrites_.push_back(std::move(job));
    load_if_never_loaded();
    pump();
}

void Server::Impl::cancel_request(const CancelParams& p) {
    std::shared_ptr<CancelState> state;
    {
        std::lock_guard lock(inflight_mu_);
        auto it = inflight_.find(id_key(p.id));
        if (it == inflight_.end()) return;  // already answered
        state = it->second;
    }
    state->cancelled = true;
    std::shared_ptr<Job> pending;
    for (const auto& [slot, job] : completions_) {
        if (job->cancel == state) pending = job;
    }
    for (const auto& job : rewrites_) {
        if (job->cancel == state) pending = job;
    }
    if (pending) {
        drop_pending(pending);
        answer_cancelled(*pending, "cancelled");
    }
    // A running job sees the flag through its Completer's `cancelled` callback.
}

void Server::Impl::cancel_everything(const std::string& why) {
    std::vector<std::shared_ptr<Job>> jobs;
    for (const auto& [slot, job] : completions_) jobs.push_back(job);
    jobs.insert(jobs.end(), rewrites_.begin(), rewrites_.end());
    for (const auto& job : jobs) {
        drop_pending(job);
        answer_cancelled(*job, why);
    }
    if (running_) running_->cancel->cancelled = true;
}

void Server::Impl::pump() {
    if (stopping_ || running_ || loading_ || background_running_) return;
    if (load_pending_) {
        start_load();
        return;
    }
    std::shared_ptr<Job> next;
    for (const auto& [slot, job] : completions_) {
        if (job->ready && (!next || job->seq < next->seq)) next = job;
    }
    if (!rewrites_.empty() && (!next || rewrites_.front()->seq < next->seq))
        next = rewrites_.front();
    if (!next) {
        if (background_pending_ && engine_state_ == EngineState::Ready) {
            // One short step at a time, so a request that arrives waits for one step at most.
            background_running_ = true;
            worker_.post([this] {
                const bool more = completer_ && completer_->background_work();
                asio::post(io_, [this, more] {
                    background_running_ = false;
                    background_pending_ = more;
                    pump();
                });
            });
        }
        return;
    }
    drop_pending(next);
    if (next->kind == JobKind::Rewrite) {
        dispatch_rewrite(std::move(next));
    } else {
        dispatch_completion(std::move(next));
    }
}

ProgressFn Server::Impl::prefill_progress(const std::shared_ptr<Job>& job) {
    if (!caps_.work_done_progress) return {};
    auto last = std::make_shared<int32_t>(-1);
    std::weak_ptr<Job> weak = job;
    int32_t min_tokens = options_.progress_min_tokens;
    // Runs on the worker: post only when the percentage moves.
    return [this, last, weak, min_tokens](int32_t done, int32_t total) {
        if (total < min_tokens || total <= 0) return;
        int32_t pct =
            static_cast<int32_t>(std::clamp<int64_t>(int64_t{done} * 100 / total, 0, 100));
        if (pct == *last) return;
        *last = pct;
        asio::post(io_, [this, weak, pct] {
            auto j = weak.lock();
            if (!j || j != running_) return;
            if (j->progress_token.empty()) {
                j->progress_token = progress_begin("hearth", "Reading context");
            }
            progress_report(j->progress_token, "Reading context", pct);
        });
    };
}

void Server::Impl::dispatch_completion(std::shared_ptr<Job> job) {
    const TextDocument* doc = docs_.get(job->uri);
    if (!doc || doc->version() != job->version || job->cancel->stop() ||
        engine_state_ != EngineState::Ready) {
        // Closed, edited since (the client asks again for the new text), or no model.
        if (job->cancel->cancelled) {
            answer_cancelled(*job, "cancelled");
        } else {
            answer_superseded(*job);
        }
        pump();
        return;
    }
    Expected<size_t> cursor = doc->offset_at(job->position, caps_.encoding);
    if (!cursor) {
        job->reply.error(ErrorCode::InvalidParams, "params.position: " + cursor.error().message);
        pump();
        return;
    }
    const std::string& text = doc->text();
    size_t line_start = doc->line_start(job->position.line);
    size_t prefix_end = *cursor;  // where the model's prefix ends
    size_t suffix_start = *cursor;
    // A character past the end of the line was clamped; the reply uses the real position.
    job->position = doc->position_at(*cursor, caps_.encoding);
    job->replace_range = Range{job->position, job->position};

    if (job->kind == JobKind::Inline && job->selected) {
        // The completion must extend the item selected in the completion widget: the model
        // sees the text as if that item were accepted, and the reply replaces its range.
        const Range& r = job->selected->range;
        Expected<size_t> a = doc->offset_at(r.start, caps_.encoding);
        Expected<size_t> b = doc->offset_at(r.end, caps_.encoding);
        if (a && b && r.start.line == job->position.line && r.end.line == job->position.line &&
            *a <= *cursor && *cursor <= *b) {
            prefix_end = *a;
            suffix_start = *b;
            job->insert_prefix = job->selected->text;
            job->replace_range = Range{r.start, r.end};
        } else {
            spdlog::debug("selectedCompletionInfo ignored: range is not around the cursor");
        }
    } else if (job->kind == JobKind::Classic) {
        // Clients filter completion items by the word before the cursor, so the item
        // replaces that word and starts with it.
        size_t w = *cursor;
        while (w > line_start && is_word_byte(text[w - 1])) --w;
        job->insert_prefix = text.substr(w, *cursor - w);
        job->replace_range = Range{doc->position_at(w, caps_.encoding), job->position};
    }

    CompletionRequest req;
    // The repository context is chosen on the worker (it reads files); it gets what it
    // needs by value: the folder's index (immutable), the open documents and the edits.
    const Place place = workspace_path(job->uri);
    const std::string rel = place.rel;
    if (place.folder) {
        req.path = place.rel;
        req.repo_name = folder_name(place.folder->root);
        req.workspace = place.folder->root;
    } else {
        req.path = uri_to_path(job->uri);
        req.repo_name = folder_name(folder_path(root_uri_));
    }
    std::shared_ptr<const RepoIndex> index = place.folder ? place.folder->index : nullptr;
    req.cache_prompt = index && index->eligible(rel);
    RecentEdits edits = place.folder ? place.folder->edits : RecentEdits{};
    std::vector<OpenDocument> open;
    if (index) {
        for (const auto& [uri, d] : docs_.all()) {
            if (uri == job->uri) continue;
            Place other = workspace_path(uri);
            if (other.folder != place.folder) continue;
            std::string r = std::move(other.rel);
            auto edited = last_edit_.find(uri);
            open.push_back(OpenDocument{std::move(r), d.text(), dirty_.contains(uri),
                                        edited == last_edit_.end() ? 0 : edited->second});
        }
    }
    // The context budget: the setting, or half the context; never more than what leaves
    // room for the current file and the answer.
    const int32_t n_ctx = n_ctx_ > 0 ? n_ctx_ : settings_.context_size;
    ContextOptions context_opts;
    context_opts.budget_tokens = std::min(
        settings_.context_tokens > 0 ? settings_.context_tokens : n_ctx / 2,
        std::max(0, n_ctx - settings_.max_tokens - n_ctx / 8));
    req.prefix = text.substr(0, prefix_end);
    if (job->kind == JobKind::Inline && job->selected && !job->insert_prefix.empty()) {
        req.prefix += job->insert_prefix;
    }
    req.suffix = text.substr(suffix_start);
    req.max_lines = settings_.max_lines;
    std::string_view line = doc->line_text(job->position.line);
    size_t suffix_col = std::min(suffix_start - line_start, line.size());
    req.single_line = !is_blank(line.substr(suffix_col));
    req.max_tokens = settings_.max_tokens;
    if (job->automatic) {
        req.max_tokens = std::min(req.max_tokens, settings_.max_tokens_automatic);
        if (req.single_line) req.max_tokens = std::min(req.max_tokens, kMidLineAutomaticTokens);
        req.max_suffix_tokens = settings_.max_suffix_tokens_automatic;
    }
    req.temperature = static_cast<float>(settings_.temperature);
    std::shared_ptr<CancelState> cancel = job->cancel;
    req.cancelled = [cancel] { return cancel->stop(); };
    req.progress = prefill_progress(job);

    size_t nl = req.prefix.find_last_of("\r\n");
    job->prefix_line = nl == std::string::npos ? req.prefix : req.prefix.substr(nl + 1);
    job->suffix_head = req.suffix.substr(0, kSuffixHeadBytes);
    job->eol = std::string(doc->eol());
    job->postprocess.max_lines = settings_.max_lines;
    // The Completer caps tokens; this byte cap only guards against one that does not.
    job->postprocess.max_bytes = static_cast<size_t>(req.max_tokens) * 32;
    // The post-processing rules, applied while generating: no token is generated past the
    // point where they cut (postprocess_would_cut never changes the answer). Then, for an
    // automatic request past its latency budget, the next complete line ends it.
    std::optional<std::chrono::steady_clock::time_point> deadline;
    if (job->automatic && settings_.automatic_latency_ms > 0) {
        deadline = job->received + std::chrono::milliseconds(settings_.automatic_latency_ms);
    }
    req.stop_on_text = [prefix_line = job->prefix_line, suffix_head = job->suffix_head,
                        options = job->postprocess,
                        deadline](std::string_view completion, std::string& reason) {
        if (postprocess_would_cut(completion, prefix_line, suffix_head, options, reason)) {
            return true;
        }
        if (deadline && std::chrono::steady_clock::now() >= *deadline &&
            !is_blank(complete_lines(completion))) {
            reason = "latency_budget";
            return true;
        }
        return false;
    };

    job->dispatched = std::chrono::steady_clock::now();
    running_ = job;
    worker_.post([this, job, req = std::move(req), index = std::move(index), rel,
                  text = text, open = std::move(open), edits = std::move(edits),
                  context_opts]() mutable {
        if (index && !req.cancelled()) {
            req.context = build_context(*index, rel, text, open, edits, context_opts);
        }
        Expected<CompletionResult> result =
            completer_ ? completer_->complete(req)
                       : Expected<CompletionResult>(make_error("no model"));
        CacheSummary cache = completer_ ? completer_->cache_summary() : CacheSummary{};
        asio::post(io_, [this, job, result = std::move(result),
                         cache = std::move(cache)]() mutable {
            cache_ = std::move(cache);
            finish_completion(job, std::move(result));
        });
    });
}

void Server::Impl::finish_completion(std::shared_ptr<Job> job, Expected<CompletionResult> result) {
    running_.reset();
    background_pending_ = true;
    progress_end(job->progress_token, "");
    if (job->cancel->cancelled) {
        answer_cancelled(*job, "cancelled");
    } else if (job->cancel->superseded) {
        answer_superseded(*job);
    } else if (!result.ok()) {
        if (result.error().message == "cancelled") {
            answer_cancelled(*job, "cancelled");
        } else {
            spdlog::warn("completion failed: {}", result.error().message);
            job->reply.error(ErrorCode::RequestFailed,
                             "completion failed: " + result.error().message);
        }
    } else {
        // Cut short by the latency budget: the last line may be unfinished; only the complete
        // lines are answered.
        std::string_view completion = result->text;
        if (result->stop_reason == "latency_budget") completion = complete_lines(completion);
        PostprocessResult pp = postprocess_completion(completion, job->prefix_line,
                                                      job->suffix_head, job->postprocess);
        std::string text = convert_eol(pp.text, job->eol);
        if (job->kind == JobKind::Inline) {
            InlineCompletionList list;
            if (!text.empty()) {
                list.items.push_back(
                    InlineCompletionItem{job->insert_prefix + text, job->replace_range});
            }
            job->reply.result(json(list));
        } else {
            CompletionList list;
            if (!text.empty()) {
                CompletionItem item;
                item.new_text = job->insert_prefix + text;
                item.label = first_line_label(item.new_text);
                item.filter_text = job->insert_prefix;
                item.range = job->replace_range;
                list.items.push_back(std::move(item));
            }
            job->reply.result(json(list));
        }
        last_stats_ = stats_json(result->stats);
        json extra = last_stats_;
        extra["uri"] = job->uri;
        extra["stop_reason"] = result->stop_reason;
        extra["cut_by"] = pp.cut_by;
        extra["automatic"] = job->automatic;
        extra["ms_queue"] = ms_between(job->received, job->dispatched);
        extra["ms_reply"] = ms_between(job->received, std::chrono::steady_clock::now());
        if (!result->stats.backend.empty()) backend_ = result->stats.backend;
        if (!result->stats.device.empty()) device_ = result->stats.device;
        send_status("completion", extra);
    }
    pump();
}

// ---- code actions -----------------------------------------------------------------------

json Server::Impl::workspace_edit(const std::string& uri, std::optional<int32_t> version,
                                  const Range& range, const std::string& new_text) const {
    json edit{{"range", range}, {"newText", new_text}};
    if (caps_.document_changes) {
        json id{{"uri", uri}, {"version", version ? json(*version) : json(nullptr)}};
        json change{{"textDocument", id}, {"edits", json::array({edit})}};
        return json{{"documentChanges", json::array({change})}};
    }
    return json{{"changes", {{uri, json::array({edit})}}}};
}

void Server::Impl::code_action(const CodeActionParams& p, Reply<json> reply) {
    const TextDocument* doc = docs_.get(p.text_document.uri);
    if (!doc) {
        reply(json::array());
        return;
    }
    Expected<size_t> a = doc->offset_at(p.range.start, caps_.encoding);
    Expected<size_t> b = doc->offset_at(p.range.end, caps_.encoding);
    if (!a || !b || *a > *b) {
        reply.error(ErrorCode::InvalidParams, "params.range: " + (!a   ? a.error().message
                                                                  : !b ? b.error().message
                                                                       : "start is after end"));
        return;
    }
    // Without resolve support the edit is computed when the command runs, which needs
    // workspace/applyEdit; computing every action's edit up front would cost one model
    // call per action each time the editor shows its light bulb.
    if (!caps_.code_action_resolve && !caps_.apply_edit) {
        reply(json::array());
        return;
    }
    json out = json::array();
    for (PlannedAction& action :
         plan_code_actions(*doc, p, settings_.rewrite_instruction, caps_.encoding)) {
        json command{{"title", action.title},
                     {"command", kCmdApplyRewrite},
                     {"arguments", json::array({json(action.data)})}};
        if (!caps_.code_action_literals) {
            out.push_back(std::move(command));
            continue;
        }
        json item{{"title", action.title}, {"kind", action.kind}};
        if (!action.diagnostics.empty()) item["diagnostics"] = action.diagnostics;
        if (caps_.code_action_resolve) {
            item["data"] = action.data;
        } else {
            item["command"] = std::move(command);
        }
        out.push_back(std::move(item));
    }
    reply(std::move(out));
}

void Server::Impl::code_action_resolve(const CodeActionResolveParams& p, Reply<json> reply) {
    auto job = std::make_shared<Job>(JobKind::Rewrite, reply.raw());
    job->uri = p.data.uri;
    job->rewrite = p.data;
    job->title = p.title;
    job->action = p.raw;
    schedule_rewrite(std::move(job));
}

void Server::Impl::execute_command(const ExecuteCommandParams& p, Reply<json> reply) {
    if (p.command == kCmdStatus) {
        reply(status_json());
        return;
    }
    if (p.command == kCmdReloadModel) {
        load_pending_ = true;
        pump();
        reply(nullptr);
        return;
    }
    if (p.command == kCmdClearCache) {
        clear_cache(std::move(reply));
        return;
    }
    if (p.command != kCmdApplyRewrite) {
        reply.error(ErrorCode::InvalidParams, "params.command: unknown command " + p.command);
        return;
    }
    if (!caps_.apply_edit) {
        reply.error(ErrorCode::RequestFailed, "the client does not support workspace/applyEdit");
        return;
    }
    RewriteData data;
    JsonReader reader("params.arguments[0]");
    if (p.arguments.empty() || !read(p.arguments[0], data, reader)) {
        reply.error(ErrorCode::InvalidParams, p.arguments.empty()
                                                  ? "params.arguments: expected one argument"
                                                  : reader.error());
        return;
    }
    if (data.instruction.empty()) data.instruction = settings_.rewrite_instruction;
    auto job = std::make_shared<Job>(JobKind::Rewrite, reply.raw());
    job->uri = data.uri;
    job->rewrite = std::move(data);
    job->title = "hearth: rewrite";
    job->via_command = true;
    schedule_rewrite(std::move(job));
}

void Server::Impl::clear_cache(Reply<json> reply) {
    // Runs on the worker, between model calls (the worker runs one task at a time).
    auto shared = std::make_shared<Reply<json>>(std::move(reply));
    worker_.post([this, shared] {
        Status st = completer_ ? completer_->clear_cache() : Status{};
        CacheSummary cache = completer_ ? completer_->cache_summary() : CacheSummary{};
        asio::post(io_, [this, shared, st = std::move(st), cache = std::move(cache)]() mutable {
            cache_ = std::move(cache);
            if (!st.ok()) {
                shared->error(ErrorCode::RequestFailed, "clearing the cache failed: " +
                                                            st.error().message);
                return;
            }
            (*shared)(json{{"cleared", true}, {"dir", cache_.dir}});
        });
    });
}

void Server::Impl::dispatch_rewrite(std::shared_ptr<Job> job) {
    const RewriteData& d = job->rewrite;
    const TextDocument* doc = docs_.get(d.uri);
    auto fail = [&](ErrorCode code, std::string message) {
        job->reply.error(code, std::move(message));
        pump();
    };
    if (job->cancel->stop()) return fail(ErrorCode::RequestCancelled, "cancelled");
    if (!doc) return fail(ErrorCode::InvalidParams, "document is not open: " + d.uri);
    if (d.version && *d.version != doc->version()) {
        return fail(ErrorCode::ContentModified, "the document changed since the action was listed");
    }
    Expected<size_t> a = doc->offset_at(d.range.start, caps_.encoding);
    Expected<size_t> b = doc->offset_at(d.range.end, caps_.encoding);
    if (!a || !b || *a > *b)
        return fail(ErrorCode::InvalidParams, "data.range is not in the document");
    if (engine_state_ != EngineState::Ready) {
        return fail(
            ErrorCode::RequestFailed,
            "no model loaded" + (engine_error_.empty() ? std::string() : ": " + engine_error_));
    }
    RewriteRequest req;
    req.path = document_path(d.uri);
    req.language = doc->language_id();
    req.instruction = d.instruction.empty() ? settings_.rewrite_instruction : d.instruction;
    req.code = doc->text().substr(*a, *b - *a);
    req.prefix = doc->text().substr(0, *a);
    req.suffix = doc->text().substr(*b);
    req.max_tokens = settings_.rewrite_max_tokens;
    req.temperature = static_cast<float>(settings_.temperature);
    std::shared_ptr<CancelState> cancel = job->cancel;
    req.cancelled = [cancel] { return cancel->stop(); };
    req.progress = prefill_progress(job);
    job->suffix_head = req.code;  // the original, for clean_rewrite
    job->eol = std::string(doc->eol());
    job->version = doc->version();
    running_ = job;
    worker_.post([this, job, req = std::move(req)]() mutable {
        Expected<CompletionResult> result =
            completer_ ? completer_->rewrite(req)
                       : Expected<CompletionResult>(make_error("no model"));
        asio::post(io_, [this, job, result = std::move(result)]() mutable {
            finish_rewrite(job, std::move(result));
        });
    });
}

void Server::Impl::finish_rewrite(std::shared_ptr<Job> job, Expected<CompletionResult> result) {
    running_.reset();
    progress_end(job->progress_token, "");
    if (job->cancel->stop() || (!result.ok() && result.error().message == "cancelled")) {
        answer_cancelled(*job, "cancelled");
    } else if (!result.ok()) {
        spdlog::warn("rewrite failed: {}", result.error().message);
        job->reply.error(ErrorCode::RequestFailed, "rewrite failed: " + result.error().message);
    } else {
        std::string text = convert_eol(clean_rewrite(result->text, job->suffix_head), job->eol);
        json edit = workspace_edit(job->uri, job->version, job->rewrite.range, text);
        if (job->via_command) {
            ReplyOnce reply = job->reply;
            request_client("workspace/applyEdit", json{{"label", job->title}, {"edit", edit}},
                           [reply](const Response& resp) {
                               bool applied = !resp.is_error && resp.result.is_object() &&
                                              resp.result.value("applied", false);
                               reply.result(json{{"applied", applied}});
                           });
        } else {
            json action = job->action;
            action["edit"] = std::move(edit);
            job->reply.result(std::move(action));
        }
        json extra = stats_json(result->stats);
        extra["uri"] = job->uri;
        extra["stop_reason"] = result->stop_reason;
        send_status("rewrite", extra);
    }
    pump();
}

// ---- the model --------------------------------------------------------------------------

void Server::Impl::start_load() {
    load_pending_ = false;
    loading_ = true;
    engine_state_ = EngineState::Loading;
    load_token_ = progress_begin("hearth", "Loading model");
    Settings settings = settings_;
    auto last = std::make_shared<int32_t>(-1);
    ProgressFn progress = [this, last](int32_t done, int32_t total) {
        if (total <= 0) return;
        int32_t pct =
            static_cast<int32_t>(std::clamp<int64_t>(int64_t{done} * 100 / total, 0, 100));
        if (pct == *last) return;
        *last = pct;
        asio::post(io_, [this, pct] { progress_report(load_token_, "Loading model", pct); });
    };
    worker_.post([this, settings = std::move(settings), progress = std::move(progress)] {
        completer_.reset();  // one model at a time: free the old one first
        std::string error;
        std::string backend;
        std::string device;
        if (!factory_) {
            error = "no completer is configured";
        } else {
            Expected<std::unique_ptr<Completer>> made = factory_(settings, progress);
            if (!made.ok()) {
                error = made.error().message;
            } else if (!*made) {
                error = "the completer factory returned nothing";
            } else {
                completer_ = std::move(*made);
                backend = completer_->backend_name();
                device = completer_->device_name();
            }
        }
        CacheSummary cache = completer_ ? completer_->cache_summary() : CacheSummary{};
        const int32_t n_ctx = completer_ ? completer_->context_size() : 0;
        asio::post(io_, [this, error = std::move(error), backend = std::move(backend),
                         device = std::move(device), cache = std::move(cache), n_ctx]() mutable {
            cache_ = std::move(cache);
            n_ctx_ = n_ctx;
            if (!cache_.error.empty()) {
                log_message(kMessageTypeWarning, "hearth: disk KV cache disabled: " + cache_.error);
            }
            finish_load(std::move(error), std::move(backend), std::move(device));
        });
    });
}

void Server::Impl::finish_load(std::string error, std::string backend, std::string device) {
    loading_ = false;
    progress_end(load_token_, error.empty() ? "Model loaded" : "Model failed to load");
    load_token_.clear();
    if (error.empty()) {
        engine_state_ = EngineState::Ready;
        engine_error_.clear();
        backend_ = std::move(backend);
        device_ = std::move(device);
        spdlog::info("model ready on {} ({})", backend_, device_);
        log_message(kMessageTypeInfo, "hearth: model ready on " + backend_ + " (" + device_ + ")");
        send_status("model_loaded", json{{"state", "ready"}});
    } else {
        engine_state_ = EngineState::Failed;
        engine_error_ = error;
        spdlog::error("model failed to load: {}", error);
        notify("window/showMessage", json{{"type", kMessageTypeError},
                                          {"message", "hearth: model failed to load: " + error}});
        send_status("model_error", json{{"state", "error"}, {"message", error}});
    }
    pump();
}

json Server::Impl::workspace_json() const {
    json folders = json::array();
    size_t files = 0;
    bool scanning = false;
    for (const Folder& f : folders_) {
        const size_t n = f.index ? f.index->files().size() : 0;
        files += n;
        scanning = scanning || f.scanning;
        folders.push_back({{"root", f.root}, {"indexedFiles", n}, {"scanning", f.scanning}});
    }
    return json{{"root", folders_.empty() ? std::string() : folders_.front().root},
                {"indexedFiles", files},
                {"scanning", scanning},
                {"folders", std::move(folders)}};
}

json Server::Impl::status_json() {
    const char* state = "not loaded";
    switch (engine_state_) {
        case EngineState::NotLoaded:
            break;
        case EngineState::Loading:
            state = "loading";
            break;
        case EngineState::Ready:
            state = "ready";
            break;
        case EngineState::Failed:
            state = "error";
            break;
    }
    return json{{"state", state},
                {"error", engine_error_},
                {"backend", backend_},
                {"device", device_},
                {"positionEncoding", to_string(caps_.encoding)},
                {"documents", docs_.size()},
                {"pendingCompletions", completions_.size()},
                {"pendingCompletionsHighWater", completions_high_water_},
                {"pendingRewrites", rewrites_.size()},
                {"superseded", superseded_count_},
                {"running", running_ != nullptr},
                {"backlogHighWater", backlog_high_water()},
                {"lastStats", last_stats_},
                {"workspace", workspace_json()},
                {"cache",
                 {{"enabled", cache_.enabled},
                  {"dir", cache_.dir},
                  {"error", cache_.error},
                  {"entries", cache_.entries},
                  {"bytes", cache_.bytes},
                  {"hits", cache_.hits},
                  {"misses", cache_.misses},
                  {"writes", cache_.writes},
                  {"writeFailures", cache_.write_failures}}},
                {"settings", settings_.to_json()}};
}

// ---- public -----------------------------------------------------------------------------

Server::Server(Transport& transport, LspServerOptions options, CompleterFactory factory)
    : impl_(std::make_unique<Impl>(transport, std::move(options), std::move(factory))) {}

Server::~Server() = default;

int Server::run() {
    return impl_->run();
}

int run_lsp_server(const LspServerOptions& options, CompleterFactory factory) {
    std::signal(SIGPIPE, SIG_IGN);
    StdioTransport transport(0, 1, options.framing);
    Server server(transport, options, std::move(factory));
    return server.run();
}

}  // namespace hearth::lsp
