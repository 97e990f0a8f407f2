// Drives the real `hearth lsp` binary over stdio with Microsoft's LSP client libraries
// (vscode-jsonrpc, vscode-languageserver-protocol) and checks the mechanics of a session:
// initialize -> didOpen -> inlineCompletion -> didChange -> completion -> codeAction ->
// codeAction/resolve -> shutdown -> exit. It asserts shapes, ranges, one response per
// request and the exit code, never the text a model produced (the test model has random
// weights).
//
// usage: node client.js <hearth binary> <model.gguf>
'use strict';

const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const rpc = require('vscode-jsonrpc/node');
const lsp = require('vscode-languageserver-protocol/node');

const [hearth, model] = process.argv.slice(2);
if (!hearth || !model) {
    console.error('usage: node client.js <hearth binary> <model.gguf>');
    process.exit(2);
}

const TIMEOUT_MS = 120000;
const URI = 'file:///workspace/demo.py';
// Non-ASCII before the cursor: positions are UTF-16 code units ("😀" counts 2).
const TEXT = '# caf\u00e9 \u{1F600}\ndef add(a, b):\n    return \n\nprint(add(1, 2))\n';

function fail(message) {
    console.error(`lsp_integration: FAIL: ${message}`);
    process.exit(1);
}

const timer = setTimeout(() => fail(`no result after ${TIMEOUT_MS} ms`), TIMEOUT_MS);

// The disk KV cache goes to a private temporary folder, not the user's cache.
const cacheDir = fs.mkdtempSync(path.join(os.tmpdir(), 'hearth-lsp-client-'));
process.on('exit', () => fs.rmSync(cacheDir, { recursive: true, force: true }));
const child = spawn(hearth, ['lsp', '--model', model, '--log-level', 'warn', '--cache-dir', cacheDir], {
    stdio: ['pipe', 'pipe', 'inherit'],
});
child.on('error', (err) => fail(`cannot start ${hearth}: ${err.message}`));
const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));

// A second reader on the same stdout counts every response by id, so a duplicate or an
// unsolicited response is seen even though the connection would drop it.
const responses = new Map();
const tap = new rpc.StreamMessageReader(child.stdout);
tap.listen((msg) => {
    if (msg.id !== undefined && msg.method === undefined) {
        responses.set(msg.id, (responses.get(msg.id) || 0) + 1);
    }
});

const loggerErrors = [];
const logger = {
    error: (m) => loggerErrors.push(m),
    warn: (m) => loggerErrors.push(m),
    info: () => {},
    log: () => {},
};
const connection = lsp.createProtocolConnection(
    new rpc.StreamMessageReader(child.stdout), new rpc.StreamMessageWriter(child.stdin), logger);

const serverRequests = [];
connection.onRequest('window/workDoneProgress/create', (params) => {
    serverRequests.push('window/workDoneProgress/create');
    assert.ok(typeof params.token === 'string' || typeof params.token === 'number');
    return null;
});
connection.onRequest('client/registerCapability', () => {
    serverRequests.push('client/registerCapability');
    return null;
});
connection.onRequest('workspace/applyEdit', () => ({ applied: true }));
const statuses = [];
let statusWaiter = null;
connection.onNotification('hearth/status', (params) => {
    statuses.push(params);
    if (statusWaiter) statusWaiter();
});
const progress = [];
connection.onNotification('$/progress', (params) => progress.push(params.value.kind));
connection.onNotification('window/logMessage', () => {});
connection.onNotification('window/showMessage', (params) => console.error(`server: ${params.message}`));
connection.listen();

let sent = 0;
async function request(method, params) {
    sent += 1;
    return connection.sendRequest(method, params);
}

function waitForStatus(predicate, what) {
    return new Promise((resolve, reject) => {
        const giveUp = setTimeout(() => reject(new Error(`no hearth/status for ${what}`)), TIMEOUT_MS / 2);
        const check = () => {
            const found = statuses.find(predicate);
            if (found) {
                statusWaiter = null;
                clearTimeout(giveUp);
                resolve(found);
            }
        };
        statusWaiter = check;
        check();
    });
}

function assertPosition(p, what) {
    assert.ok(Number.isInteger(p.line) && p.line >= 0, `${what}.line`);
    assert.ok(Number.isInteger(p.character) && p.character >= 0, `${what}.character`);
}

function assertRange(r, what) {
    assertPosition(r.start, `${what}.start`);
    assertPosition(r.end, `${what}.end`);
}

