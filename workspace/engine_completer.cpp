#include "engine_completer.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <future>
#include <optional>
#include <string_view>

#include "session.h"
#include "tokenizer.h"

namespace hearth {

namespace {

double ms_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0)
        .count();
}

// Cuts `text` after its n-th line (n >= 1); returns true when it cut anything.
bool cut_after_lines(std::string& text, int32_t n) {
    size_t pos = 0;
    for (int32_t i = 0; i < n; ++i) {
        pos = text.find('\n', pos);
        if (pos == std::string::npos) return false;
        ++pos;
    }
    text.resize(pos - 1);  // drop the newline that starts line n+1
    return true;
}

// Where the completion starts once the indentation typed on the cursor line (`healed`, see
// complete()) is taken off `raw`, the text generated so far; nullopt while that depends on
// text still to come (`raw` is blanks only and may yet become `healed` or something else).
// Mirrors the cut complete() makes on the final text, so a stop rule sees what the caller
// will get.
std::optional<size_t> healed_start(std::string_view raw, std::string_view healed) {
    if (healed.empty()) return 0;
    if (raw.starts_with(healed)) return healed.size();
    const size_t first = raw.find_first_not_of(" \t");
    if (first == std::string_view::npos) return std::nullopt;
    return first;
}

// Line-comment marker for an LSP languageId (FIM rewrites state the instruction as a
// comment right before the hole).
std::string_view comment_marker(std::string_view language) {
    static constexpr std::pair<std::string_view, std::string_view> kHash[] = {
        {"python", "#"}, {"ruby", "#"}, {"shellscript", "#"}, {"perl", "#"}, {"r", "#"},
        {"yaml", "#"}, {"toml", "#"}, {"makefile", "#"}, {"cmake", "#"}, {"dockerfile", "#"},
        {"elixir", "#"}, {"julia", "#"}, {"nim", "#"}, {"powershell", "#"},
        {"lua", "--"}, {"sql", "--"}, {"haskell", "--"}, {"ada", "--"},
        {"lisp", ";"}, {"clojure", ";"}, {"scheme", ";"}, {"erlang", "%"}, {"latex", "%"},
        {"matlab", "%"}, {"vim", "\""}};
    for (const auto& [lang, marker] : kHash) {
        if (lang == language) return marker;
    }
    return "//";
}

}  // namespace

Expected<std::unique_ptr<EngineCompleter>> EngineCompleter::create(
    LoadedModel model, const EngineCompleterOptions& opts) {
    std::unique_ptr<EngineCompleter> c(new EngineCompleter());
    c->model_ = std::move(model);
    auto fim = FimTemplate::detect(*c->model_.tokenizer, opts.fim_template);
    if (!fim) return fim.error();
    c->fim_ = std::move(*fim);

    const int32_t n_train = c->model_.model->hparams().n_ctx_train;
    c->n_ctx_ = opts.n_ctx > 0 ? opts.n_ctx : n_train;
    if (n_train > 0) c->n_ctx_ = std::min(c->n_ctx_, n_train);
    if (c->n_ctx_ < 64) return make_error("context size " + std::to_string(c->n_ctx_) + " is too small");
    c->chunk_ = std::max(1, opts.prefill_chunk);
    c->max_suffix_tokens_ = std::max(0, opts.max_suffix_tokens);

    auto backend = make_backend(c->model_.model, opts.backend);
    if (!backend) return backend.error();
    c->backend_ = std::move(*backend);
    auto bs = c->backend_->create_session(c->n_ctx_);
    if (!bs) return bs.error();
    c->session_ = std::make_unique<Session>(std::move(*bs));

    // ChatML when the GGUF carries a chat template built on <|im_start|>/<|im_end|>.
    const Tokenizer& tok = *c->model_.tokenizer;
    auto tmpl = c->model_.gguf->get_string("tokenizer.chat_template");
    auto im_start = tok.find_token("<|im_start|>");
    auto im_end = tok.find_token("<|im_end|>");
    if (tmpl && tmpl->find("<|im_start|>") != std::string_view::npos && im_start && im_end) {
        c->chat_ = true;
        c->im_start_ = *im_start;
        c->im_end_ = *im_end;
    }

    if (opts.disk_cache) {
        // The key of this backend's KV rows: an empty snapshot carries their element type
        // and shape (the CPU backend keeps f32 rows, Vulkan f16; they are never mixed).
        auto shape = c->session_->snapshot(0, 0);
        if (!shape) return shape.error();
        c->kv_key_ = KVModelKey{c->model_.model->fingerprint(), shape->dtype, shape->n_layer,
                                shape->row_elems};
        c->disk_cache_ = true;
        c->cache_opts_ = opts.cache;
        c->active_ = c->store_for("");  // opened now, so a bad cache directory shows at load
    }
    return c;
}

