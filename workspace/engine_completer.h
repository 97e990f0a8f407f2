// EngineCompleter: the Completer backed by the in-process engine.
//
// It owns the loaded model, one backend and one Session (a KV timeline). Every request
// is turned into a token prompt (FIM for completions, the model's chat template or a FIM
// rewrite for code actions); Session::sync keeps the longest prefix already evaluated,
// so consecutive requests on the same file prefill only what changed.
//
// Not thread-safe: one engine worker thread calls it (DESIGN.md: the worker owns the
// GPU and the sessions).
#pragma once

#include <map>
#include <memory>
#include <string>

#include "completer.h"
#include "engine.h"
#include "fim.h"
#include "generate.h"
#include "kv_store.h"

namespace hearth {

class Session;

struct EngineCompleterOptions {
    BackendOptions backend;
    int32_t n_ctx = 4096;        // 0: the model's training context
    int32_t prefill_chunk = 512; // tokens per prefill step (cancellation granularity)
    std::string fim_template;    // empty: detect from the vocabulary
    // Text after the cursor kept in a FIM prompt, in tokens (cut at a line end). The suffix
    // follows the cursor in the prompt, so every keystroke (and every restart) prefills it
    // again: a short suffix keeps completions fast; the lines right after the cursor are
    // the ones that matter.
    int32_t max_suffix_tokens = 512;
    // On-disk prefix KV cache (workspace/kv_store.h). When it cannot be opened the
    // completer works without it and cache_summary() says why.
    bool disk_cache = false;
    KVStoreOptions cache;
};

class EngineCompleter final : public Completer {
public:
    static Expected<std::unique_ptr<EngineCompleter>> create(LoadedModel model,
                                                             const EngineCompleterOptions& opts);
    ~EngineCompleter() override;

    Expected<CompletionResult> complete(const CompletionRequest& req) override;
    Expected<CompletionResult> rewrite(const RewriteRequest& req) override;
    std::string backend_name() const override;
    std::string device_name() const override;
    int32_t context_size() const override { return n_ctx_; }
    bool background_work() override;
    Status clear_cache() override;
    CacheSummary cache_summary() const override;

    // Writes every pending checkpoint and waits until it is on disk (CLI runs, tests).
    void flush_cache();
    // The disk cache of the default workspace (the one in the options); null without one.
    KVStore* kv_store() { return store_for(""); }

    const LoadedModel& model() const { return model_; }
    const FimTemplate& fim() const { return fim_; }
    int32_t n_ctx() const { return n_ctx_; }
    // Whether rewrites use the model's chat template (ChatML) rather than a FIM rewrite.
    bool has_chat_template() const { return chat_; }

private:
    EngineCompleter() = default;

    // Syncs the session to `prompt` (restoring what the disk cache holds beyond the rows
    // in memory), then generates; fills every stats field. The first `cacheable` tokens
    // are checkpointed to the disk cache afterwards, in background_work().
    // `disk` is the request's disk cache (null: none).
    Expected<CompletionResult> run(KVStore* disk, const std::vector<int32_t>& prompt,
                                   int32_t cacheable, const GenerateOptions& gen,
                                   const std::function<void(int32_t, int32_t)>& progress);
    // Restores the longest stored prefix of `prompt` that extends the rows in memory;
    // returns the positions restored beyond them (0 on a miss; a bad chunk is a miss).
    int32_t restore_from_disk(KVStore* store, std::span<const int32_t> prompt,
                              const std::function<bool()>& cancelled);

    LoadedModel model_;
    std::unique_ptr<Backend> backend_;
    std::unique_ptr<Session> session_;
    FimTemplate fim_;
    int32_t n_ctx_ = 0;
    int32_t chunk_ = 512;
    int32_t max_suffix_tokens_ = 512;
    bool chat_ = false;
    int32_t im_start_ = -1, im_end_ = -1;

    // The disk cache of a workspace folder ("" = the default one), opened on first use;
    // null when disabled or when it cannot be opened (cache_error_ says why).
    KVStore* store_for(const std::string& workspace);

    bool disk_cache_ = false;
    KVStoreOptions cache_opts_;
    std::map<std::string, std::unique_ptr<KVStore>> stores_;
    KVStore* active_ = nullptr;        // the store of the request being served
    KVStore* persist_store_ = nullptr; // where persist_ goes
    KVModelKey kv_key_{};
    std::string cache_error_;
    std::vector<int32_t> persist_;  // tokens whose whole chunks are to be checkpointed
    size_t persist_next_ = 0;       // end of the next chunk to look at
};

}  // namespace hearth
