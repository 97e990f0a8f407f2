#include "context.h"

#include <algorithm>
#include <cctype>
#include <map>
#include <optional>
#include <set>
#include <unordered_map>

namespace hearth {

namespace {

// Bytes a context file costs besides its text and path: the separator and newlines the
// prompt template puts around it.
constexpr size_t kSeparatorBytes = 8;

size_t cost_of(std::string_view path, size_t text_bytes) {
    return path.size() + text_bytes + kSeparatorBytes;
}

std::string_view dirname(std::string_view p) {
    const size_t slash = p.rfind('/');
    return slash == std::string_view::npos ? std::string_view() : p.substr(0, slash);
}

std::string_view basename(std::string_view p) {
    const size_t slash = p.rfind('/');
    return slash == std::string_view::npos ? p : p.substr(slash + 1);
}

// "foo.tar.gz" -> "gz"; dot files without another dot have none.
std::string_view extension(std::string_view path) {
    const std::string_view name = basename(path);
    const size_t dot = name.rfind('.');
    if (dot == std::string_view::npos || dot == 0) return {};
    return name.substr(dot + 1);
}

std::string_view stem(std::string_view path) {
    const std::string_view name = basename(path);
    const size_t dot = name.rfind('.');
    if (dot == std::string_view::npos || dot == 0) return name;
    return name.substr(0, dot);
}

enum class Lang { None, Python, C, Js, Go, Rust, Jvm };

Lang lang_of(std::string_view path) {
    const std::string_view e = extension(path);
    static const std::unordered_map<std::string_view, Lang> kLangs = {
        {"py", Lang::Python}, {"pyi", Lang::Python}, {"c", Lang::C},       {"h", Lang::C},
        {"cc", Lang::C},      {"cpp", Lang::C},      {"cxx", Lang::C},     {"c++", Lang::C},
        {"hh", Lang::C},      {"hpp", Lang::C},      {"hxx", Lang::C},     {"h++", Lang::C},
        {"ipp", Lang::C},     {"inl", Lang::C},      {"m", Lang::C},       {"mm", Lang::C},
        {"cu", Lang::C},      {"cuh", Lang::C},      {"js", Lang::Js},     {"jsx", Lang::Js},
        {"mjs", Lang::Js},    {"cjs", Lang::Js},     {"ts", Lang::Js},     {"tsx", Lang::Js},
        {"mts", Lang::Js},    {"cts", Lang::Js},     {"vue", Lang::Js},    {"svelte", Lang::Js},
        {"go", Lang::Go},     {"rs", Lang::Rust},    {"java", Lang::Jvm},  {"kt", Lang::Jvm},
        {"kts", Lang::Jvm},   {"scala", Lang::Jvm},  {"groovy", Lang::Jvm}};
    auto it = kLangs.find(e);
    return it == kLangs.end() ? Lang::None : it->second;
}

// Files of one language count as "the same extension": a header and its source, .ts and
// .js, are as related as two .cpp files.
std::string_view language_key(std::string_view path) {
    switch (lang_of(path)) {
        case Lang::Python:
            return "py";
        case Lang::C:
            return "c";
        case Lang::Js:
            return "js";
        case Lang::Go:
            return "go";
        case Lang::Rust:
            return "rs";
        case Lang::Jvm:
            return "jvm";
        case Lang::None:
            break;
    }
    return extension(path);
}

bool is_header(std::string_view path) {
    const std::string_view e = extension(path);
    return e == "h" || e == "hh" || e == "hpp" || e == "hxx" || e == "h++" || e == "cuh" ||
           e == "inl" || e == "ipp";
}

// The name a file shares with its sibling: foo.h, foo.cpp, foo_test.cpp, test_foo.py,
// foo.test.ts, FooTest.java all give "foo"/"Foo"; `test` says whether it is a test.
struct Core {
    std::string_view name;
    bool test = false;
};

Core core_name(std::string_view path) {
    std::string_view s = stem(path);
    Core c;
    for (std::string_view suffix : {".test", ".spec", "_test", "_tests", "_spec", "-test", "-spec",
                                    "Test", "Tests", "Spec"}) {
        if (s.size() > suffix.size() && s.ends_with(suffix)) {
            s.remove_suffix(suffix.size());
            c.test = true;
            break;
        }
    }
    if (!c.test) {
        for (std::string_view prefix : {"test_", "test-"}) {
            if (s.size() > prefix.size() && s.starts_with(prefix)) {
                s.remove_prefix(prefix.size());
                c.test = true;
                break;
            }
        }
    }
    c.name = s;
    return c;
}

std::vector<std::string_view> split(std::string_view s, char sep) {
    std::vector<std::string_view> out;
    while (true) {
        const size_t at = s.find(sep);
        out.push_back(s.substr(0, at));
        if (at == std::string_view::npos) break;
        s.remove_prefix(at + 1);
    }
    return out;
}

int depth_of(std::string_view dir) {
    return dir.empty() ? 0 : static_cast<int>(std::count(dir.begin(), dir.end(), '/')) + 1;
}

// Shared leading directories, and steps up plus steps down between two directories.
// Runs once per candidate of a completion, hence no allocation.
std::pair<int, int> proximity(std::string_view a, std::string_view b) {
    int shared = 0;
    size_t i = 0;
    while (true) {
        const size_t ea = std::min(a.find('/', i), a.size());
        const size_t eb = std::min(b.find('/', i), b.size());
        if (i >= a.size() || i >= b.size() || ea != eb || a.compare(i, ea - i, b, i, eb - i) != 0) {
            break;
        }
        ++shared;
        i = ea + 1;
    }
    return {shared, depth_of(a) + depth_of(b) - 2 * shared};
}

std::string_view trim(std::string_view s) {
    const size_t b = s.find_first_not_of(" \t\r");
    if (b == std::string_view::npos) return {};
    const size_t e = s.find_last_not_of(" \t\r");
    return s.substr(b, e - b + 1);
}

// `rel` (with "." and ".." components) joined to the root-relative directory `dir`;
// nullopt when it climbs above the root.
std::optional<std::string> join_normal(std::string_view dir, std::string_view rel) {
    std::vector<std::string_view> parts;
    if (!dir.empty()) parts = split(dir, '/');
    for (std::string_view p : split(rel, '/')) {
        if (p.empty() || p == ".") continue;
        if (p == "..") {
            if (parts.empty()) return std::nullopt;
            parts.pop_back();
        } else {
            parts.push_back(p);
        }
    }
    std::string out;
    for (std::string_view p : parts) {
        if (!out.empty()) out += '/';
        out += p;
    }
    return out;
}

// Lookups over the sorted candidate paths. Suffix and directory-name queries scan the
// list: a file has a handful of imports, and a scan costs less than building a name index
// over every candidate for each completion.
class PathSet {
  public:
    explicit PathSet(const std::vector<std::string_view>& sorted) : sorted_(sorted) {}
    bool has(std::string_view p) const {
        return std::binary_search(sorted_.begin(), sorted_.end(), p);
    }
    // Paths equal to `suffix` or ending in "/suffix".
    std::vector<std::string_view> with_suffix(std::string_view suffix) const {
        std::vector<std::string_view> out;
        if (suffix.empty()) return out;
        for (std::string_view p : sorted_) {
            if (p.size() >= suffix.size() && p.back() == suffix.back() && p.ends_with(suffix) &&
                (p.size() == suffix.size() || p[p.size() - suffix.size() - 1] == '/')) {
                out.push_back(p);
            }
        }
        return out;
    }
    // Paths whose directory's last component is `name`.
    std::vector<std::string_view> in_dirs_named(std::string_view name) const {
        std::vector<std::string_view> out;
        for (std::string_view p : sorted_) {
            if (basename(dirname(p)) == name) out.push_back(p);
        }
        return out;
    }

