// Framing, message classification, typed params and the one-reply rule: the hostile-input
// layer below the server.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "framing.h"
#include "json_reader.h"
#include "json_rpc.h"
#include "protocol.h"
#include "reply.h"

using namespace hearth::lsp;

namespace {

struct Collected {
    std::vector<std::string> frames;
    std::vector<std::string> errors;
};

Collected feed_all(FrameReader& reader, std::string_view bytes, size_t chunk = 0) {
    Collected c;
    auto on_frame = [&](std::string body) { c.frames.push_back(std::move(body)); };
    auto on_error = [&](std::string_view what) { c.errors.emplace_back(what); };
    if (chunk == 0) chunk = bytes.size() ? bytes.size() : 1;
    for (size_t i = 0; i < bytes.size(); i += chunk) {
        reader.feed(bytes.substr(i, chunk), on_frame, on_error);
    }
    return c;
}

const std::string kBody = R"({"jsonrpc":"2.0","method":"x"})";

}  // namespace

TEST(LspFraming, RoundTripWholeAndByteByByte) {
    std::string bytes = frame_message(kBody) + frame_message("{}") + frame_message(kBody);
    for (size_t chunk : {size_t{0}, size_t{1}, size_t{7}}) {
        FrameReader reader;
        Collected c = feed_all(reader, bytes, chunk);
        ASSERT_EQ(c.frames.size(), 3u) << "chunk " << chunk;
        EXPECT_EQ(c.frames[0], kBody);
        EXPECT_EQ(c.frames[1], "{}");
        EXPECT_TRUE(c.errors.empty());
        EXPECT_FALSE(reader.mid_message());
    }
}

TEST(LspFraming, HeaderNamesAreCaseInsensitiveAndOtherHeadersIgnored) {
    std::string bytes = "content-length: " + std::to_string(kBody.size()) +
                        "\r\nContent-Type: application/vscode-jsonrpc; charset=utf-8\r\n\r\n" +
                        kBody;
    FrameReader reader;
    Collected c = feed_all(reader, bytes);
    ASSERT_EQ(c.frames.size(), 1u);
    EXPECT_EQ(c.frames[0], kBody);
}

TEST(LspFraming, BareNewlinesAndStrayBlankLinesAreTolerated) {
    std::string bytes = "\r\n\nContent-Length: " + std::to_string(kBody.size()) + "\n\n" + kBody;
    FrameReader reader;
    Collected c = feed_all(reader, bytes);
    ASSERT_EQ(c.frames.size(), 1u);
    EXPECT_TRUE(c.errors.empty());
}

TEST(LspFraming, MissingLengthResynchronisesOnTheNextHeader) {
    std::string bytes = "Content-Type: text\r\n\r\n{\"broken\":1}" + frame_message(kBody);
    FrameReader reader;
    Collected c = feed_all(reader, bytes);
    ASSERT_EQ(c.errors.size(), 1u);
    EXPECT_NE(c.errors[0].find("missing Content-Length"), std::string::npos);
    ASSERT_EQ(c.frames.size(), 1u);
    EXPECT_EQ(c.frames[0], kBody);
}

TEST(LspFraming, GarbageDuplicateAndNonNumericHeadersAreErrors) {
    const std::vector<std::string> bad = {
        "this is not a header\r\n\r\n",  "Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
        "Content-Length: 12abc\r\n\r\n", "Content-Length: -3\r\n\r\n",
        "Content-Length: \r\n\r\n",      "Content-Length: 99999999999999999999999999\r\n\r\n",
    };
    for (const auto& prefix : bad) {
        FrameReader reader;
        Collected c = feed_all(reader, prefix + frame_message(kBody));
        EXPECT_GE(c.errors.size(), 1u) << prefix;
        ASSERT_EQ(c.frames.size(), 1u) << prefix;
        EXPECT_EQ(c.frames[0], kBody) << prefix;
    }
}

TEST(LspFraming, OversizedBodyIsSkippedWithoutBuffering) {
    FramingLimits limits;
    limits.max_content_length = 100;
    FrameReader reader(limits);
    std::string big(1000, 'x');
    Collected c = feed_all(reader, frame_message(big) + frame_message(kBody), 13);
    ASSERT_EQ(c.errors.size(), 1u);
    EXPECT_NE(c.errors[0].find("exceeds the limit"), std::string::npos);
    ASSERT_EQ(c.frames.size(), 1u);
    EXPECT_EQ(c.frames[0], kBody);
}