async function main() {
    // initialize
    const init = await request('initialize', {
        processId: process.pid,
        clientInfo: { name: 'hearth-lsp-integration', version: '1' },
        rootUri: 'file:///workspace',
        capabilities: {
            general: { positionEncodings: ['utf-16'] },
            window: { workDoneProgress: true },
            workspace: { applyEdit: true, workspaceEdit: { documentChanges: true } },
            textDocument: {
                synchronization: { didSave: true },
                inlineCompletion: {},
                completion: { completionItem: { snippetSupport: false } },
                codeAction: {
                    dataSupport: true,
                    resolveSupport: { properties: ['edit'] },
                    codeActionLiteralSupport: {
                        codeActionKind: { valueSet: ['quickfix', 'refactor', 'refactor.rewrite'] },
                    },
                },
            },
        },
        initializationOptions: { hearth: { maxTokens: 16, maxLines: 4, debounceMs: 0, rewriteMaxTokens: 16 } },
    });
    assert.equal(init.serverInfo.name, 'hearth');
    assert.equal(typeof init.serverInfo.version, 'string');
    assert.equal(init.capabilities.positionEncoding, 'utf-16');
    assert.equal(init.capabilities.textDocumentSync.change, lsp.TextDocumentSyncKind.Incremental);
    assert.equal(init.capabilities.inlineCompletionProvider, true);
    assert.equal(init.capabilities.codeActionProvider.resolveProvider, true);
    assert.ok(init.capabilities.executeCommandProvider.commands.includes('hearth.applyRewrite'));
    connection.sendNotification('initialized', {});

    const loaded = await waitForStatus(
        (s) => s.event === 'model_loaded' || s.event === 'model_error', 'the model load');
    assert.equal(loaded.event, 'model_loaded', `model failed to load: ${loaded.message}`);

    // didOpen + inlineCompletion at the end of "    return " (line 2, character 11).
    connection.sendNotification('textDocument/didOpen', {
        textDocument: { uri: URI, languageId: 'python', version: 1, text: TEXT },
    });
    const cursor = { line: 2, character: 11 };
    const inline = await request('textDocument/inlineCompletion', {
        textDocument: { uri: URI },
        position: cursor,
        context: { triggerKind: 1 },
    });
    assert.ok(Array.isArray(inline.items), 'inline completion items');
    for (const item of inline.items) {
        assert.equal(typeof item.insertText, 'string');
        assert.ok(item.insertText.length > 0);
        assertRange(item.range, 'inline item range');
        assert.deepEqual(item.range, { start: cursor, end: cursor });
    }
    const status = await waitForStatus((s) => s.event === 'completion', 'a completion');
    for (const key of ['backend', 'device', 'prompt_tokens', 'reused_tokens', 'restored_tokens',
        'prefilled_tokens', 'generated_tokens', 'ms_total', 'tokens_per_second']) {
        assert.ok(key in status, `hearth/status.${key}`);
    }
    assert.ok(status.prompt_tokens > 0);

    // didChange (incremental, after the emoji on line 0: UTF-16 positions) + completion.
    connection.sendNotification('textDocument/didChange', {
        textDocument: { uri: URI, version: 2 },
        contentChanges: [
            { range: { start: { line: 0, character: 9 }, end: { line: 0, character: 9 } }, text: '!' },
            { range: { start: { line: 2, character: 11 }, end: { line: 2, character: 11 } }, text: 'a' },
        ],
    });
    const completion = await request('textDocument/completion', {
        textDocument: { uri: URI },
        position: { line: 2, character: 12 },
    });
    assert.equal(typeof completion.isIncomplete, 'boolean');
    assert.ok(Array.isArray(completion.items));
    for (const item of completion.items) {
        assert.equal(typeof item.label, 'string');
        assert.equal(item.insertTextFormat, lsp.InsertTextFormat.PlainText);
        assertRange(item.textEdit.range, 'completion textEdit.range');
        assert.equal(item.textEdit.range.start.line, 2);
        assert.deepEqual(item.textEdit.range.end, { line: 2, character: 12 });
        assert.ok(item.textEdit.newText.startsWith('a'), 'newText starts with the word typed');
    }

    // codeAction (listed without model calls) + codeAction/resolve (computes the edit).
    const selection = { start: { line: 1, character: 0 }, end: { line: 2, character: 12 } };
    const actions = await request('textDocument/codeAction', {
        textDocument: { uri: URI },
        range: selection,
        context: { diagnostics: [{ range: selection, message: 'example diagnostic', severity: 2 }] },
    });
    assert.ok(Array.isArray(actions) && actions.length >= 3, 'code actions listed');
    const titles = actions.map((a) => a.title);
    assert.ok(titles.includes('Simplify'), `titles: ${titles}`);
    assert.ok(titles.includes('Fix: example diagnostic'), `titles: ${titles}`);
    for (const a of actions) {
        assert.equal(a.edit, undefined, 'no edit before resolve');
        assert.ok(a.data && a.data.uri === URI, 'action data');
    }
    const resolved = await request('codeAction/resolve', actions[0]);
    assert.equal(resolved.title, actions[0].title);
    const changes = resolved.edit.documentChanges;
    assert.ok(Array.isArray(changes) && changes.length === 1, 'one document change');
    assert.equal(changes[0].textDocument.uri, URI);
    assert.equal(changes[0].textDocument.version, 2);
    for (const e of changes[0].edits) {
        assertRange(e.range, 'edit range');
        assert.equal(typeof e.newText, 'string');
    }

    const hearthStatus = await request('workspace/executeCommand', { command: 'hearth.status' });
    assert.equal(hearthStatus.state, 'ready');

    // shutdown + exit.
    const down = await request('shutdown', undefined);
    assert.equal(down, null);
    connection.sendNotification('exit');
    const { code, signal } = await exited;
    assert.equal(signal, null, `server killed by ${signal}`);
    assert.equal(code, 0, 'exit code after shutdown');

    // Exactly one response per request, none unsolicited.
    assert.equal(responses.size, sent, `responses for ${responses.size} ids, ${sent} requests sent`);
    for (const [id, n] of responses) assert.equal(n, 1, `request ${id} answered ${n} times`);
    assert.deepEqual(loggerErrors, [], 'connection logged errors');
    assert.ok(serverRequests.includes('window/workDoneProgress/create'), 'progress for the model load');
    assert.ok(progress.includes('begin') && progress.includes('end'), `progress: ${progress}`);
    console.log(`lsp_integration: OK (${sent} requests, ${inline.items.length} inline item(s), ` +
        `${completion.items.length} completion item(s), ${actions.length} code actions)`);
}

main().then(() => {
    clearTimeout(timer);
    connection.dispose();
}, (err) => {
    child.kill('SIGKILL');
    fail(err && err.stack ? err.stack : String(err));
});