  private:
    const std::vector<std::string_view>& sorted_;
};

// Resolves the import statements of one file against a PathSet.
class ImportResolver {
  public:
    ImportResolver(std::string_view current, const PathSet& paths)
        : current_(current), dir_(dirname(current)), paths_(paths) {}

    void run(std::string_view text) {
        switch (lang_of(current_)) {
            case Lang::Python:
                python(text);
                break;
            case Lang::C:
                c_family(text);
                break;
            case Lang::Js:
                javascript(text);
                break;
            case Lang::Go:
                go(text);
                break;
            case Lang::Rust:
                rust(text);
                break;
            case Lang::Jvm:
                jvm(text);
                break;
            case Lang::None:
                break;
        }
    }
    std::vector<std::string> take() {
        std::sort(found_.begin(), found_.end());
        found_.erase(std::unique(found_.begin(), found_.end()), found_.end());
        found_.erase(std::remove(found_.begin(), found_.end(), current_), found_.end());
        return std::move(found_);
    }

  private:
    bool add_if(std::string_view p) {
        if (!paths_.has(p)) return false;
        found_.emplace_back(p);
        return true;
    }
    // The match nearest the current file (most shared directories, then fewest steps, then
    // path) among several files with the same suffix.
    bool add_closest(const std::vector<std::string_view>& matches) {
        if (matches.empty()) return false;
        std::string_view best;
        std::pair<int, int> best_prox{-1, 0};
        for (std::string_view m : matches) {
            const auto prox = proximity(dir_, dirname(m));
            if (best.empty() || prox.first > best_prox.first ||
                (prox.first == best_prox.first && prox.second < best_prox.second) ||
                (prox == best_prox && m < best)) {
                best = m;
                best_prox = prox;
            }
        }
        found_.emplace_back(best);
        return true;
    }
    bool add_suffix(std::string_view suffix) { return add_closest(paths_.with_suffix(suffix)); }

