#include "ignore.h"

#include <cctype>
#include <fstream>
#include <iterator>

namespace hearth {

namespace {

// Outcomes of one wildmatch step. The two abort codes let an enclosing `*` stop trying
// further positions once no later position can succeed, which keeps matching linear in
// practice; they all mean "no match" to the caller.
enum class Wild { Match, NoMatch, AbortAll, AbortToStarStar };

bool posix_class(std::string_view name, unsigned char c, bool& known) {
    known = true;
    if (name == "alnum") return std::isalnum(c) != 0;
    if (name == "alpha") return std::isalpha(c) != 0;
    if (name == "blank") return c == ' ' || c == '\t';
    if (name == "cntrl") return std::iscntrl(c) != 0;
    if (name == "digit") return std::isdigit(c) != 0;
    if (name == "graph") return std::isgraph(c) != 0;
    if (name == "lower") return std::islower(c) != 0;
    if (name == "print") return std::isprint(c) != 0;
    if (name == "punct") return std::ispunct(c) != 0;
    if (name == "space") return std::isspace(c) != 0;
    if (name == "upper") return std::isupper(c) != 0;
    if (name == "xdigit") return std::isxdigit(c) != 0;
    known = false;
    return false;
}

// Matches a bracket class starting at pat[pi] == '['. On return `pi` is just past the
// closing ']'. Returns NoMatch/AbortAll on failure, Match when `tc` is in the class.
Wild match_class(std::string_view pat, size_t& pi, unsigned char tc) {
    ++pi;  // '['
    if (pi >= pat.size()) return Wild::AbortAll;
    bool negated = false;
    if (pat[pi] == '!' || pat[pi] == '^') {
        negated = true;
        ++pi;
    }
    bool matched = false;
    int prev = -1;  // previous literal, the low end of a range; -1 when none
    // The first character is taken literally even when it is ']' (as in "[]a]").
    bool first = true;
    while (true) {
        if (pi >= pat.size()) return Wild::AbortAll;  // unterminated class
        auto c = static_cast<unsigned char>(pat[pi]);
        if (c == ']' && !first) break;
        first = false;
        if (c == '\\') {
            if (++pi >= pat.size()) return Wild::AbortAll;
            c = static_cast<unsigned char>(pat[pi]);
            if (tc == c) matched = true;
            prev = c;
        } else if (c == '-' && prev >= 0 && pi + 1 < pat.size() && pat[pi + 1] != ']') {
            ++pi;
            auto hi = static_cast<unsigned char>(pat[pi]);
            if (hi == '\\') {
                if (++pi >= pat.size()) return Wild::AbortAll;
                hi = static_cast<unsigned char>(pat[pi]);
            }
            if (prev <= tc && tc <= hi) matched = true;
            prev = -1;  // "a-c-e": the second '-' is literal
        } else if (c == '[' && pi + 1 < pat.size() && pat[pi + 1] == ':') {
            const size_t close = pat.find(']', pi + 2);
            if (close == std::string_view::npos) return Wild::AbortAll;
            if (close < pi + 3 || pat[close - 1] != ':') {
                // No ":]": an ordinary '['.
                if (tc == '[') matched = true;
                prev = '[';
            } else {
                bool known = false;
                if (posix_class(pat.substr(pi + 2, close - pi - 3), tc, known)) matched = true;
                if (!known) return Wild::AbortAll;  // malformed class name: git matches nothing
                pi = close;
                prev = -1;
            }
        } else {
            if (tc == c) matched = true;
            prev = c;
        }
        ++pi;
    }
    ++pi;  // ']'
    if (matched == negated || tc == '/') return Wild::NoMatch;
    return Wild::Match;
}

Wild wild(std::string_view pat, size_t pi, std::string_view text, size_t ti) {
    while (pi < pat.size()) {
        const char pc = pat[pi];
        if (ti >= text.size() && pc != '*') return Wild::AbortAll;
        switch (pc) {
            case '\\':
                // Literal next character; a trailing backslash matches nothing.
                if (pi + 1 >= pat.size() || text[ti] != pat[pi + 1]) return Wild::NoMatch;
                pi += 2;
                ++ti;
                break;
            case '?':
                if (text[ti] == '/') return Wild::NoMatch;
                ++pi;
                ++ti;
                break;
            case '[': {
                const Wild r = match_class(pat, pi, static_cast<unsigned char>(text[ti]));
                if (r != Wild::Match) return r;
                ++ti;
                break;
            }
            case '*': {
                bool match_slash = false;
                const size_t star = pi;
                while (pi < pat.size() && pat[pi] == '*') ++pi;
                if (pi - star >= 2) {
                    const bool after_slash = star == 0 || pat[star - 1] == '/';
                    const bool before_slash =
                        pi == pat.size() || pat[pi] == '/' ||
                        (pat[pi] == '\\' && pi + 1 < pat.size() && pat[pi + 1] == '/');
                    if (after_slash && before_slash) {
                        // "**/" may also match no directory at all: "a/**/b" matches "a/b".
                        if (pi < pat.size() && pat[pi] == '/' &&
                            wild(pat, pi + 1, text, ti) == Wild::Match) {
                            return Wild::Match;
                        }
                        match_slash = true;
                    }
                }
                if (pi == pat.size()) {
                    // A trailing star matches the rest unless it would have to cross a '/'.
                    if (!match_slash && text.find('/', ti) != std::string_view::npos) {
                        return Wild::AbortToStarStar;
                    }
                    return Wild::Match;
                }
                if (!match_slash && pat[pi] == '/') {
                    // "*/": the star ends at the next slash of the text.
                    const size_t slash = text.find('/', ti);
                    if (slash == std::string_view::npos) return Wild::AbortAll;
                    ti = slash;
                    break;
                }
                for (; ti < text.size(); ++ti) {
                    const Wild r = wild(pat, pi, text, ti);
                    if (r != Wild::NoMatch) {
                        if (!match_slash || r != Wild::AbortToStarStar) return r;
                    } else if (!match_slash && text[ti] == '/') {
                        return Wild::AbortToStarStar;
                    }
                }
                return Wild::AbortAll;
            }
            default:
                if (text[ti] != pc) return Wild::NoMatch;
                ++pi;
                ++ti;
                break;
        }
    }
    return ti == text.size() ? Wild::Match : Wild::NoMatch;
}

std::string_view basename_of(std::string_view path) {
    const size_t slash = path.rfind('/');
    return slash == std::string_view::npos ? path : path.substr(slash + 1);
}

}  // namespace

bool glob_match(std::string_view pattern, std::string_view text) {
    return wild(pattern, 0, text, 0) == Wild::Match;
}

IgnoreRules IgnoreRules::parse(std::string_view text) {
    IgnoreRules rules;
    if (text.starts_with("\xEF\xBB\xBF")) text.remove_prefix(3);
    while (!text.empty()) {
        const size_t nl = text.find('\n');
        rules.add_line(text.substr(0, nl));
        if (nl == std::string_view::npos) break;
        text.remove_prefix(nl + 1);
    }
    return rules;
}

IgnoreRules IgnoreRules::from_patterns(const std::vector<std::string>& patterns) {
    IgnoreRules rules;
    for (const auto& p : patterns) rules.add_line(p);
    return rules;
}

void IgnoreRules::add_line(std::string_view line) {
    if (line.ends_with('\r')) line.remove_suffix(1);
    if (line.empty() || line.front() == '#') return;

    // Trailing spaces go unless escaped: "a\ " keeps its escaped space (wildmatch reads
    // "\ " as a literal space).
    size_t trailing = std::string_view::npos;  // start of the unescaped trailing space run
    for (size_t i = 0; i < line.size(); ++i) {
        if (line[i] == '\\') {
            ++i;
            trailing = std::string_view::npos;
        } else if (line[i] == ' ') {
            if (trailing == std::string_view::npos) trailing = i;
        } else {
            trailing = std::string_view::npos;
        }
    }
    if (trailing != std::string_view::npos) line = line.substr(0, trailing);

    Rule rule;
    if (line.starts_with('!')) {
        rule.negate = true;
        line.remove_prefix(1);
    }
    if (line.ends_with('/')) {
        rule.dir_only = true;
        line.remove_suffix(1);
    }
    rule.anchored = line.find('/') != std::string_view::npos;
    if (line.starts_with('/')) line.remove_prefix(1);
    if (line.empty()) return;
    rule.glob = std::string(line);
    rules_.push_back(std::move(rule));
    classify(rules_.back());
}

void IgnoreRules::classify(Rule& rule) {
    constexpr std::string_view kSpecial = "*?[\\";
    const std::string_view g = rule.glob;
    if (g.find_first_of(kSpecial) == std::string_view::npos) {
        rule.kind = Kind::Literal;
    } else if (!rule.anchored && g.size() > 1 && g[0] == '*' &&
               g.find_first_of(kSpecial, 1) == std::string_view::npos) {
        // "*.ext" on a name (which holds no '/'): a suffix test.
        rule.kind = Kind::Suffix;
    } else {
        rule.kind = Kind::Glob;
    }
}

bool IgnoreRules::Rule::matches(std::string_view text) const {
    switch (kind) {
        case Kind::Literal:
            return text == glob;
        case Kind::Suffix:
            return text.ends_with(std::string_view(glob).substr(1));
        case Kind::Glob:
            break;
    }
    return glob_match(glob, text);
}

void IgnoreRules::append(const IgnoreRules& later) {
    rules_.insert(rules_.end(), later.rules_.begin(), later.rules_.end());
}

IgnoreMatch IgnoreRules::match(std::string_view rel_path, bool is_dir) const {
    const std::string_view name = basename_of(rel_path);
    for (auto it = rules_.rbegin(); it != rules_.rend(); ++it) {
        if (it->dir_only && !is_dir) continue;
        if (it->matches(it->anchored ? rel_path : name)) {
            return it->negate ? IgnoreMatch::Include : IgnoreMatch::Ignore;
        }
    }
    return IgnoreMatch::None;
}

IgnoreRules load_ignore_file(const std::filesystem::path& file) {
    std::ifstream in(file, std::ios::binary);
    if (!in) return {};
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    return IgnoreRules::parse(text);
}

IgnoreRules load_directory_rules(const std::filesystem::path& dir) {
    IgnoreRules rules;
    for (const char* name : {".gitignore", ".ignore"}) {
        std::error_code ec;
        if (!std::filesystem::is_regular_file(std::filesystem::symlink_status(dir / name, ec))) {
            continue;
        }
        rules.append(load_ignore_file(dir / name));
    }
    return rules;
}

void IgnoreStack::push(std::string dir, IgnoreRules rules) {
    frames_.push_back(Frame{std::move(dir), std::move(rules)});
}

void IgnoreStack::pop() {
    if (!frames_.empty()) frames_.pop_back();
}

IgnoreMatch IgnoreStack::match(std::string_view rel_path, bool is_dir) const {
    for (auto it = frames_.rbegin(); it != frames_.rend(); ++it) {
        if (it->rules.empty()) continue;
        std::string_view sub = rel_path;
        if (!it->dir.empty()) {
            // The rules of a directory apply to what lies below it, not to the directory.
            if (rel_path.size() <= it->dir.size() || !rel_path.starts_with(it->dir) ||
                rel_path[it->dir.size()] != '/') {
                continue;
            }
            sub = rel_path.substr(it->dir.size() + 1);
        }
        const IgnoreMatch m = it->rules.match(sub, is_dir);
        if (m != IgnoreMatch::None) return m;
    }
    return IgnoreMatch::None;
}

bool IgnoreStack::ignored(std::string_view rel_path, bool is_dir) const {
    for (size_t pos = rel_path.find('/'); pos != std::string_view::npos;
         pos = rel_path.find('/', pos + 1)) {
        if (match(rel_path.substr(0, pos), true) == IgnoreMatch::Ignore) return true;
    }
    return match(rel_path, is_dir) == IgnoreMatch::Ignore;
}

}  // namespace hearth
