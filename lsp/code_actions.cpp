#include "code_actions.h"

#include "postprocess.h"

namespace hearth::lsp {

namespace {

std::string fix_title(const std::string& message) {
    return "Fix: " + truncate_label(message.substr(0, message.find_first_of("\r\n")), 80);
}

bool touches(const Range& a, const Range& b) {
    return !(a.end < b.start) && !(b.end < a.start);
}

}  // namespace

Range whole_lines(const TextDocument& doc, uint32_t first, uint32_t last,
                  PositionEncoding encoding) {
    Range r;
    r.start = Position{first, 0};
    if (last + 1 < doc.line_count()) {
        r.end = Position{last + 1, 0};
    } else {
        r.end = doc.position_at(doc.text().size(), encoding);
    }
    return r;
}

std::optional<Range> block_at(const TextDocument& doc, uint32_t line, PositionEncoding encoding) {
    if (line >= doc.line_count() || is_blank(doc.line_text(line))) return std::nullopt;
    const int base = indent_width(doc.line_text(line));
    uint32_t last = line;
    for (uint32_t i = line + 1; i < doc.line_count(); ++i) {
        std::string_view text = doc.line_text(i);
        if (is_blank(text)) continue;
        int w = indent_width(text);
        if (w > base) {
            last = i;
            continue;
        }
        size_t first = text.find_first_not_of(" \t");
        if (w == base && first != std::string_view::npos &&
            (text[first] == '}' || text[first] == ')' || text[first] == ']')) {
            last = i;
        }
        break;
    }
    return whole_lines(doc, line, last, encoding);
}

bool kind_allowed(const std::string& kind, const std::optional<std::vector<std::string>>& only) {
    if (!only) return true;
    for (const auto& o : *only) {
        if (kind == o || (kind.size() > o.size() && kind.compare(0, o.size(), o) == 0 &&
                          kind[o.size()] == '.')) {
            return true;
        }
    }
    return false;
}

std::vector<PlannedAction> plan_code_actions(const TextDocument& doc,
                                             const CodeActionParams& params,
                                             const std::string& rewrite_instruction,
                                             PositionEncoding encoding) {
    std::vector<PlannedAction> actions;
    const Range& sel = params.range;
    const auto& only = params.context.only;
    auto make = [&](std::string title, std::string kind, Range range, std::string instruction) {
        PlannedAction a;
        a.title = std::move(title);
        a.kind = std::move(kind);
        a.data = RewriteData{doc.uri(), doc.version(), range, std::move(instruction)};
        a.diagnostics = json::array();
        return a;
    };

    const bool has_selection = sel.start != sel.end;
    std::optional<Range> target =
        has_selection ? std::optional<Range>(sel) : block_at(doc, sel.start.line, encoding);
    if (target && kind_allowed("refactor.rewrite", only)) {
        if (has_selection) {
            actions.push_back(
                make("Rewrite selection…", "refactor.rewrite", *target, rewrite_instruction));
        }
        actions.push_back(
            make("Add documentation", "refactor.rewrite", *target,
                 "Add documentation comments to this code. Keep the code itself unchanged."));
        actions.push_back(make("Simplify", "refactor.rewrite", *target,
                               "Simplify this code without changing what it does."));
    }
    if (kind_allowed("quickfix", only)) {
        size_t fixes = 0;
        for (const auto& d : params.context.diagnostics) {
            if (fixes == kMaxFixes) break;
            if (!touches(d.range, sel)) continue;
            if (d.range.start.line >= doc.line_count() || d.range.end.line >= doc.line_count() ||
                d.range.end < d.range.start) {
                continue;  // a stale diagnostic: nothing sensible to rewrite
            }
            PlannedAction a = make(fix_title(d.message), "quickfix",
                                   whole_lines(doc, d.range.start.line, d.range.end.line, encoding),
                                   "Fix this problem: " + d.message);
            a.diagnostics.push_back(d.raw);
            actions.push_back(std::move(a));
            ++fixes;
        }
    }
    return actions;
}

}  // namespace hearth::lsp