    // ---- Python: "import a.b, c as d", "from a.b import c", "from ..x import (y, z)".
    bool python_module(std::string_view module, size_t level) {
        std::string path(module);
        std::replace(path.begin(), path.end(), '.', '/');
        auto try_at = [&](std::string_view base) {
            const std::string stem_path = base.empty() ? path : std::string(base) + "/" + path;
            if (path.empty()) return add_if(stem_path + "__init__.py");
            return add_if(stem_path + ".py") || add_if(stem_path + "/__init__.py") ||
                   add_if(stem_path + ".pyi") || add_if(stem_path + "/__init__.pyi");
        };
        if (level > 0) {
            std::string_view base = dir_;
            for (size_t i = 1; i < level; ++i) {
                if (base.empty()) return false;  // above the root
                base = dirname(base);
            }
            return try_at(base);
        }
        if (path.empty()) return false;
        // The root, then next to the current file (scripts, implicit relative imports), then
        // anywhere by suffix (src/ layouts).
        return try_at("") || try_at(dir_) || add_suffix(path + ".py") ||
               add_suffix(path + "/__init__.py");
    }

    void python(std::string_view text) {
        const auto lines = split(text, '\n');
        for (size_t i = 0; i < lines.size(); ++i) {
            std::string line(trim(lines[i]));
            // Parenthesised and backslash-continued import lists span lines.
            const bool paren = line.find('(') != std::string::npos;
            while (i + 1 < lines.size() &&
                   ((paren && line.find(')') == std::string::npos) || line.ends_with('\\'))) {
                if (line.ends_with('\\')) line.pop_back();
                line += ' ';
                line += trim(lines[++i]);
            }
            if (const size_t hash = line.find('#'); hash != std::string::npos) line.resize(hash);
            std::string_view s = line;
            if (s.starts_with("import ")) {
                for (std::string_view item : split(s.substr(7), ',')) {
                    python_module(first_word(item), 0);
                }
            } else if (s.starts_with("from ")) {
                s.remove_prefix(5);
                const size_t imp = s.find(" import ");
                if (imp == std::string_view::npos) continue;
                std::string_view module = trim(s.substr(0, imp));
                size_t level = 0;
                while (level < module.size() && module[level] == '.') ++level;
                module.remove_prefix(level);
                python_module(module, level);
                std::string names(s.substr(imp + 8));
                std::replace(names.begin(), names.end(), '(', ' ');
                std::replace(names.begin(), names.end(), ')', ' ');
                for (std::string_view item : split(names, ',')) {
                    const std::string_view name = first_word(item);
                    if (name.empty() || name == "*") continue;
                    // "from pkg import mod" imports a submodule when there is one.
                    python_module(module.empty() ? std::string(name)
                                                 : std::string(module) + "." + std::string(name),
                                  level);
                }
            }
        }
    }

    static std::string_view first_word(std::string_view s) {
        s = trim(s);
        return s.substr(0, s.find_first_of(" \t"));
    }

