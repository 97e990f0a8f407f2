#include "postprocess.h"

#include <algorithm>
#include <vector>

namespace hearth::lsp {

namespace {

std::vector<std::string> split_lines(std::string_view text) {
    std::vector<std::string> lines;
    size_t start = 0;
    while (true) {
        size_t nl = text.find('\n', start);
        if (nl == std::string_view::npos) {
            lines.emplace_back(text.substr(start));
            break;
        }
        lines.emplace_back(text.substr(start, nl - start));
        start = nl + 1;
    }
    return lines;
}

std::string join_lines(const std::vector<std::string>& lines) {
    std::string out;
    for (size_t i = 0; i < lines.size(); ++i) {
        if (i) out.push_back('\n');
        out += lines[i];
    }
    return out;
}

std::string normalise_eol(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (size_t i = 0; i < text.size(); ++i) {
        if (text[i] == '\r') {
            out.push_back('\n');
            if (i + 1 < text.size() && text[i + 1] == '\n') ++i;
        } else {
            out.push_back(text[i]);
        }
    }
    return out;
}

std::string_view rtrim(std::string_view s) {
    while (!s.empty() &&
           (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n')) {
        s.remove_suffix(1);
    }
    return s;
}

bool is_opener(char c) {
    return c == ':' || c == '{' || c == '(' || c == '[';
}
bool is_closer(char c) {
    return c == '}' || c == ')' || c == ']';
}

char first_non_space(std::string_view line) {
    for (char c : line) {
        if (c != ' ' && c != '\t') return c;
    }
    return '\0';
}

// Rule 2. Returns the number of lines to keep.
size_t block_end(const std::vector<std::string>& lines, std::string_view prefix_line) {
    std::string cursor_line = std::string(prefix_line) + lines[0];
    std::string_view before = rtrim(prefix_line);
    bool body_mode = !before.empty() && is_opener(before.back()) && is_blank(lines[0]);
    if (body_mode) {
        int base = indent_width(prefix_line);
        for (size_t i = 1; i < lines.size(); ++i) {
            if (is_blank(lines[i])) continue;
            int w = indent_width(lines[i]);
            if (w > base) continue;
            if (w == base && is_closer(first_non_space(lines[i]))) return i + 1;
            return i;
        }
        return lines.size();
    }
    size_t first = 1;
    int base = 0;
    if (!is_blank(cursor_line)) {
        base = indent_width(cursor_line);
    } else {
        while (first < lines.size() && is_blank(lines[first])) ++first;
        if (first == lines.size()) return lines.size();
        base = indent_width(lines[first]);
        ++first;
    }
    for (size_t i = first; i < lines.size(); ++i) {
        if (!is_blank(lines[i]) && indent_width(lines[i]) < base) return i;
    }
    return lines.size();
}

// What a stop rule says about the lines to keep while text may still be added: `fixed`, the
// count is `keep` whatever comes; otherwise every continuation keeps at least `keep`.
struct KeepBound {
    size_t keep;
    bool fixed;
};

constexpr size_t kNoLimit = static_cast<size_t>(-1);

// Rule 2 on lines whose last one may still grow (the others are complete); mirrors
// block_end() step by step.
KeepBound block_end_bound(const std::vector<std::string>& lines, std::string_view prefix_line) {
    const size_t k = lines.size() - 1;  // lines[k] may still grow
    // Until the first line is complete, neither the mode nor the base is known; no cut can
    // come before line 1 anyway.
    if (k == 0) return {1, false};
    std::string_view before = rtrim(prefix_line);
    const bool body_mode = !before.empty() && is_opener(before.back()) && is_blank(lines[0]);
    // A non-blank line's indentation and first character are fixed even while it grows; a
    // blank last line may still become any line.
    if (body_mode) {
        const int base = indent_width(prefix_line);
        for (size_t i = 1; i <= k; ++i) {
            if (is_blank(lines[i])) {
                if (i == k) return {k, false};
                continue;
            }
            const int w = indent_width(lines[i]);
            if (w > base) continue;
            if (w == base && is_closer(first_non_space(lines[i]))) return {i + 1, true};
            return {i, true};
        }
        return {k + 1, false};
    }
    size_t first = 1;
    int base = 0;
    if (!is_blank(std::string(prefix_line) + lines[0])) {
        base = indent_width(std::string(prefix_line) + lines[0]);
    } else {
        while (first <= k && is_blank(lines[first])) ++first;
        // The base line may still come; nothing before it is cut.
        if (first >= k) return {k + 1, false};
        base = indent_width(lines[first]);
        ++first;
    }
    for (size_t i = first; i <= k; ++i) {
        if (is_blank(lines[i])) {
            if (i == k) return {k, false};
            continue;
        }
        if (indent_width(lines[i]) < base) return {i, true};
    }
    return {k + 1, false};
}

// The first non-blank line of the suffix after the cursor's line, right-trimmed.
std::string_view next_suffix_line(std::string_view suffix) {
    size_t nl = suffix.find_first_of("\r\n");
    while (nl != std::string_view::npos) {
        size_t start = nl + 1;
        if (suffix[nl] == '\r' && start < suffix.size() && suffix[start] == '\n') ++start;
        size_t end = suffix.find_first_of("\r\n", start);
        std::string_view line =
            suffix.substr(start, end == std::string_view::npos ? end : end - start);
        if (!is_blank(line)) return rtrim(line);
        nl = end;
    }
    return {};
}

// Largest k <= max such that s[k-1..] does not start inside a UTF-8 sequence.
size_t utf8_floor(std::string_view s, size_t max) {
    if (max >= s.size()) return s.size();
    size_t k = max;
    while (k > 0 && (static_cast<unsigned char>(s[k]) & 0xC0) == 0x80) --k;
    return k;
}

}  // namespace

std::string truncate_label(std::string_view text, size_t max_bytes) {
    if (text.size() <= max_bytes) return std::string(text);
    return std::string(text.substr(0, utf8_floor(text, max_bytes))) + "…";
}

int indent_width(std::string_view line) {
    int w = 0;
    for (char c : line) {
        if (c == ' ') {
            w += 1;
        } else if (c == '\t') {
            w += 4;
        } else {
            break;
        }
    }
    return w;
}

bool is_blank(std::string_view line) {
    for (char c : line) {
        if (c != ' ' && c != '\t' && c != '\r' && c != '\n') return false;
    }
    return true;
}

PostprocessResult postprocess_completion(std::string_view completion, std::string_view prefix,
                                         std::string_view suffix,
                                         const PostprocessOptions& options) {
    PostprocessResult result;
    std::vector<std::string> lines = split_lines(normalise_eol(completion));

    size_t nl = prefix.find_last_of("\r\n");
    std::string_view prefix_line = nl == std::string_view::npos ? prefix : prefix.substr(nl + 1);

    // 2. End of block.
    if (size_t keep = block_end(lines, prefix_line); keep < lines.size()) {
        lines.resize(keep);
        result.cut_by = "block_end";
    }

    // 3. Repeat of the next line of the suffix.
    if (std::string_view next = next_suffix_line(suffix); !next.empty()) {
        for (size_t i = 1; i < lines.size(); ++i) {
            if (rtrim(lines[i]) == next) {
                lines.resize(i);
                result.cut_by = "repeat_next_line";
                break;
            }
        }
    }

    // 4. Caps.
    if (options.max_lines > 0 && lines.size() > static_cast<size_t>(options.max_lines)) {
        lines.resize(static_cast<size_t>(options.max_lines));
        result.cut_by = "max_lines";
    }

    // 5. Trailing whitespace.
    for (auto& line : lines) line.resize(rtrim(line).size());
    while (lines.size() > 1 && lines.back().empty()) lines.pop_back();
    std::string text = join_lines(lines);

    if (options.max_bytes > 0 && text.size() > options.max_bytes) {
        text.resize(utf8_floor(text, options.max_bytes));
        text.resize(rtrim(text).size());
        result.cut_by = "max_bytes";
    }

    // 6. Overlap with the rest of the cursor's line.
    size_t eol = suffix.find_first_of("\r\n");
    std::string_view rest = rtrim(suffix.substr(0, eol));
    for (size_t k = std::min(rest.size(), text.size()); k > 0; --k) {
        if (std::string_view(text).substr(text.size() - k) == rest.substr(0, k)) {
            text.resize(text.size() - k);
            result.cut_by = "suffix_overlap";
            break;
        }
    }

    if (is_blank(text)) text.clear();
    result.text = std::move(text);
    return result;
}

bool postprocess_would_cut(std::string_view completion, std::string_view prefix,
                          std::string_view suffix, const PostprocessOptions& options,
                          std::string& rule) {
    // A trailing '\r' is a line break whether or not a '\n' follows, so normalising first
    // leaves a text that any continuation only extends.
    const std::vector<std::string> lines = split_lines(normalise_eol(completion));
    const size_t k = lines.size() - 1;  // complete lines; lines[k] may still grow
    size_t nl = prefix.find_last_of("\r\n");
    std::string_view prefix_line = nl == std::string_view::npos ? prefix : prefix.substr(nl + 1);

    // The kept line count is the smallest of what each rule keeps (rule 3 searches the lines
    // rule 2 kept, rule 4 caps the rest), and of the line count, which only grows.
    struct Verdict {
        KeepBound bound;
        const char* rule;
    };
    std::vector<Verdict> verdicts;
    verdicts.push_back({block_end_bound(lines, prefix_line), "block_end"});
    KeepBound repeat{kNoLimit, false};
    if (std::string_view next = next_suffix_line(suffix); !next.empty()) {
        repeat = {k + 1, false};
        for (size_t i = 1; i < k; ++i) {
            if (rtrim(lines[i]) == next) {
                repeat = {i, true};
                break;
            }
        }
        // The growing line repeats the next one only when it may still become equal to it.
        if (!repeat.fixed && k >= 1 &&
            (rtrim(lines[k]) == next || next.starts_with(lines[k]))) {
            repeat = {k, false};
        }
    }
    verdicts.push_back({repeat, "repeat_next_line"});
    if (options.max_lines > 0) {
        const auto cap = static_cast<size_t>(options.max_lines);
        verdicts.push_back({{cap, k >= cap}, "max_lines"});
    }
    verdicts.push_back({{k + 1, false}, ""});

    size_t fixed = kNoLimit;
    size_t open = kNoLimit;  // the least any undecided rule may still keep
    const char* fixed_rule = "";
    for (const Verdict& v : verdicts) {
        if (v.bound.fixed && v.bound.keep < fixed) {
            fixed = v.bound.keep;
            fixed_rule = v.rule;
        } else if (!v.bound.fixed) {
            open = std::min(open, v.bound.keep);
        }
    }
    // Decided, and every kept line complete.
    if (fixed <= open && fixed <= k) {
        rule = fixed_rule;
        return true;
    }

    // Rule 4's byte cap looks only at the first max_bytes + 1 bytes of the kept text. The
    // lines every continuation keeps start it (a growing line's trimmed text only grows),
    // up to their last non-blank one (trailing blank lines are dropped).
    if (options.max_bytes > 0) {
        size_t sure = std::min(fixed, open);
        while (sure > 0 && is_blank(lines[sure - 1])) --sure;
        size_t bytes = 0;
        for (size_t i = 0; i < sure; ++i) bytes += (i ? 1 : 0) + rtrim(lines[i]).size();
        if (bytes > options.max_bytes) {
            rule = "max_bytes";
            return true;
        }
    }
    return false;
}

std::string_view complete_lines(std::string_view completion) {
    const size_t end = completion.find_last_of("\r\n");
    if (end == std::string_view::npos) return {};
    // "\r\n" is one break.
    size_t start = end;
    if (completion[end] == '\n' && end > 0 && completion[end - 1] == '\r') --start;
    return completion.substr(0, start);
}

std::string clean_rewrite(std::string_view rewritten, std::string_view original) {
    std::string text = normalise_eol(rewritten);
    std::vector<std::string> lines = split_lines(text);
    // Drop leading/trailing blank lines, then one Markdown fence at each end.
    auto trim_blank_ends = [&] {
        while (!lines.empty() && is_blank(lines.front())) lines.erase(lines.begin());
        while (!lines.empty() && is_blank(lines.back())) lines.pop_back();
    };
    trim_blank_ends();
    if (!lines.empty() && lines.front().rfind("```", 0) == 0) {
        lines.erase(lines.begin());
        if (!lines.empty() && rtrim(lines.back()) == "```") lines.pop_back();
    }
    for (auto& line : lines) line.resize(rtrim(line).size());
    while (!lines.empty() && lines.back().empty()) lines.pop_back();
    text = join_lines(lines);
    std::string_view orig = original;
    bool want_newline = !orig.empty() && (orig.back() == '\n' || orig.back() == '\r');
    if (want_newline && !text.empty()) text.push_back('\n');
    return text;
}

}  // namespace hearth::lsp