TEST(LspFraming, OverlongHeaderLineAndTooManyHeaders) {
    FramingLimits limits;
    limits.max_header_line = 64;
    limits.max_headers = 4;
    {
        FrameReader reader(limits);
        Collected c = feed_all(
            reader, "X-Long: " + std::string(10000, 'a') + "\r\n\r\n" + frame_message(kBody));
        EXPECT_EQ(c.errors.size(), 1u);
        ASSERT_EQ(c.frames.size(), 1u);
    }
    {
        FrameReader reader(limits);
        std::string many;
        for (int i = 0; i < 10; ++i) many += "X-H: 1\r\n";
        Collected c = feed_all(reader, many + "\r\n" + frame_message(kBody));
        EXPECT_EQ(c.errors.size(), 1u);
        ASSERT_EQ(c.frames.size(), 1u);
    }
}

TEST(LspFraming, PartialInputIsReportedAsMidMessage) {
    FrameReader reader;
    std::string bytes = frame_message(kBody);
    Collected c = feed_all(reader, std::string_view(bytes).substr(0, bytes.size() - 3));
    EXPECT_TRUE(c.frames.empty());
    EXPECT_TRUE(reader.mid_message());
}

TEST(LspMessages, Classification) {
    EXPECT_TRUE(
        std::holds_alternative<Request>(parse_message(R"({"jsonrpc":"2.0","id":1,"method":"m"})")));
    EXPECT_TRUE(std::holds_alternative<Request>(
        parse_message(R"({"jsonrpc":"2.0","id":"a","method":"m","params":[]})")));
    EXPECT_TRUE(
        std::holds_alternative<Notification>(parse_message(R"({"jsonrpc":"2.0","method":"m"})")));
    EXPECT_TRUE(std::holds_alternative<Response>(
        parse_message(R"({"jsonrpc":"2.0","id":1,"result":null})")));
    auto resp = std::get<Response>(
        parse_message(R"({"jsonrpc":"2.0","id":1,"error":{"code":1,"message":"x"}})"));
    EXPECT_TRUE(resp.is_error);
}

TEST(LspMessages, InvalidMessagesCarryTheRightCodeAndId) {
    struct Case {
        std::string body;
        ErrorCode code;
        json id;
    };
    const std::vector<Case> cases = {
        {"{not json", ErrorCode::ParseError, nullptr},
        {"", ErrorCode::ParseError, nullptr},
        {"[]", ErrorCode::InvalidRequest, nullptr},
        {R"([{"jsonrpc":"2.0","id":1,"method":"m"}])", ErrorCode::InvalidRequest, nullptr},
        {"42", ErrorCode::InvalidRequest, nullptr},
        {R"({"id":3,"method":"m"})", ErrorCode::InvalidRequest, 3},
        {R"({"jsonrpc":"1.0","id":3,"method":"m"})", ErrorCode::InvalidRequest, 3},
        {R"({"jsonrpc":"2.0","id":1.5,"method":"m"})", ErrorCode::InvalidRequest, nullptr},
        {R"({"jsonrpc":"2.0","id":{},"method":"m"})", ErrorCode::InvalidRequest, nullptr},
        {R"({"jsonrpc":"2.0","id":4,"method":7})", ErrorCode::InvalidRequest, 4},
        {R"({"jsonrpc":"2.0","id":"x","method":"m","params":"str"})", ErrorCode::InvalidRequest,
         "x"},
        {R"({"jsonrpc":"2.0","id":5})", ErrorCode::InvalidRequest, 5},
        {std::string(1000, '[') + std::string(1000, ']'), ErrorCode::ParseError, nullptr},
    };
    for (const auto& c : cases) {
        Message m = parse_message(c.body);
        ASSERT_TRUE(std::holds_alternative<InvalidMessage>(m)) << c.body;
        const auto& inv = std::get<InvalidMessage>(m);
        EXPECT_EQ(inv.error.code, c.code) << c.body;
        EXPECT_EQ(inv.id, c.id) << c.body;
    }
}

TEST(LspMessages, DepthCheckSkipsStrings) {
    EXPECT_FALSE(exceeds_depth(R"({"a":"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\"["})", 3));
    EXPECT_TRUE(exceeds_depth("[[[[", 3));
    EXPECT_FALSE(exceeds_depth("[[[]]]", 3));
}

TEST(LspMessages, DumpNeverThrowsOnInvalidUtf8) {
    json j = std::string("ok\xff\xfe");
    std::string out;
    EXPECT_NO_THROW(out = dump_json(j));
    EXPECT_NE(out.find("ok"), std::string::npos);
}