KVStore* EngineCompleter::store_for(const std::string& workspace) {
    if (!disk_cache_) return nullptr;
    auto it = stores_.find(workspace);
    if (it != stores_.end()) return it->second.get();
    KVStoreOptions o = cache_opts_;
    if (!workspace.empty()) o.workspace = workspace;
    auto store = KVStore::open(o);
    if (!store) {
        cache_error_ = store.error().message;
        spdlog::warn("disk KV cache disabled for {}: {}",
                     workspace.empty() ? std::string("the default workspace") : workspace,
                     cache_error_);
    }
    // A failure is remembered too: the next request does not try again.
    auto& slot = stores_[workspace];
    if (store) slot = std::move(*store);
    return slot.get();
}

EngineCompleter::~EngineCompleter() { flush_cache(); }

void EngineCompleter::flush_cache() {
    while (background_work()) {
    }
    for (auto& [workspace, store] : stores_) {
        if (store) store->flush();
    }
}

bool EngineCompleter::background_work() {
    KVStore* store = persist_store_;
    if (!store) return false;
    const auto chunk = static_cast<size_t>(store->chunk_tokens());
    const std::span<const int32_t> held = session_->tokens();
    while (persist_next_ != 0 && persist_next_ <= persist_.size()) {
        const size_t end = persist_next_;
        const std::span<const int32_t> prefix(persist_.data(), end);
        if (store->contains(kv_key_, prefix)) {
            persist_next_ += chunk;
            continue;
        }
        // The session must still hold these rows (a later request may have replaced them).
        if (held.size() < end || !std::equal(prefix.begin(), prefix.end(), held.begin())) break;
        // When the writer is behind, wait a little (a request waits at most this long)
        // rather than have the chunk dropped; come back later if it is still behind.
        const size_t bytes = chunk * model_.model->kv_bytes_per_token(kv_key_.dtype) +
                             end * sizeof(int32_t);
        if (!store->wait_for_room(bytes, std::chrono::milliseconds(20))) return true;
        auto rows = session_->snapshot(static_cast<int32_t>(end - chunk), static_cast<int32_t>(end));
        if (!rows) {
            spdlog::warn("disk KV cache: {}", rows.error().message);
            break;
        }
        store->put_async(kv_key_, std::vector<int32_t>(prefix.begin(), prefix.end()),
                         std::move(*rows));
        persist_next_ += chunk;
        return persist_next_ <= persist_.size();
    }
    persist_.clear();
    persist_next_ = 0;
    persist_store_ = nullptr;
    return false;
}

Status EngineCompleter::clear_cache() {
    persist_.clear();
    persist_next_ = 0;
    persist_store_ = nullptr;
    session_->clear();
    for (auto& [workspace, store] : stores_) {
        if (store) HEARTH_TRY(store->clear());
    }
    return {};
}

CacheSummary EngineCompleter::cache_summary() const {
    CacheSummary c;
    c.error = cache_error_;
    const KVStore* store = active_;
    if (!store) return c;
    const KVStoreStats st = store->stats();
    c.enabled = true;
    c.dir = store->dir().string();
    c.entries = st.entries;
    c.bytes = st.bytes;
    c.hits = st.hits;
    c.misses = st.misses;
    c.writes = st.writes;
    c.write_failures = st.write_failures;
    return c;
}