    // ---- C/C++: #include "x.h" next to the current file, then by suffix; <x.h> by suffix.
    void c_family(std::string_view text) {
        for (std::string_view line : split(text, '\n')) {
            line = trim(line);
            if (!line.starts_with('#')) continue;
            line = trim(line.substr(1));
            if (line.starts_with("include")) {
                line = trim(line.substr(7));
            } else if (line.starts_with("import")) {
                line = trim(line.substr(6));
            } else {
                continue;
            }
            if (line.empty()) continue;
            const char close = line[0] == '"' ? '"' : line[0] == '<' ? '>' : '\0';
            if (close == '\0') continue;
            const size_t end = line.find(close, 1);
            if (end == std::string_view::npos) continue;
            const std::string_view spec = line.substr(1, end - 1);
            if (spec.empty()) continue;
            if (close == '"') {
                if (auto p = join_normal(dir_, spec); p && add_if(*p)) continue;
            }
            std::string_view suffix = spec;
            while (suffix.starts_with("./") || suffix.starts_with("../")) {
                suffix.remove_prefix(suffix.find('/') + 1);
            }
            add_suffix(suffix);
        }
    }

    // ---- JS/TS: relative specifiers of import/export ... from, import(), require().
    void javascript(std::string_view text) {
        auto ident = [](char c) {
            return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_' || c == '$';
        };
        for (std::string_view kw : {"from", "import", "require"}) {
            for (size_t at = text.find(kw); at != std::string_view::npos;
                 at = text.find(kw, at + 1)) {
                if (at > 0 && ident(text[at - 1])) continue;
                size_t i = at + kw.size();
                if (i < text.size() && ident(text[i])) continue;
                while (i < text.size() && (text[i] == ' ' || text[i] == '\t' || text[i] == '(')) {
                    ++i;
                }
                if (i >= text.size() || (text[i] != '\'' && text[i] != '"' && text[i] != '`')) {
                    continue;
                }
                const size_t end = text.find(text[i], i + 1);
                if (end == std::string_view::npos) continue;
                js_specifier(text.substr(i + 1, end - i - 1));
            }
        }
    }

    void js_specifier(std::string_view spec) {
        if (!spec.starts_with("./") && !spec.starts_with("../") && spec != "." && spec != "..") {
            return;  // a package, not a file of this workspace
        }
        const auto base = join_normal(dir_, spec);
        if (!base) return;
        if (!extension(*base).empty() && add_if(*base)) return;
        static constexpr std::string_view kExts[] = {".ts",  ".tsx", ".js",  ".jsx",
                                                     ".mjs", ".cjs", ".mts", ".cts"};
        for (std::string_view e : kExts) {
            if (add_if(*base + std::string(e))) return;
        }
        const std::string index = base->empty() ? "index" : *base + "/index";
        for (std::string_view e : {".ts", ".tsx", ".js", ".jsx", ".mjs"}) {
            if (add_if(index + std::string(e))) return;
        }
        // TypeScript sources import each other by their compiled name: "./x.js" is x.ts.
        const std::string_view e = extension(*base);
        if (e == "js" || e == "jsx" || e == "mjs") {
            const std::string no_ext = base->substr(0, base->size() - e.size() - 1);
            for (std::string_view t : {".ts", ".tsx", ".mts"}) {
                if (add_if(no_ext + std::string(t))) return;
            }
        }
    }

    // ---- Go: the files of the package directory whose path ends like the import path.
    void go(std::string_view text) {
        bool block = false;
        for (std::string_view line : split(text, '\n')) {
            line = trim(line);
            if (block) {
                if (line.starts_with(')')) {
                    block = false;
                    continue;
                }
            } else if (line.starts_with("import")) {
                line = trim(line.substr(6));
                if (line.starts_with('(')) {
                    block = true;
                    line = trim(line.substr(1));
                }
            } else {
                continue;
            }
            const size_t q = line.find('"');
            if (q == std::string_view::npos) continue;
            const size_t e = line.find('"', q + 1);
            if (e == std::string_view::npos) continue;
            go_package(line.substr(q + 1, e - q - 1));
        }
    }

    void go_package(std::string_view import_path) {
        const auto parts = split(import_path, '/');
        const auto files = paths_.in_dirs_named(parts.back());
        // The directories matching the most trailing components of the import path.
        size_t best = 0;
        std::vector<std::string_view> chosen;
        for (std::string_view f : files) {
            if (!f.ends_with(".go") || f.ends_with("_test.go")) continue;
            const auto dparts = split(dirname(f), '/');
            size_t n = 0;
            while (n < dparts.size() && n < parts.size() &&
                   dparts[dparts.size() - 1 - n] == parts[parts.size() - 1 - n]) {
                ++n;
            }
            if (n > best) {
                best = n;
                chosen.clear();
            }
            if (n == best) chosen.push_back(f);
        }
        for (std::string_view f : chosen) {
            if (dirname(f) != dir_) found_.emplace_back(f);
        }
    }