TEST(LspJsonReader, ReportsThePathOfTheFirstBadField) {
    json params = {
        {"textDocument", {{"uri", "file:///a"}}},
        {"contentChanges", json::array({{{"text", "x"}},
                                        {{"text", "y"},
                                         {"range",
                                          {{"start", {{"line", 0}, {"character", 0}}},
                                           {"end", {{"line", -1}, {"character", 0}}}}}}})}};
    params["textDocument"]["version"] = 2;
    DidChangeTextDocumentParams p;
    JsonReader r("params");
    EXPECT_FALSE(read(params, p, r));
    EXPECT_EQ(r.error(),
              "params.contentChanges[1].range.end.line: expected a non-negative integer");

    JsonReader r2("params");
    json missing = {{"textDocument", {{"uri", "file:///a"}}}};
    TextDocumentPositionParams tp;
    EXPECT_FALSE(read(missing, tp, r2));
    EXPECT_EQ(r2.error(), "params.position: missing required field");
}

TEST(LspJsonReader, OptionalFieldsAndNull) {
    json params = {{"textDocument", {{"uri", "u"}}}, {"text", nullptr}};
    DidSaveTextDocumentParams p;
    JsonReader r;
    EXPECT_TRUE(read(params, p, r)) << r.error();
    EXPECT_FALSE(p.text.has_value());
    json wrong = {{"textDocument", {{"uri", "u"}}}, {"text", 5}};
    JsonReader r2;
    EXPECT_FALSE(read(wrong, p, r2));
    EXPECT_EQ(r2.error(), "params.text: expected a string");
}

TEST(LspJsonReader, IntegerRanges) {
    Position pos;
    JsonReader r;
    EXPECT_FALSE(read(json{{"line", 5000000000LL}, {"character", 0}}, pos, r));
    EXPECT_NE(r.error().find("out of range"), std::string::npos);
    JsonReader r2;
    EXPECT_FALSE(read(json{{"line", 1.5}, {"character", 0}}, pos, r2));
    JsonReader r3;
    EXPECT_TRUE(read(json{{"line", 4294967295ULL}, {"character", 0}}, pos, r3));
    EXPECT_EQ(pos.line, 4294967295u);
}

TEST(LspNegotiate, PositionEncodingAndFlags) {
    EXPECT_EQ(negotiate(json::object()).encoding, PositionEncoding::Utf16);
    EXPECT_EQ(negotiate(json{{"general", {{"positionEncodings", {"utf-16", "utf-8"}}}}}).encoding,
              PositionEncoding::Utf8);
    EXPECT_EQ(negotiate(json{{"general", {{"positionEncodings", {"utf-32"}}}}}).encoding,
              PositionEncoding::Utf16);
    // Malformed capabilities are absent, not fatal.
    Capabilities c = negotiate(json{{"general", 5}, {"window", {{"workDoneProgress", "yes"}}}});
    EXPECT_EQ(c.encoding, PositionEncoding::Utf16);
    EXPECT_FALSE(c.work_done_progress);
    Capabilities full = negotiate(json::parse(R"({
        "window": {"workDoneProgress": true},
        "workspace": {"applyEdit": true, "workspaceEdit": {"documentChanges": true}},
        "textDocument": {"inlineCompletion": {"dynamicRegistration": true},
                         "codeAction": {"dataSupport": true, "resolveSupport": {"properties": ["edit"]},
                                        "codeActionLiteralSupport": {"codeActionKind": {"valueSet": []}}}}})"));
    EXPECT_TRUE(full.work_done_progress);
    EXPECT_TRUE(full.apply_edit);
    EXPECT_TRUE(full.document_changes);
    EXPECT_TRUE(full.inline_completion);
    EXPECT_TRUE(full.inline_completion_dynamic);
    EXPECT_TRUE(full.code_action_resolve);
    EXPECT_TRUE(full.code_action_literals);
}

TEST(LspReplyOnce, SecondReplyIsIgnoredAndDroppedReplyAnswersInternalError) {
    std::vector<json> sent;
    int done = 0;
    {
        ReplyOnce reply(
            7, "m", [&](const json& m) { sent.push_back(m); }, [&] { ++done; });
        ReplyOnce copy = reply;
        reply.result(json{{"a", 1}});
        copy.result(json{{"a", 2}});
        copy.error(ErrorCode::InternalError, "again");
        EXPECT_TRUE(copy.replied());
    }
    ASSERT_EQ(sent.size(), 1u);
    EXPECT_EQ(sent[0]["id"], 7);
    EXPECT_EQ(sent[0]["result"]["a"], 1);
    EXPECT_EQ(done, 1);

    sent.clear();
    {
        ReplyOnce dropped("x", "textDocument/inlineCompletion",
                          [&](const json& m) { sent.push_back(m); });
        ReplyOnce copy = dropped;  // the last copy going away is what answers
    }
    ASSERT_EQ(sent.size(), 1u);
    EXPECT_EQ(sent[0]["id"], "x");
    EXPECT_EQ(sent[0]["error"]["code"], static_cast<int>(ErrorCode::InternalError));
}