int32_t EngineCompleter::restore_from_disk(KVStore* store, std::span<const int32_t> prompt,
                                           const std::function<bool()>& cancelled) {
    if (!store || prompt.size() < 2) return 0;
    const std::span<const int32_t> held = session_->tokens();
    const auto same = std::mismatch(held.begin(), held.end(), prompt.begin(), prompt.end());
    // The last prompt token is always evaluated (its logits are needed), so never restore it.
    const auto in_memory = static_cast<int32_t>(
        std::min<size_t>(static_cast<size_t>(same.first - held.begin()), prompt.size() - 1));
    const std::span<const int32_t> lookup = prompt.first(prompt.size() - 1);
    const int32_t stored = store->stored_prefix(kv_key_, lookup);
    if (stored <= in_memory) return 0;
    // Chunks are restored in batches onto the rows before them; a batch bounds the host
    // memory a restore needs and is a point where cancellation is honoured. The next batch
    // is read from disk while the current one is uploaded.
    const int32_t chunk = store->chunk_tokens();
    const int32_t batch = chunk * 16;
    auto fetch = [&](int32_t from) {
        return std::async(std::launch::async, [this, store, prompt, from, stored, batch] {
            return store->read(kv_key_, prompt, from, std::min(stored, from + batch));
        });
    };
    int32_t pos = in_memory / chunk * chunk;
    auto next = fetch(pos);
    while (true) {
        Expected<KVSnapshot> rows = next.get();
        if (!rows) {
            spdlog::warn("disk KV cache: {}", rows.error().message);
            break;
        }
        if (rows->n_tokens == 0) break;  // a bad or vanished chunk: prefill from here
        const int32_t got = rows->pos + rows->n_tokens;
        const bool whole = got == std::min(stored, pos + batch);
        const bool more = whole && got < stored && !(cancelled && cancelled());
        if (more) next = fetch(got);
        if (Status st = session_->restore(*rows, prompt.first(static_cast<size_t>(got)));
            !st.ok()) {
            spdlog::warn("disk KV cache: restore failed: {}", st.error().message);
            break;  // `next` finishes reading before it is dropped
        }
        pos = got;
        if (!more) break;
    }
    const auto now = session_->n_tokens();
    return now > in_memory ? now - in_memory : 0;
}

std::string EngineCompleter::backend_name() const { return backend_->info().name; }
std::string EngineCompleter::device_name() const { return backend_->info().device; }

Expected<CompletionResult> EngineCompleter::run(
    KVStore* disk, const std::vector<int32_t>& prompt, int32_t cacheable,
    const GenerateOptions& gen, const std::function<void(int32_t, int32_t)>& progress) {
    CompletionResult out;
    CompletionStats& st = out.stats;
    const BackendInfo info = backend_->info();
    st.backend = info.name;
    st.device = info.device;
    st.prompt_tokens = static_cast<int32_t>(prompt.size());
    const auto t0 = std::chrono::steady_clock::now();

    const int32_t restored = restore_from_disk(disk, prompt, gen.cancelled);
    st.ms_restore = ms_since(t0);
    SyncOptions so;
    so.chunk = chunk_;
    so.progress = progress;
    so.cancel = gen.cancelled;
    auto sync = session_->sync(prompt, so);
    if (!sync) return sync.error();
    st.restored_tokens = std::min(restored, sync->reused);
    st.reused_tokens = sync->reused - st.restored_tokens;
    st.prefilled_tokens = sync->evaluated;
    st.ms_prefill = ms_since(t0);

    // Checkpoint the whole chunks of the cacheable part once the answer is out.
    if (disk) {
        const auto chunk = static_cast<size_t>(disk->chunk_tokens());
        const size_t n = std::min(static_cast<size_t>(std::max(cacheable, 0)), prompt.size());
        if (n >= chunk) {
            persist_.assign(prompt.begin(), prompt.begin() + static_cast<std::ptrdiff_t>(n));
            persist_next_ = chunk;
            persist_store_ = disk;
        }
    }

    auto g = generate(*session_, *model_.tokenizer, gen);
    if (!g) return g.error();
    out.text = std::move(g->text);
    out.stop_reason = std::move(g->stop_reason);
    st.generated_tokens = static_cast<int32_t>(g->tokens.size());
    st.ms_decode = g->ms_decode;
    st.ms_total = ms_since(t0);
    st.tokens_per_second = g->ms_decode > 0 ? st.generated_tokens / (g->ms_decode / 1000.0) : 0;
    return out;
}

