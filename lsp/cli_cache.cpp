// hearth cache ls|stats|clear [--workspace DIR] [--cache-dir DIR] [--json]: the on-disk
// prefix KV cache (workspace/kv_store.h) as the user sees it: which workspaces have one,
// how large it is, and removing it.
#include <algorithm>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli.h"
#include "kv_store.h"

namespace hearth::cli {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

struct CacheArgs {
    std::string workspace;
    std::string cache_dir;
    bool as_json = false;
};

std::string mib(uint64_t bytes) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(bytes) / (1 << 20));
    return buf;
}

std::string local_time(int64_t unix_seconds) {
    if (unix_seconds <= 0) return "-";
    const std::time_t t = static_cast<std::time_t>(unix_seconds);
    std::tm tm{};
    if (!localtime_r(&t, &tm)) return "-";
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M", &tm);
    return buf;
}

std::string count_entries(uint64_t n) {
    return std::to_string(n) + (n == 1 ? " entry" : " entries");
}

std::string workspace_label(const KVWorkspaceInfo& w) {
    return w.workspace.empty() ? "(default)" : w.workspace;
}

json info_json(const KVWorkspaceInfo& w) {
    return json{{"workspace", w.workspace}, {"dir", w.dir.string()},         {"entries", w.entries},
                {"bytes", w.bytes},         {"last_used", w.last_used_unix}, {"hits", w.hits}};
}

Expected<fs::path> cache_root(const CacheArgs& a) {
    if (!a.cache_dir.empty()) return fs::path(a.cache_dir);
    fs::path root = default_cache_root();
    if (root.empty()) {
        return make_error("no cache directory: set XDG_CACHE_HOME or HOME, or pass --cache-dir");
    }
    return root;
}

// Whether `w` is the cache of the workspace folder `ws`.
bool is_workspace(const KVWorkspaceInfo& w, const fs::path& root, const std::string& ws) {
    std::error_code ec;
    const fs::path canon = fs::weakly_canonical(fs::absolute(ws, ec), ec);
    return w.dir == kv_workspace_dir(root, ws) || (!ec && w.workspace == canon.string());
}

int run_ls(const CacheArgs& a) {
    auto root = cache_root(a);
    if (!root) return fail(root.error());
    auto list = list_kv_workspaces(*root);
    if (!list) return fail(list.error());
    std::vector<KVWorkspaceInfo> shown;
    for (const KVWorkspaceInfo& w : *list) {
        if (a.workspace.empty() || is_workspace(w, *root, a.workspace)) shown.push_back(w);
    }
    if (a.as_json) {
        json arr = json::array();
        for (const KVWorkspaceInfo& w : shown) arr.push_back(info_json(w));
        std::printf("%s\n", arr.dump(2).c_str());
        return 0;
    }
    if (shown.empty()) {
        std::printf("no KV cache under %s\n", root->string().c_str());
        return 0;
    }
    std::printf("%-48s %8s %12s  %s\n", "WORKSPACE", "ENTRIES", "SIZE", "LAST USE");
    for (const KVWorkspaceInfo& w : shown) {
        std::printf("%-48s %8llu %12s  %s\n", workspace_label(w).c_str(),
                    static_cast<unsigned long long>(w.entries), mib(w.bytes).c_str(),
                    local_time(w.last_used_unix).c_str());
    }
    return 0;
}

