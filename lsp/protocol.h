// LSP protocol types used by hearth, with readers (untrusted JSON -> struct) and writers.
//
// Field names follow the LSP 3.18 specification in snake_case. Readers are strict about
// the types of fields hearth uses (a wrong type is InvalidParams naming the field) and
// ignore fields it does not use. Client capabilities are the exception: they are read
// leniently by negotiate(), because refusing `initialize` over a malformed flag hearth
// may never look at would leave the user with no server at all.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "json_reader.h"

namespace hearth::lsp {

// How Position.character counts: UTF-8 bytes, UTF-16 code units (the LSP default) or
// code points. Chosen once at initialize.
enum class PositionEncoding { Utf8, Utf16, Utf32 };
const char* to_string(PositionEncoding encoding);

struct Position {
    uint32_t line = 0;
    uint32_t character = 0;
    friend bool operator==(const Position&, const Position&) = default;
    friend auto operator<=>(const Position&, const Position&) = default;
};

struct Range {
    Position start;
    Position end;
    friend bool operator==(const Range&, const Range&) = default;
};

struct TextDocumentIdentifier {
    std::string uri;
};

struct VersionedTextDocumentIdentifier {
    std::string uri;
    int32_t version = 0;
};

struct TextDocumentItem {
    std::string uri;
    std::string language_id;
    int32_t version = 0;
    std::string text;
};

// A full replacement when `range` is absent, else an incremental edit.
struct TextDocumentContentChangeEvent {
    std::optional<Range> range;
    std::string text;
};

struct DidOpenTextDocumentParams {
    TextDocumentItem text_document;
};

struct DidChangeTextDocumentParams {
    VersionedTextDocumentIdentifier text_document;
    std::vector<TextDocumentContentChangeEvent> content_changes;
};

struct DidCloseTextDocumentParams {
    TextDocumentIdentifier text_document;
};

struct DidSaveTextDocumentParams {
    TextDocumentIdentifier text_document;
    std::optional<std::string> text;
};

// workspace/didChangeWatchedFiles: type 1 created, 2 changed, 3 deleted.
struct FileEvent {
    std::string uri;
    int32_t type = 2;
};
struct DidChangeWatchedFilesParams {
    std::vector<FileEvent> changes;
};

// workspace/didChangeWorkspaceFolders: the URIs of the folders added and removed.
struct DidChangeWorkspaceFoldersParams {
    std::vector<std::string> added;
    std::vector<std::string> removed;
};

struct TextDocumentPositionParams {
    TextDocumentIdentifier text_document;
    Position position;
};

// The item selected in the editor's completion widget: accepting it would replace
// `range` with `text`.
struct SelectedCompletionInfo {
    Range range;
    std::string text;
};

enum class InlineTriggerKind : int32_t { Invoked = 1, Automatic = 2 };

struct InlineCompletionContext {
    InlineTriggerKind trigger_kind = InlineTriggerKind::Invoked;
    std::optional<SelectedCompletionInfo> selected_completion_info;
};

struct InlineCompletionParams {
    TextDocumentIdentifier text_document;
    Position position;
    InlineCompletionContext context;
};

struct CompletionParams {
    TextDocumentIdentifier text_document;
    Position position;
    int32_t trigger_kind = 1;  // context.triggerKind when present
};

struct Diagnostic {
    Range range;
    std::string message;
    json raw;  // the whole diagnostic, echoed back in CodeAction.diagnostics
};

struct CodeActionContext {
    std::vector<Diagnostic> diagnostics;
    std::optional<std::vector<std::string>> only;
};

struct CodeActionParams {
    TextDocumentIdentifier text_document;
    Range range;
    CodeActionContext context;
};

// What a hearth code action (and the hearth.applyRewrite command) needs to compute its
// edit later: the document, the version the range refers to, the range, the instruction.
struct RewriteData {
    std::string uri;
    std::optional<int32_t> version;
    Range range;
    std::string instruction;
};

// codeAction/resolve params: the action as the server listed it.
struct CodeActionResolveParams {
    std::string title;
    std::string kind;
    RewriteData data;
    json raw;  // the action as received, returned with `edit` added
};

struct ExecuteCommandParams {
    std::string command;
    std::vector<json> arguments;
};

struct CancelParams {
    json id;  // integer or string
};

struct SetTraceParams {
    std::string value;  // "off" | "messages" | "verbose"
};

struct DidChangeConfigurationParams {
    json settings;
};

struct ClientInfo {
    std::string name;
    std::string version;
};

struct InitializeParams {
    std::optional<int64_t> process_id;  // the editor's process; null when it has none
    std::optional<ClientInfo> client_info;
    json capabilities;  // negotiated by negotiate()
    json initialization_options;
    std::optional<std::string> root_uri;
    std::optional<std::string> root_path;
    std::vector<std::string> workspace_folders;  // URIs
    std::optional<std::string> trace;
};

struct EmptyParams {};  // for methods whose params hearth ignores (shutdown)

// What the client can do, negotiated once at initialize. Everything the server decides
// from client capabilities reads this struct.
struct Capabilities {
    PositionEncoding encoding = PositionEncoding::Utf16;
    bool work_done_progress = false;         // window.workDoneProgress
    bool inline_completion = false;          // textDocument.inlineCompletion present
    bool inline_completion_dynamic = false;  // textDocument.inlineCompletion.dynamicRegistration
    bool code_action_literals = false;       // codeAction.codeActionLiteralSupport
    bool code_action_resolve = false;        // codeAction.resolveSupport ∋ "edit", dataSupport
    bool apply_edit = false;                 // workspace.applyEdit
    bool document_changes = false;           // workspace.workspaceEdit.documentChanges
    bool configuration_dynamic = false;      // workspace.didChangeConfiguration.dynamicRegistration
    bool watched_files_dynamic = false;      // workspace.didChangeWatchedFiles.dynamicRegistration
};

// Picks UTF-8 when general.positionEncodings offers it, else UTF-16 (which every client
// must support), and reads the other flags. Malformed entries count as absent.
Capabilities negotiate(const json& client_capabilities);

// Readers (see json_reader.h).
bool read(const json& j, Position& out, JsonReader& r);
bool read(const json& j, Range& out, JsonReader& r);
bool read(const json& j, TextDocumentIdentifier& out, JsonReader& r);
bool read(const json& j, VersionedTextDocumentIdentifier& out, JsonReader& r);
bool read(const json& j, TextDocumentItem& out, JsonReader& r);
bool read(const json& j, TextDocumentContentChangeEvent& out, JsonReader& r);
bool read(const json& j, DidOpenTextDocumentParams& out, JsonReader& r);
bool read(const json& j, DidChangeTextDocumentParams& out, JsonReader& r);
bool read(const json& j, DidCloseTextDocumentParams& out, JsonReader& r);
bool read(const json& j, DidSaveTextDocumentParams& out, JsonReader& r);
bool read(const json& j, FileEvent& out, JsonReader& r);
bool read(const json& j, DidChangeWatchedFilesParams& out, JsonReader& r);
bool read(const json& j, DidChangeWorkspaceFoldersParams& out, JsonReader& r);
bool read(const json& j, TextDocumentPositionParams& out, JsonReader& r);
bool read(const json& j, SelectedCompletionInfo& out, JsonReader& r);
bool read(const json& j, InlineCompletionContext& out, JsonReader& r);
bool read(const json& j, InlineCompletionParams& out, JsonReader& r);
bool read(const json& j, CompletionParams& out, JsonReader& r);
bool read(const json& j, Diagnostic& out, JsonReader& r);
bool read(const json& j, CodeActionContext& out, JsonReader& r);
bool read(const json& j, CodeActionParams& out, JsonReader& r);
bool read(const json& j, RewriteData& out, JsonReader& r);
bool read(const json& j, CodeActionResolveParams& out, JsonReader& r);
bool read(const json& j, ExecuteCommandParams& out, JsonReader& r);
bool read(const json& j, CancelParams& out, JsonReader& r);
bool read(const json& j, SetTraceParams& out, JsonReader& r);
bool read(const json& j, DidChangeConfigurationParams& out, JsonReader& r);
bool read(const json& j, ClientInfo& out, JsonReader& r);
bool read(const json& j, InitializeParams& out, JsonReader& r);
bool read(const json& j, EmptyParams& out, JsonReader& r);

// Results.
struct InlineCompletionItem {
    std::string insert_text;
    Range range;  // single line: from the cursor (or the selected item's start) to the cursor
};

struct InlineCompletionList {
    std::vector<InlineCompletionItem> items;
};

// One plain-text CompletionItem carrying the model's text in a textEdit.
struct CompletionItem {
    std::string label;        // first line of new_text
    std::string filter_text;  // the word before the cursor ("" = omitted)
    Range range;              // from the start of that word to the cursor
    std::string new_text;
};

struct CompletionList {
    bool is_incomplete = true;  // typing more asks again instead of filtering a stale item
    std::vector<CompletionItem> items;
};

// Writers.
void to_json(json& j, const InlineCompletionItem& item);
void to_json(json& j, const InlineCompletionList& list);
void to_json(json& j, const CompletionItem& item);
void to_json(json& j, const CompletionList& list);
void to_json(json& j, const Position& p);
void to_json(json& j, const Range& r);
void to_json(json& j, const RewriteData& d);

// Readers of results, for the client side (the demo). Completion results may also come as
// a bare array of items; a completion item must carry its text in a textEdit.
bool read(const json& j, InlineCompletionItem& out, JsonReader& r);
bool read(const json& j, InlineCompletionList& out, JsonReader& r);
bool read(const json& j, CompletionItem& out, JsonReader& r);
bool read(const json& j, CompletionList& out, JsonReader& r);

}  // namespace hearth::lsp