Expected<CompletionResult> EngineCompleter::complete(const CompletionRequest& req) {
    const Tokenizer& tok = *model_.tokenizer;
    const int32_t max_tokens = std::clamp(req.max_tokens, 1, n_ctx_ / 2);
    const auto budget = static_cast<size_t>(n_ctx_ - max_tokens);

    // Nothing but whitespace after the cursor: the file simply continues (left to right);
    // otherwise fill in the middle.
    const bool continuation =
        req.suffix.find_first_not_of(" \t\r\n") == std::string::npos;
    auto build = [&](const CompletionRequest& r) {
        return continuation ? fim_.build_continuation(tok, r) : fim_.build(tok, r);
    };
    CompletionRequest fitted = req;
    // Indentation typed on the cursor line is left out of the prompt and expected back at
    // the start of the completion: "        " as one token at the end of a prompt is
    // rare in training text (there it is "       " + " self"), and models answer such a
    // prompt badly. The same whitespace is stripped from the completion below.
    const size_t line_start = fitted.prefix.find_last_of('\n') + 1;  // npos + 1 == 0
    std::string healed;
    if (fitted.prefix.find_first_not_of(" \t", line_start) == std::string::npos &&
        line_start < fitted.prefix.size()) {
        healed = fitted.prefix.substr(line_start);
        fitted.prefix.resize(line_start);
    }
    // Keep the suffix's first lines up to max_suffix_tokens (see the option; a request may
    // ask for fewer). A token holds at least one byte, so a suffix of no more bytes than
    // that needs no counting.
    const int32_t suffix_tokens = req.max_suffix_tokens > 0
                                      ? std::min(req.max_suffix_tokens, max_suffix_tokens_)
                                      : max_suffix_tokens_;
    if (!continuation && fitted.suffix.size() > static_cast<size_t>(suffix_tokens)) {
        const size_t n = tok.encode(fitted.suffix, EncodeMode::Plain).size();
        if (n > static_cast<size_t>(suffix_tokens)) {
            const double bpt = static_cast<double>(fitted.suffix.size()) / static_cast<double>(n);
            auto keep = static_cast<size_t>(static_cast<double>(suffix_tokens) * bpt * 0.95);
            const size_t nl = fitted.suffix.rfind('\n', keep);
            if (nl != std::string::npos && nl > keep / 2) keep = nl + 1;
            fitted.suffix.resize(keep);
        }
    }
    FimPrompt prompt = build(fitted);
    // Cuts the current file's text until its part of the prompt is at most `limit` tokens
    // (an estimate through its bytes per token; the caller rebuilds and checks). The suffix
    // gets at most a quarter; the prefix keeps the text nearest the cursor and starts at a
    // line boundary when one is near. False when there is nothing left to cut.
    auto cut_file = [&](size_t limit) {
        if (fitted.prefix.empty() && fitted.suffix.empty()) return false;
        const size_t file_tokens =
            prompt.tokens.size() - static_cast<size_t>(prompt.stable_tokens);
        const double bpt = static_cast<double>(fitted.prefix.size() + fitted.suffix.size()) /
                           static_cast<double>(std::max<size_t>(1, file_tokens));
        // Bytes to keep, a little under the estimate so one or two rounds suffice.
        const auto keep = static_cast<size_t>(static_cast<double>(limit) * bpt * 0.95);
        const auto suffix_cap = static_cast<size_t>(static_cast<double>(limit / 4) * bpt);
        // Each round removes something, so the loops around this end.
        auto shrink_to = [](size_t size, size_t target) {
            return target < size ? target : size - std::max<size_t>(1, size / 16);
        };
        if (fitted.suffix.size() > suffix_cap) {
            fitted.suffix.resize(suffix_cap);
        } else if (!fitted.prefix.empty()) {
            const size_t target =
                shrink_to(fitted.prefix.size(), keep > fitted.suffix.size() ? keep - fitted.suffix.size() : 0);
            size_t cut = fitted.prefix.size() - target;
            const size_t nl = fitted.prefix.find('\n', cut);
            if (nl != std::string::npos && nl - cut < 256) cut = nl + 1;
            fitted.prefix.erase(0, cut);
        } else {
            fitted.suffix.resize(shrink_to(fitted.suffix.size(), keep));
        }
        return true;
    };
    // The current file gets what the repository context leaves, but at least half the
    // budget: far-away text of a long file is worth less than the files it works with.
    while (true) {
        const auto stable = static_cast<size_t>(prompt.stable_tokens);
        const size_t file_limit = std::max(budget / 2, budget > stable ? budget - stable : 0);
        if (prompt.tokens.size() - stable <= file_limit || !cut_file(file_limit)) break;
        prompt = build(fitted);
    }
    // Then context files go, least stable (last) first, and the file is cut further.
    while (prompt.tokens.size() > budget) {
        if (!fitted.context.empty()) {
            fitted.context.pop_back();
        } else if (!cut_file(budget - static_cast<size_t>(prompt.stable_tokens))) {
            return make_error("the prompt template alone exceeds the context size");
        }
        prompt = build(fitted);
    }

    GenerateOptions gen;
    gen.max_tokens = max_tokens;
    gen.sampler = SamplerParams{req.temperature, req.top_k, req.top_p, req.min_p, req.seed};
    gen.stop_tokens = fim_.tokens().stop;
    gen.cancelled = req.cancelled;
    const int32_t max_lines = req.single_line ? 1 : req.max_lines;
    if (max_lines > 0 || req.stop_on_text) {
        gen.stop_on_text = [max_lines, &healed, &caller = req.stop_on_text](
                               std::string_view text, std::string& reason) {
            if (max_lines > 0 && std::count(text.begin(), text.end(), '\n') >= max_lines) {
                reason = max_lines == 1 ? "end_of_line" : "max_lines";
                return true;
            }
            if (!caller) return false;
            const std::optional<size_t> start = healed_start(text, healed);
            return start && caller(text.substr(*start), reason);
        };
    }
    if (disk_cache_) active_ = store_for(req.workspace);
    auto r = run(active_, prompt.tokens,
                 req.cache_prompt ? prompt.cursor_tokens : prompt.stable_tokens, gen,
                 req.progress);
    if (!r) return r.error();
    r->stats.context_tokens = prompt.stable_tokens;
    if (!healed.empty()) {
        // Off comes the typed indentation, or, when the model chose another one, the
        // model's: the user's stays.
        std::string& t = r->text;
        t.erase(0, healed_start(t, healed).value_or(t.size()));
    }
    if (max_lines > 0) cut_after_lines(r->text, max_lines);
    return r;
}