int run_stats(const CacheArgs& a) {
    auto root = cache_root(a);
    if (!root) return fail(root.error());
    auto list = list_kv_workspaces(*root);
    if (!list) return fail(list.error());
    KVWorkspaceInfo total;
    const KVWorkspaceInfo* mine = nullptr;
    for (const KVWorkspaceInfo& w : *list) {
        total.entries += w.entries;
        total.bytes += w.bytes;
        total.hits += w.hits;
        total.last_used_unix = std::max(total.last_used_unix, w.last_used_unix);
        if (!a.workspace.empty() && !mine && is_workspace(w, *root, a.workspace)) mine = &w;
    }
    if (a.as_json) {
        json j{{"root", root->string()},   {"workspaces", list->size()},
               {"entries", total.entries}, {"bytes", total.bytes},
               {"hits", total.hits},       {"last_used", total.last_used_unix}};
        if (!a.workspace.empty()) j["workspace"] = mine ? info_json(*mine) : json(nullptr);
        std::printf("%s\n", j.dump(2).c_str());
        return 0;
    }
    std::printf("cache       %s\n", root->string().c_str());
    std::printf("workspaces  %zu\n", list->size());
    std::printf("entries     %llu\n", static_cast<unsigned long long>(total.entries));
    std::printf("size        %s\n", mib(total.bytes).c_str());
    std::printf("hits        %llu\n", static_cast<unsigned long long>(total.hits));
    std::printf("last use    %s\n", local_time(total.last_used_unix).c_str());
    if (!a.workspace.empty()) {
        if (!mine) {
            std::printf("\nworkspace   %s: no KV cache\n", a.workspace.c_str());
            return 0;
        }
        std::printf("\nworkspace   %s\n", workspace_label(*mine).c_str());
        std::printf("  dir       %s\n", mine->dir.string().c_str());
        std::printf("  entries   %llu\n", static_cast<unsigned long long>(mine->entries));
        std::printf("  size      %s\n", mib(mine->bytes).c_str());
        std::printf("  hits      %llu\n", static_cast<unsigned long long>(mine->hits));
        std::printf("  last use  %s\n", local_time(mine->last_used_unix).c_str());
    }
    return 0;
}

int run_clear(const CacheArgs& a) {
    auto root = cache_root(a);
    if (!root) return fail(root.error());
    std::vector<KVWorkspaceInfo> removed;
    Status st = clear_kv_workspaces(*root, a.workspace, &removed);
    uint64_t entries = 0, bytes = 0;
    for (const KVWorkspaceInfo& w : removed) {
        entries += w.entries;
        bytes += w.bytes;
    }
    if (a.as_json) {
        json arr = json::array();
        for (const KVWorkspaceInfo& w : removed) arr.push_back(info_json(w));
        json j{{"removed", arr}, {"entries", entries}, {"bytes", bytes}};
        if (!st) j["error"] = st.error().message;
        std::printf("%s\n", j.dump(2).c_str());
    } else {
        for (const KVWorkspaceInfo& w : removed) {
            if (w.entries == 0) continue;
            std::printf("removed %s (%s) of %s\n", count_entries(w.entries).c_str(),
                        mib(w.bytes).c_str(), workspace_label(w).c_str());
        }
        if (entries == 0) {
            std::printf("nothing to remove%s%s\n", a.workspace.empty() ? "" : " for ",
                        a.workspace.c_str());
        } else if (removed.size() > 1) {
            std::printf("removed %s (%s) in all\n", count_entries(entries).c_str(),
                        mib(bytes).c_str());
        }
    }
    if (!st) return fail(st.error());
    return 0;
}

void add_common(CLI::App* cmd, const std::shared_ptr<CacheArgs>& a) {
    cmd->add_option("--workspace", a->workspace, "Workspace folder");
    cmd->add_option("--cache-dir", a->cache_dir,
                    "Cache root (default: $XDG_CACHE_HOME/hearth or ~/.cache/hearth)");
    cmd->add_flag("--json", a->as_json, "Print JSON");
}

}  // namespace

void register_cache(CLI::App& app, Outcome& out) {
    auto* cache = app.add_subcommand("cache", "Inspect or clear the on-disk prefix KV cache");
    cache->require_subcommand(1);
    auto a = std::make_shared<CacheArgs>();

    auto* ls = cache->add_subcommand("ls", "List the workspaces that have a KV cache");
    add_common(ls, a);
    ls->callback([&out, a] { out.exit_code = run_ls(*a); });

    auto* stats = cache->add_subcommand("stats", "Totals, and one workspace's with --workspace");
    add_common(stats, a);
    stats->callback([&out, a] { out.exit_code = run_stats(*a); });

    auto* clear = cache->add_subcommand(
        "clear", "Remove the cached entries of one workspace (--workspace) or of all");
    add_common(clear, a);
    clear->callback([&out, a] { out.exit_code = run_clear(*a); });
}

}  // namespace hearth::cli
