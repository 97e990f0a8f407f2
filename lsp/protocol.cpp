#include "protocol.h"

#include <algorithm>

namespace hearth::lsp {

const char* to_string(PositionEncoding encoding) {
    switch (encoding) {
        case PositionEncoding::Utf8:
            return "utf-8";
        case PositionEncoding::Utf16:
            return "utf-16";
        case PositionEncoding::Utf32:
            return "utf-32";
    }
    return "utf-16";
}

namespace {

// Lenient lookups for capabilities: a path of object keys; anything malformed is absent.
const json* lookup(const json& j, std::initializer_list<const char*> keys) {
    const json* cur = &j;
    for (const char* key : keys) {
        if (!cur->is_object()) return nullptr;
        auto it = cur->find(key);
        if (it == cur->end()) return nullptr;
        cur = &*it;
    }
    return cur;
}

bool flag(const json& j, std::initializer_list<const char*> keys) {
    const json* v = lookup(j, keys);
    return v && v->is_boolean() && v->get<bool>();
}

bool string_array_contains(const json* arr, std::string_view value) {
    if (!arr || !arr->is_array()) return false;
    return std::any_of(arr->begin(), arr->end(), [&](const json& e) {
        return e.is_string() && e.get<std::string>() == value;
    });
}

}  // namespace

Capabilities negotiate(const json& c) {
    Capabilities caps;
    if (string_array_contains(lookup(c, {"general", "positionEncodings"}), "utf-8")) {
        caps.encoding = PositionEncoding::Utf8;
    }
    caps.work_done_progress = flag(c, {"window", "workDoneProgress"});
    const json* inline_caps = lookup(c, {"textDocument", "inlineCompletion"});
    caps.inline_completion = inline_caps && inline_caps->is_object();
    caps.inline_completion_dynamic =
        flag(c, {"textDocument", "inlineCompletion", "dynamicRegistration"});
    const json* ca = lookup(c, {"textDocument", "codeAction"});
    if (ca && ca->is_object()) {
        caps.code_action_literals = lookup(*ca, {"codeActionLiteralSupport"}) != nullptr &&
                                    lookup(*ca, {"codeActionLiteralSupport"})->is_object();
        caps.code_action_resolve =
            flag(*ca, {"dataSupport"}) &&
            string_array_contains(lookup(*ca, {"resolveSupport", "properties"}), "edit");
    }
    caps.apply_edit = flag(c, {"workspace", "applyEdit"});
    caps.document_changes = flag(c, {"workspace", "workspaceEdit", "documentChanges"});
    caps.configuration_dynamic =
        flag(c, {"workspace", "didChangeConfiguration", "dynamicRegistration"});
    caps.watched_files_dynamic =
        flag(c, {"workspace", "didChangeWatchedFiles", "dynamicRegistration"});
    return caps;
}

bool read(const json& j, Position& out, JsonReader& r) {
    ObjectReader o(j, r);
    return o && o.required("line", out.line) && o.required("character", out.character);
}

bool read(const json& j, Range& out, JsonReader& r) {
    ObjectReader o(j, r);
    return o && o.required("start", out.start) && o.required("end", out.end);
}

bool read(const json& j, TextDocumentIdentifier& out, JsonReader& r) {
    ObjectReader o(j, r);
    return o && o.required("uri", out.uri);
}

bool read(const json& j, VersionedTextDocumentIdentifier& out, JsonReader& r) {
    ObjectReader o(j, r);
    return o && o.required("uri", out.uri) && o.required("version", out.version);
}

bool read(const json& j, TextDocumentItem& out, JsonReader& r) {
    ObjectReader o(j, r);
    return o && o.required("uri", out.uri) && o.required("languageId", out.language_id) &&
           o.required("version", out.version) && o.required("text", out.text);
}

bool read(const json& j, TextDocumentContentChangeEvent& out, JsonReader& r) {
    ObjectReader o(j, r);
    return o && o.optional("range", out.range) && o.required("text", out.text);
}

bool read(const json& j, DidOpenTextDocumentParams& out, JsonReader& r) {
    ObjectReader o(j, r);
    return o && o.required("textDocument", out.text_document);
}

bool read(const json& j, DidChangeTextDocumentParams& out, JsonReader& r) {
    ObjectReader o(j, r);
    return o && o.required("textDocument", out.text_document) &&
           o.required("contentChanges", out.content_changes);
}

bool read(const json& j, DidCloseTextDocumentParams& out, JsonReader& r) {
    ObjectReader o(j, r);
    return o && o.required("textDocument", out.text_document);
}

bool read(const json& j, DidSaveTextDocumentParams& out, JsonReader& r) {
    ObjectReader o(j, r);
    return o && o.required("textDocument", out.text_document) && o.optional("text", out.text);
}

bool read(const json& j, FileEvent& out, JsonReader& r) {
    ObjectReader o(j, r);
    return o && o.required("uri", out.uri) && o.required("type", out.type);
}

bool read(const json& j, DidChangeWatchedFilesParams& out, JsonReader& r) {
    ObjectReader o(j, r);
    return o && o.required("changes", out.changes);
}

bool read(const json& j, DidChangeWorkspaceFoldersParams& out, JsonReader& r) {
    ObjectReader o(j, r);
    if (!o) return false;
    const json* event = o.get("event");
    if (!event || !event->is_object()) {
        r.push_key("event");
        return r.fail("expected an object");
    }
    for (auto [key, list] : {std::pair{"added", &out.added}, std::pair{"removed", &out.removed}}) {
        auto it = event->find(key);
        if (it == event->end() || !it->is_array()) continue;
        for (const json& f : *it) {
            if (f.is_object() && f.contains("uri") && f["uri"].is_string()) {
                list->push_back(f["uri"].get<std::string>());
            }
        }
    }
    return true;
}

bool read(const json& j, TextDocumentPositionParams& out, JsonReader& r) {
    ObjectReader o(j, r);
    return o && o.required("textDocument", out.text_document) &&
           o.required("position", out.position);
}

bool read(const json& j, SelectedCompletionInfo& out, JsonReader& r) {
    ObjectReader o(j, r);
    return o && o.required("range", out.range) && o.required("text", out.text);
}

bool read(const json& j, InlineCompletionContext& out, JsonReader& r) {
    ObjectReader o(j, r);
    int32_t kind = 0;
    if (!o || !o.required("triggerKind", kind)) return false;
    if (kind != 1 && kind != 2) {
        r.push_key("triggerKind");
        r.fail("expected 1 (Invoked) or 2 (Automatic)");
        r.pop();
        return false;
    }
    out.trigger_kind = static_cast<InlineTriggerKind>(kind);
    return o.optional("selectedCompletionInfo", out.selected_completion_info);
}

bool read(const json& j, InlineCompletionParams& out, JsonReader& r) {
    ObjectReader o(j, r);
    return o && o.required("textDocument", out.text_document) &&
           o.required("position", out.position) && o.required("context", out.context);
}

bool read(const json& j, CompletionParams& out, JsonReader& r) {
    ObjectReader o(j, r);
    if (!o || !o.required("textDocument", out.text_document) ||
        !o.required("position", out.position)) {
        return false;
    }
    if (const json* ctx = o.get("context"); ctx && !ctx->is_null()) {
        r.push_key("context");
        ObjectReader c(*ctx, r);
        bool ok = c && c.required("triggerKind", out.trigger_kind);
        r.pop();
        return ok;
    }
    return true;
}

bool read(const json& j, Diagnostic& out, JsonReader& r) {
    ObjectReader o(j, r);
    if (!o || !o.required("range", out.range) || !o.required("message", out.message)) return false;
    out.raw = j;
    return true;
}

bool read(const json& j, CodeActionContext& out, JsonReader& r) {
    ObjectReader o(j, r);
    return o && o.required("diagnostics", out.diagnostics) && o.optional("only", out.only);
}

bool read(const json& j, CodeActionParams& out, JsonReader& r) {
    ObjectReader o(j, r);
    return o && o.required("textDocument", out.text_document) && o.required("range", out.range) &&
           o.required("context", out.context);
}

bool read(const json& j, RewriteData& out, JsonReader& r) {
    ObjectReader o(j, r);
    return o && o.required("uri", out.uri) && o.optional("version", out.version) &&
           o.required("range", out.range) && o.optional("instruction", out.instruction);
}

bool read(const json& j, CodeActionResolveParams& out, JsonReader& r) {
    ObjectReader o(j, r);
    if (!o || !o.required("title", out.title) || !o.optional("kind", out.kind) ||
        !o.required("data", out.data)) {
        return false;
    }
    out.raw = j;
    return true;
}

bool read(const json& j, ExecuteCommandParams& out, JsonReader& r) {
    ObjectReader o(j, r);
    return o && o.required("command", out.command) && o.optional("arguments", out.arguments);
}

bool read(const json& j, CancelParams& out, JsonReader& r) {
    ObjectReader o(j, r);
    if (!o || !o.required("id", out.id)) return false;
    if (!out.id.is_number_integer() && !out.id.is_string()) {
        r.push_key("id");
        r.fail("expected an integer or a string");
        r.pop();
        return false;
    }
    return true;
}

bool read(const json& j, SetTraceParams& out, JsonReader& r) {
    ObjectReader o(j, r);
    if (!o || !o.required("value", out.value)) return false;
    if (out.value != "off" && out.value != "messages" && out.value != "verbose") {
        r.push_key("value");
        r.fail("expected \"off\", \"messages\" or \"verbose\"");
        r.pop();
        return false;
    }
    return true;
}

bool read(const json& j, DidChangeConfigurationParams& out, JsonReader& r) {
    ObjectReader o(j, r);
    return o && o.optional("settings", out.settings);
}

bool read(const json& j, ClientInfo& out, JsonReader& r) {
    ObjectReader o(j, r);
    return o && o.required("name", out.name) && o.optional("version", out.version);
}

bool read(const json& j, InitializeParams& out, JsonReader& r) {
    ObjectReader o(j, r);
    if (!o || !o.optional("processId", out.process_id) ||
        !o.optional("clientInfo", out.client_info) ||
        !o.required("capabilities", out.capabilities) ||
        !o.optional("initializationOptions", out.initialization_options) ||
        !o.optional("rootUri", out.root_uri) || !o.optional("rootPath", out.root_path) ||
        !o.optional("trace", out.trace)) {
        return false;
    }
    if (const json* folders = o.get("workspaceFolders"); folders && folders->is_array()) {
        for (const json& f : *folders) {
            if (f.is_object() && f.contains("uri") && f["uri"].is_string()) {
                out.workspace_folders.push_back(f["uri"].get<std::string>());
            }
        }
    }
    return true;
}

bool read(const json&, EmptyParams&, JsonReader&) {
    return true;
}

void to_json(json& j, const Position& p) {
    j = json{{"line", p.line}, {"character", p.character}};
}

void to_json(json& j, const Range& r) {
    j = json{{"start", r.start}, {"end", r.end}};
}

void to_json(json& j, const InlineCompletionItem& item) {
    j = json{{"insertText", item.insert_text}, {"range", item.range}};
}

void to_json(json& j, const InlineCompletionList& list) {
    j = json{{"items", list.items}};
}

void to_json(json& j, const CompletionItem& item) {
    j = json{{"label", item.label},
             {"kind", 1},              // Text
             {"insertTextFormat", 1},  // PlainText: model output is never a snippet
             {"detail", "hearth"},
             {"textEdit", {{"range", item.range}, {"newText", item.new_text}}}};
    if (!item.filter_text.empty()) j["filterText"] = item.filter_text;
}

void to_json(json& j, const CompletionList& list) {
    j = json{{"isIncomplete", list.is_incomplete}, {"items", list.items}};
}

void to_json(json& j, const RewriteData& d) {
    j = json{{"uri", d.uri}, {"range", d.range}, {"instruction", d.instruction}};
    if (d.version) j["version"] = *d.version;
}

bool read(const json& j, InlineCompletionItem& out, JsonReader& r) {
    ObjectReader o(j, r);
    return o && o.required("insertText", out.insert_text) && o.optional("range", out.range);
}

bool read(const json& j, InlineCompletionList& out, JsonReader& r) {
    if (j.is_array()) return read(j, out.items, r);
    ObjectReader o(j, r);
    return o && o.required("items", out.items);
}

namespace {

struct TextEdit {
    Range range;
    std::string new_text;
};

bool read(const json& j, TextEdit& out, JsonReader& r) {
    ObjectReader o(j, r);
    return o && o.required("range", out.range) && o.required("newText", out.new_text);
}

}  // namespace

bool read(const json& j, CompletionItem& out, JsonReader& r) {
    ObjectReader o(j, r);
    TextEdit edit;
    if (!o || !o.required("label", out.label) || !o.optional("filterText", out.filter_text) ||
        !o.required("textEdit", edit)) {
        return false;
    }
    out.range = edit.range;
    out.new_text = std::move(edit.new_text);
    return true;
}

bool read(const json& j, CompletionList& out, JsonReader& r) {
    if (j.is_array()) {
        out.is_incomplete = false;
        return read(j, out.items, r);
    }
    ObjectReader o(j, r);
    return o && o.optional("isIncomplete", out.is_incomplete) && o.required("items", out.items);
}

}  // namespace hearth::lsp