Expected<CompletionResult> EngineCompleter::rewrite(const RewriteRequest& req) {
    const Tokenizer& tok = *model_.tokenizer;
    std::vector<int32_t> prompt;
    auto text = [&](std::string_view s) {
        auto ids = tok.encode(s, EncodeMode::Plain);
        prompt.insert(prompt.end(), ids.begin(), ids.end());
    };
    GenerateOptions gen;
    gen.max_tokens = std::clamp(req.max_tokens, 1, n_ctx_ / 2);
    gen.sampler.temperature = req.temperature;
    gen.cancelled = req.cancelled;
    gen.stop_tokens = fim_.tokens().stop;

    if (chat_) {
        // ChatML: the model answers with one fenced block; the fence ends the rewrite.
        const std::string fence = "```" + req.language;
        prompt.push_back(im_start_);
        text("system\nYou are a coding assistant. Rewrite the code as instructed. "
             "Reply with only the rewritten code in one fenced code block.");
        prompt.push_back(im_end_);
        text("\n");
        prompt.push_back(im_start_);
        text("user\n" + req.instruction + "\n\n" +
             (req.path.empty() ? std::string() : "File: " + req.path + "\n") + fence + "\n" +
             req.code + (req.code.ends_with('\n') ? "" : "\n") + "```");
        prompt.push_back(im_end_);
        text("\n");
        prompt.push_back(im_start_);
        text("assistant\n" + fence + "\n");
        gen.stop_tokens.push_back(im_end_);
        gen.stop_on_text = [](std::string_view t, std::string& reason) {
            if (t.find("```") == std::string_view::npos) return false;
            reason = "fence";
            return true;
        };
    } else {
        // FIM rewrite: the selection is the hole; the instruction is a comment before it.
        CompletionRequest fr;
        fr.path = req.path;
        const std::string marker(comment_marker(req.language));
        std::string prefix = req.prefix;
        if (!prefix.empty() && !prefix.ends_with('\n')) prefix += "\n";
        fr.prefix = prefix + marker + " " + req.instruction + "\n";
        fr.suffix = req.suffix;
        prompt = fim_.build(tok, fr).tokens;
        const auto lines = std::count(req.code.begin(), req.code.end(), '\n') + 1;
        const int32_t max_lines = static_cast<int32_t>(lines * 2 + 4);
        gen.stop_on_text = [max_lines](std::string_view t, std::string& reason) {
            if (std::count(t.begin(), t.end(), '\n') < max_lines) return false;
            reason = "max_lines";
            return true;
        };
    }
    if (prompt.size() + static_cast<size_t>(gen.max_tokens) > static_cast<size_t>(n_ctx_)) {
        return make_error("the selection and its context do not fit the context size (" +
                          std::to_string(prompt.size()) + " prompt tokens, context " +
                          std::to_string(n_ctx_) + ")");
    }
    // Rewrites share the session but checkpoint nothing: their prompts rarely recur.
    auto r = run(nullptr, prompt, 0, gen, req.progress);
    if (!r) return r.error();
    if (chat_) {
        if (auto fence = r->text.find("```"); fence != std::string::npos) r->text.resize(fence);
    }
    return r;
}

}  // namespace hearth
