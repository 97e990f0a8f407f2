// Planning hearth's code actions. Listing is cheap (no model call): each action carries a
// RewriteData with everything codeAction/resolve or hearth.applyRewrite needs later.
//
// Actions, for a document and a requested range:
//   - "Rewrite selection…"  (refactor.rewrite): only for a non-empty selection; the
//     instruction is the `rewriteInstruction` setting (an editor can call the
//     hearth.applyRewrite command itself with an instruction the user typed);
//   - "Add documentation"   (refactor.rewrite) and "Simplify" (refactor.rewrite): the
//     selection, or for an empty range the block at the cursor: the cursor's line and the
//     lines after it indented deeper (plus a closing bracket line at the same depth);
//     nothing when the cursor's line is blank;
//   - "Fix: <message>"      (quickfix): one per diagnostic in the request context that
//     touches the range (at most kMaxFixes), rewriting the diagnostic's whole lines.
// `only` in the context filters by kind prefix, as LSP specifies ("refactor" admits
// "refactor.rewrite").
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "documents.h"
#include "protocol.h"

namespace hearth::lsp {

struct PlannedAction {
    std::string title;
    std::string kind;
    RewriteData data;
    json diagnostics;  // array (empty unless a quickfix)
};

inline constexpr size_t kMaxFixes = 8;

// `range` must already be valid for `doc` (the caller checked it).
std::vector<PlannedAction> plan_code_actions(const TextDocument& doc,
                                             const CodeActionParams& params,
                                             const std::string& rewrite_instruction,
                                             PositionEncoding encoding);

// The block at `line` (see above) as a range of whole lines; nullopt on a blank line.
std::optional<Range> block_at(const TextDocument& doc, uint32_t line, PositionEncoding encoding);

// Lines first..last, from the start of `first` to the start of the line after `last` (or
// the end of the text).
Range whole_lines(const TextDocument& doc, uint32_t first, uint32_t last,
                  PositionEncoding encoding);

bool kind_allowed(const std::string& kind, const std::optional<std::vector<std::string>>& only);

}  // namespace hearth::lsp