    // ---- Rust: "mod x;" next to the current file; "use a::b::c" by the last components.
    void rust(std::string_view text) {
        const std::string_view name = basename(current_);
        const std::string mod_dir =
            (name == "lib.rs" || name == "main.rs" || name == "mod.rs")
                ? std::string(dir_)
                : (dir_.empty() ? std::string(stem(current_))
                                : std::string(dir_) + "/" + std::string(stem(current_)));
        for (std::string_view line : split(text, '\n')) {
            line = trim(line);
            if (line.starts_with("pub ")) line = trim(line.substr(4));
            if (line.starts_with("mod ") && line.ends_with(';')) {
                const std::string m(trim(line.substr(4, line.size() - 5)));
                const std::string base = mod_dir.empty() ? m : mod_dir + "/" + m;
                if (!add_if(base + ".rs")) add_if(base + "/mod.rs");
            } else if (line.starts_with("use ")) {
                std::string_view path = line.substr(4);
                path = path.substr(0, path.find_first_of("{;"));
                std::vector<std::string_view> comps;
                for (std::string_view c : split(path, ':')) {
                    c = trim(c);
                    if (c.empty() || c == "crate" || c == "self" || c == "super" || c == "std" ||
                        c == "core" || c == "alloc") {
                        continue;
                    }
                    comps.push_back(c);
                }
                // The last component is often an item inside the module named before it.
                for (size_t k = 0; k < 2 && k < comps.size(); ++k) {
                    const std::string c(comps[comps.size() - 1 - k]);
                    if (add_suffix(c + ".rs") || add_suffix(c + "/mod.rs")) break;
                }
            }
        }
    }

    // ---- Java/Kotlin/Scala: "import a.b.C;" as a/b/C.<ext>, else the closest C.<ext>.
    void jvm(std::string_view text) {
        const std::string cur_ext(extension(current_));
        for (std::string_view line : split(text, '\n')) {
            line = trim(line);
            if (!line.starts_with("import ")) continue;
            line = trim(line.substr(7));
            if (line.starts_with("static ")) line = trim(line.substr(7));
            line = line.substr(0, line.find_first_of("; \t"));
            auto comps = split(line, '.');
            if (comps.empty() || comps.back() == "*" || comps.back() == "_") continue;
            // Static imports and nested classes: the class may be the second to last.
            for (size_t k = 0; k < 2 && k < comps.size(); ++k) {
                std::string rel;
                for (size_t j = 0; j + k < comps.size(); ++j) {
                    if (!rel.empty()) rel += '/';
                    rel += comps[j];
                }
                bool done = false;
                for (const std::string& e :
                     {cur_ext, std::string("java"), std::string("kt"), std::string("scala")}) {
                    if (add_suffix(rel + "." + e)) {
                        done = true;
                        break;
                    }
                }
                if (!done) {
                    const std::string cls(comps[comps.size() - 1 - k]);
                    for (const std::string& e : {cur_ext, std::string("java"), std::string("kt")}) {
                        if (add_suffix(cls + "." + e)) {
                            done = true;
                            break;
                        }
                    }
                }
                if (done) break;
            }
        }
    }

    std::string_view current_;
    std::string_view dir_;
    const PathSet& paths_;
    std::vector<std::string> found_;
};

struct Candidate {
    std::string_view path;
    uint64_t size = 0;                  // on disk, from the index
    const OpenDocument* doc = nullptr;  // the open document, when there is one
    // Ranking, most significant first (see context.h): `tier` packs imported, sibling
    // (2: same directory, 1: a test or header/source counterpart elsewhere) and recent
    // (2: dirty or recently edited, 1: open); `recency` orders open documents; `near` packs
    // same directory, same language, shared directories and closeness.
    uint32_t tier = 0;
    int64_t recency = 0;
    uint32_t near = 0;
    // Selection state.
    bool chosen = false;
    bool failed = false;  // unreadable, empty or binary: never tried again
    bool loaded = false;
    std::string text;  // read from disk once loaded (documents use their own text)

    std::string_view content() const { return doc ? std::string_view(doc->text) : text; }
    size_t bytes() const { return doc ? doc->text.size() : loaded ? text.size() : size; }
};

// Higher first; candidates arrive sorted by path and are sorted stably, so ties stay in
// path order without comparing strings.
bool ranks_before(const Candidate* a, const Candidate* b) {
    if (a->tier != b->tier) return a->tier > b->tier;
    if (a->recency != b->recency) return a->recency > b->recency;
    return a->near > b->near;
}

// Whether a text may go into a prompt: not binary, not generated.
bool usable_text(std::string_view text) {
    constexpr size_t kHead = 8 * 1024;
    const std::string_view head = text.substr(0, kHead);
    return classify_content(head, text.size() > head.size()) == ContentKind::Text;
}

std::vector<std::string> imports_among(std::string_view current_path, std::string_view text,
                                       const std::vector<std::string_view>& sorted) {
    const PathSet paths(sorted);
    ImportResolver r(current_path, paths);
    r.run(text);
    return r.take();
}

}  // namespace

std::vector<std::string> resolve_imports(std::string_view current_path, std::string_view text,
                                         const std::vector<std::string>& candidates) {
    std::vector<std::string_view> sorted(candidates.begin(), candidates.end());
    std::sort(sorted.begin(), sorted.end());
    return imports_among(current_path, text, sorted);
}

// ---- RecentEdits --------------------------------------------------------------------

RecentEdits::RecentEdits(size_t max_chunks, int32_t context_lines, size_t max_bytes)
    : max_chunks_(max_chunks), context_lines_(std::max(0, context_lines)), max_bytes_(max_bytes) {}

void RecentEdits::record(const std::string& path, std::string_view text, int32_t first_line,
                         int32_t last_line) {
    if (max_chunks_ == 0 || max_bytes_ == 0) return;
    // Line starts of the new text; a trailing newline does not open another line.
    std::vector<size_t> starts{0};
    for (size_t i = 0; i < text.size(); ++i) {
        if (text[i] == '\n' && i + 1 < text.size()) starts.push_back(i + 1);
    }
    const auto n_lines = static_cast<int64_t>(starts.size());
    if (first_line > last_line) std::swap(first_line, last_line);
    int64_t lo = std::clamp<int64_t>(int64_t{first_line} - context_lines_, 0, n_lines - 1);
    int64_t hi = std::clamp<int64_t>(int64_t{last_line} + context_lines_, 0, n_lines - 1);

    // Merge with every chunk of this file that overlaps or touches the new window.
    for (bool merged = true; merged;) {
        merged = false;
        for (auto it = chunks_.begin(); it != chunks_.end(); ++it) {
            if (it->path != path || it->first > hi + 1 || lo > it->last + 1) continue;
            lo = std::min<int64_t>(lo, it->first);
            hi = std::max<int64_t>(hi, it->last);
            bytes_ -= it->text.size();
            chunks_.erase(it);
            merged = true;
            break;
        }
    }
    lo = std::clamp<int64_t>(lo, 0, n_lines - 1);
    hi = std::clamp<int64_t>(hi, lo, n_lines - 1);

    const size_t begin = starts[static_cast<size_t>(lo)];
    const size_t end = hi + 1 < n_lines ? starts[static_cast<size_t>(hi + 1)] : text.size();
    std::string_view cut = text.substr(begin, end - begin);
    const size_t cap = std::max<size_t>(1, max_bytes_ / 4);
    if (cut.size() > cap) {
        // Keep whole lines from the top of the window.
        const size_t nl = cut.rfind('\n', cap - 1);
        cut = cut.substr(0, nl == std::string_view::npos ? cap : nl + 1);
    }
    if (cut.empty()) return;

    Chunk c;
    c.path = path;
    c.first = static_cast<int32_t>(lo);
    c.last = static_cast<int32_t>(hi);
    c.text = std::string(cut);
    bytes_ += c.text.size();
    chunks_.push_front(std::move(c));
    while (chunks_.size() > max_chunks_ || (bytes_ > max_bytes_ && chunks_.size() > 1)) {
        bytes_ -= chunks_.back().text.size();
        chunks_.pop_back();
    }
}

void RecentEdits::shift(const std::string& path, int32_t line, int32_t delta) {
    if (delta == 0) return;
    for (Chunk& c : chunks_) {
        if (c.path != path || c.last < line) continue;
        if (c.first > line) c.first = std::max(0, c.first + delta);
        c.last = std::max(c.first, c.last + delta);
    }
}

void RecentEdits::forget(const std::string& path) {
    for (auto it = chunks_.begin(); it != chunks_.end();) {
        if (it->path == path) {
            bytes_ -= it->text.size();
            it = chunks_.erase(it);
        } else {
            ++it;
        }
    }
}

std::vector<ContextFile> RecentEdits::chunks() const {
    std::vector<ContextFile> out;
    out.reserve(chunks_.size());
    for (const Chunk& c : chunks_) out.push_back(ContextFile{c.path, c.text});
    return out;
}

// ---- build_context -------------------------------------------------------------------

std::vector<ContextFile> build_context(const RepoIndex& index, std::string_view current_path,
                                       std::string_view current_text,
                                       std::span<const OpenDocument> open, const RecentEdits& edits,
                                       const ContextOptions& opts) {
    if (opts.budget_tokens <= 0 || !(opts.bytes_per_token > 0)) return {};
    const auto budget =
        static_cast<size_t>(static_cast<double>(opts.budget_tokens) * opts.bytes_per_token);

    // Eligibility reads ignore files; ask once per path.
    std::map<std::string, bool, std::less<>> eligible_cache;
    auto eligible = [&](std::string_view p) {
        auto it = eligible_cache.find(p);
        if (it == eligible_cache.end()) {
            it = eligible_cache.emplace(std::string(p), index.eligible(p)).first;
        }
        return it->second;
    };

    // Open documents by path: the most recently edited one when a path appears twice.
    std::map<std::string_view, const OpenDocument*> docs;
    std::vector<std::string_view> refused;  // open but unusable: their disk copy is out too
    for (const OpenDocument& d : open) {
        if (d.path == current_path || d.path.empty()) continue;
        auto [it, inserted] = docs.emplace(d.path, &d);
        if (!inserted && d.last_edit > it->second->last_edit) it->second = &d;
    }
    for (auto it = docs.begin(); it != docs.end();) {
        const OpenDocument& d = *it->second;
        if (!eligible(d.path)) {
            refused.push_back(it->first);
            it = docs.erase(it);
        } else if (d.text.empty() || d.text.size() > index.options().max_file_bytes ||
                   !usable_text(d.text)) {
            // The editor's text is the truth: a stale disk copy must not stand in for it.
            refused.push_back(it->first);
            it = docs.erase(it);
        } else {
            ++it;
        }
    }

    // Recent-edit chunks, newest first, from other files that may be used.
    std::vector<ContextFile> chunks;
    for (ContextFile& c : edits.chunks()) {
        if (c.path == current_path || !eligible(c.path) || !usable_text(c.text)) continue;
        chunks.push_back(std::move(c));
    }

    // Candidates, sorted by path: the index's files, with open documents in place of their
    // disk copy, and open documents the index does not hold (new, unsaved).
    std::vector<Candidate> cands;
    cands.reserve(index.files().size() + docs.size());
    auto doc_it = docs.begin();
    auto add_doc = [&](std::string_view path, const OpenDocument* doc) {
        Candidate c;
        c.path = path;
        c.doc = doc;
        cands.push_back(std::move(c));
    };
    for (const IndexedFile& f : index.files()) {
        for (; doc_it != docs.end() && doc_it->first < f.path; ++doc_it) {
            add_doc(doc_it->first, doc_it->second);
        }
        if (f.path == current_path) continue;
        if (std::binary_search(refused.begin(), refused.end(), std::string_view(f.path))) {
            continue;
        }
        Candidate c;
        c.path = f.path;
        c.size = f.size;
        if (doc_it != docs.end() && doc_it->first == f.path) c.doc = (doc_it++)->second;
        cands.push_back(std::move(c));
    }
    for (; doc_it != docs.end(); ++doc_it) add_doc(doc_it->first, doc_it->second);

    // Scores.
    std::vector<std::string_view> sorted_paths;
    sorted_paths.reserve(cands.size());
    for (const Candidate& c : cands) sorted_paths.push_back(c.path);
    const std::vector<std::string> imports =
        imports_among(current_path, current_text, sorted_paths);
    std::set<std::string_view> edited;
    for (const ContextFile& c : chunks) edited.insert(c.path);

    const std::string_view cur_dir = dirname(current_path);
    const Core cur_core = core_name(current_path);
    const std::string_view cur_lang = language_key(current_path);
    const std::string_view cur_ext = extension(current_path);
    const bool cur_c = lang_of(current_path) == Lang::C;
    for (Candidate& c : cands) {
        const uint32_t imported =
            std::binary_search(imports.begin(), imports.end(), c.path) ? 1 : 0;
        const std::string_view dir = dirname(c.path);
        uint32_t sibling = 0;
        // Only a name that contains the current core can share it (spares most lookups).
        const Core core =
            !cur_core.name.empty() && basename(c.path).find(cur_core.name) != std::string_view::npos
                ? core_name(c.path)
                : Core{};
        if (!core.name.empty() && core.name == cur_core.name) {
            if (dir == cur_dir) {
                sibling = 2;
            } else if (core.test != cur_core.test ||
                       (cur_c && lang_of(c.path) == Lang::C &&
                        is_header(c.path) != is_header(current_path))) {
                sibling = 1;
            }
        }
        uint32_t recent = 0;
        if ((c.doc && c.doc->dirty) || edited.contains(c.path)) {
            recent = 2;
        } else if (c.doc) {
            recent = 1;
        }
        c.tier = imported << 4 | sibling << 2 | recent;
        c.recency = c.doc ? c.doc->last_edit : 0;
        const uint32_t same_dir = dir == cur_dir ? 1 : 0;
        const uint32_t same_lang =
            !cur_lang.empty() && (extension(c.path) == cur_ext || language_key(c.path) == cur_lang)
                ? 1
                : 0;
        const auto [shared, distance] = proximity(cur_dir, dir);
        c.near = same_dir << 17 | same_lang << 16 |
                 static_cast<uint32_t>(std::min(shared, 255)) << 8 |
                 static_cast<uint32_t>(255 - std::min(distance, 255));
    }
    std::vector<Candidate*> ranked;
    ranked.reserve(cands.size());
    for (Candidate& c : cands) ranked.push_back(&c);
    std::stable_sort(ranked.begin(), ranked.end(), ranks_before);

    // Chunks are small and say the most about the next edit: their bytes are set aside
    // first (newest first), then files fill the rest.
    size_t reserved = 0;
    size_t keep = 0;
    for (; keep < chunks.size(); ++keep) {
        const size_t cost = cost_of(chunks[keep].path, chunks[keep].text.size());
        if (reserved + cost > budget) break;
        reserved += cost;
    }
    chunks.resize(keep);

    size_t remaining = budget - reserved;
    auto fill = [&] {
        for (Candidate* c : ranked) {
            if (c->chosen || c->failed) continue;
            if (!c->doc && !c->loaded && c->size == 0) {
                c->failed = true;  // empty: nothing to show
                continue;
            }
            if (cost_of(c->path, c->bytes()) > remaining) continue;
            if (!c->doc && !c->loaded) {
                auto text = index.read(c->path);
                c->loaded = true;
                if (!text || text->empty()) {
                    c->failed = true;
                    continue;
                }
                c->text = std::move(*text);
                if (cost_of(c->path, c->text.size()) > remaining) continue;  // grew on disk
            }
            c->chosen = true;
            remaining -= cost_of(c->path, c->bytes());
        }
    };
    // A chunk of a file that made it in whole is redundant; its bytes go back to the files.
    auto chosen = [&](std::string_view path) {
        auto c =
            std::lower_bound(cands.begin(), cands.end(), path,
                             [](const Candidate& x, std::string_view p) { return x.path < p; });
        return c != cands.end() && c->path == path && c->chosen;
    };
    while (true) {
        fill();
        bool dropped = false;
        for (auto it = chunks.begin(); it != chunks.end();) {
            if (chosen(it->path)) {
                remaining += cost_of(it->path, it->text.size());
                it = chunks.erase(it);
                dropped = true;
            } else {
                ++it;
            }
        }
        if (!dropped) break;
    }

    std::vector<const Candidate*> stable, dirty;  // in path order, as `cands` is
    for (const Candidate& c : cands) {
        if (!c.chosen) continue;
        (c.doc && c.doc->dirty ? dirty : stable).push_back(&c);
    }

    std::vector<ContextFile> out;
    out.reserve(stable.size() + dirty.size() + chunks.size());
    for (const Candidate* c : stable)
        out.push_back({std::string(c->path), std::string(c->content())});
    for (const Candidate* c : dirty)
        out.push_back({std::string(c->path), std::string(c->content())});
    for (auto it = chunks.rbegin(); it != chunks.rend(); ++it) out.push_back(std::move(*it));
    return out;
}

}  // namespace hearth
