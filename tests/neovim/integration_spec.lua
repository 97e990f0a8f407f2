-- The plugin with the real `hearth lsp` binary on the Neovim < 0.11 path (FileType
-- autocmd + vim.lsp.start_client, classic completion): attach, model load, completion,
-- the statusline text, :HearthStatus, settings changes, a second workspace folder,
-- :HearthClearCache, :HearthReload and :checkhealth hearth.
--
-- Environment: HEARTH_BIN (the hearth binary), HEARTH_TEST_MODEL (a GGUF model; the
-- bundled tests/data/hearth-demo-py-q8_0.gguf by default), HEARTH_TEST_TMP (scratch folder).
return function(t)
  local compat = require("hearth.compat")
  local plan = compat.plan(compat.detect())
  if plan.path ~= "start_client" then
    t.skip("Neovim " .. tostring(vim.version().major) .. "." .. tostring(vim.version().minor)
      .. " uses vim.lsp.config; this path is tested by neovim_new_api")
    return
  end
  local bin = vim.env.HEARTH_BIN
  local model = vim.env.HEARTH_TEST_MODEL or (t.repo .. "/tests/data/hearth-demo-py-q8_0.gguf")
  if bin == nil or bin == "" or vim.fn.executable(bin) == 0 then
    error("HEARTH_BIN must name the hearth binary (got " .. tostring(bin) .. ")")
  end
  if vim.fn.filereadable(model) == 0 then
    error("test model missing: " .. model)
  end

  -- Two workspaces (each a folder with .git) in a scratch folder.
  local tmp = vim.env.HEARTH_TEST_TMP
  if tmp == nil or tmp == "" then
    tmp = vim.fn.tempname()
  end
  tmp = vim.fn.fnamemodify(tmp, ":p"):gsub("/$", "")
  vim.fn.delete(tmp, "rf")
  local root1, root2 = tmp .. "/proj", tmp .. "/other"
  for _, d in ipairs({ root1 .. "/.git", root2 .. "/.git", tmp .. "/cache" }) do
    vim.fn.mkdir(d, "p")
  end
  local file1, file2 = root1 .. "/main.py", root2 .. "/util.py"
  vim.fn.writefile({ "def add(a, b):", "    return ", "" }, file1)
  vim.fn.writefile({ "import os", "", "def read(path):", "    with open(path" }, file2)

  -- Messages shown to the user.
  local notes = {}
  vim.notify = function(msg, level)
    notes[#notes + 1] = { msg = msg, level = level }
  end
  local function notes_matching(part, level)
    local out = {}
    for _, n in ipairs(notes) do
      if n.msg:find(part, 1, true) and (level == nil or n.level == level) then
        out[#out + 1] = n
      end
    end
    return out
  end

  vim.cmd("filetype on")
  local hearth = require("hearth")
  local S = hearth._state
  local events = {}
  local status_handler_calls = 0

  local function count(event)
    local n = 0
    for _, e in ipairs(events) do
      if e == event then
        n = n + 1
      end
    end
    return n
  end

  local function complete(line, character)
    local params = {
      textDocument = { uri = vim.uri_from_bufnr(0) },
      position = { line = line, character = character },
      context = { triggerKind = 1 },
    }
    local res = vim.lsp.buf_request_sync(0, "textDocument/completion", params, 15000)
    t.truthy(res, "completion answered")
    local client = hearth.client()
    local r = res[client.id]
    t.truthy(r, "hearth answered")
    t.eq(r.err, nil, "completion error")
    return r.result
  end

  local function server_status()
    local got
    hearth.request_status(function(lines, result, err)
      got = { lines = lines, result = result, err = err }
    end)
    t.wait(5000, function()
      return got ~= nil
    end, "hearth.status")
    t.eq(got.err, nil, "hearth.status error")
    return got
  end

  t.test("setup() warns once that ghost text needs Neovim 0.12", function()
    hearth.setup({
      path = bin,
      model = model,
      backend = "cpu",
      cache_dir = tmp .. "/cache",
      max_tokens = 24,
      log_level = "warn",
    })
    local warned = notes_matching("needs Neovim 0.12", vim.log.levels.WARN)
    t.eq(#warned, 1, "warnings about 0.12")
    t.contains(warned[1].msg, "classic completions")
    -- A second setup() does not repeat it.
    hearth.setup({ path = bin, model = model, backend = "cpu", cache_dir = tmp .. "/cache", max_tokens = 24, log_level = "warn" })
    t.eq(#notes_matching("needs Neovim 0.12"), 1, "still one warning")
    t.eq(#notes, 1, "no other message: " .. vim.inspect(notes))
    t.eq(hearth.status(), "", "statusline before any server")
    for _, c in ipairs({ "HearthStatus", "HearthClearCache", "HearthReload" }) do
      t.eq(vim.fn.exists(":" .. c), 2, ":" .. c .. " exists")
    end
  end)

  t.test("before a server runs, the commands say so", function()
    local before = #notes
    vim.cmd("HearthStatus")
    vim.cmd("HearthReload")
    t.eq(#notes, before + 2, "one message per command")
    t.contains(notes[before + 1].msg, "hearth is not running")
    t.eq(notes[before + 1].level, vim.log.levels.WARN, "level")
    t.contains(notes[before + 2].msg, "hearth is not running")
    t.eq(hearth.status(), "", "statusline")
  end)

  t.test("a missing binary is reported once, and nothing starts", function()
    local missing = tmp .. "/no-such-hearth"
    hearth.setup({ path = missing, model = model })
    vim.cmd("edit " .. vim.fn.fnameescape(tmp .. "/scratch.py"))
    vim.cmd("edit " .. vim.fn.fnameescape(tmp .. "/scratch2.py"))
    local errs = notes_matching("not found", vim.log.levels.ERROR)
    t.eq(#errs, 1, "errors: " .. vim.inspect(notes))
    t.contains(errs[1].msg, missing)
    t.eq(#hearth.clients(), 0, "no client")
    vim.cmd("bwipeout! " .. vim.fn.fnameescape(tmp .. "/scratch.py"))
    vim.cmd("bwipeout! " .. vim.fn.fnameescape(tmp .. "/scratch2.py"))
    -- Back to the real binary for the rest.
    hearth.setup({ path = bin, model = model, backend = "cpu", cache_dir = tmp .. "/cache", max_tokens = 24, log_level = "warn" })
    t.eq(#hearth.clients(), 0, "still nothing running: no file buffer is open")
  end)

  t.test("opening a Python file starts the server and attaches it", function()
    -- Record every hearth/status notification the plugin applies.
    local status_mod = require("hearth.status")
    local apply = status_mod.apply
    status_mod.apply = function(state, params)
      if type(params) == "table" then
        events[#events + 1] = params.event
      end
      return apply(state, params)
    end
    vim.api.nvim_create_autocmd("User", {
      pattern = "HearthStatus",
      callback = function()
        status_handler_calls = status_handler_calls + 1
      end,
    })
    vim.cmd("edit " .. vim.fn.fnameescape(file1))
    t.eq(vim.bo.filetype, "python", "filetype")
    t.wait(10000, function()
      local c = hearth.client()
      return c ~= nil and c.initialized and vim.lsp.buf_is_attached(0, c.id)
    end, "the hearth client to attach")
    local c = hearth.client()
    t.eq(c.name, "hearth", "client name")
    t.eq(c.config.cmd, { bin, "lsp" }, "command")
    t.eq(c.config.root_dir, root1, "root_dir from .git")
    t.eq(c.config.init_options.hearth.model, model, "initializationOptions carry the model")
    t.eq(c.config.settings.hearth.backend, "cpu", "settings carry the backend")
    t.eq(vim.bo.omnifunc, "v:lua.vim.lsp.omnifunc", "omnifunc")
    t.truthy(c.server_capabilities.completionProvider, "the server offers classic completion")
  end)

  t.test("the model loads (hearth/status model_loaded) and the statusline says ready", function()
    t.wait(30000, function()
      return count("model_loaded") + count("model_error") > 0
    end, "hearth/status model_loaded")
    t.eq(S.status.state, "ready", "state (" .. tostring(S.status.message) .. ")")
    t.eq(count("model_loaded"), 1, "model_loaded events: " .. vim.inspect(events))
    t.eq(count("model_error"), 0, "model_error events")
    t.eq(S.status.backend, "cpu", "backend")
    t.eq(hearth.status(), "hearth: ready", "statusline")
    t.truthy(status_handler_calls > 0, "User HearthStatus fired")
  end)

  local first_prefilled
  t.test("classic completion after 'return ' gives an item", function()
    local result = complete(1, 11)
    t.eq(result.isIncomplete, true, "isIncomplete")
    t.eq(#result.items, 1, "one item")
    local item = result.items[1]
    t.truthy(item.textEdit.newText:match("%S"), "non-empty completion text: " .. vim.inspect(item))
    t.eq(item.label, item.textEdit.newText:match("^%s*([^\n]*)"), "label is the first line")
    t.eq(item.textEdit.range.start, { line = 1, character = 11 }, "edit starts at the cursor")
    t.eq(item.insertTextFormat, 1, "plain text")
    t.wait(5000, function()
      return S.status.last_call ~= nil
    end, "hearth/status completion")
    local line = hearth.status()
    local reused, restored, prefilled =
      t.match(line, "^hearth: ready | %d+%.%d tok/s | reused (%d+), restored (%d+), prefilled (%d+)$", "statusline")
    first_prefilled = tonumber(prefilled)
    t.truthy(first_prefilled > 0, "the first completion prefilled its prompt: " .. line)
    t.eq(S.status.last_call.event, "completion", "event")
    t.eq(S.status.last_call.uri, vim.uri_from_fname(file1), "uri")
    t.truthy(S.status.last_call.generated_tokens > 0, "generated tokens")
    t.truthy(S.status.last_call.tokens_per_second > 0, "tokens per second")
    t.eq(tonumber(reused) + tonumber(restored) + tonumber(prefilled), S.status.last_call.prompt_tokens,
      "reused + restored + prefilled = prompt")
  end)

  t.test("the same completion again reuses the prompt's rows in memory", function()
    complete(1, 11)
    t.wait(5000, function()
      return count("completion") >= 2
    end, "a second completion event")
    local line = hearth.status()
    local reused = tonumber(t.match(line, "reused (%d+)", "statusline"))
    t.truthy(reused > 0, "reused tokens: " .. line)
  end)

  t.test(":HearthStatus shows the server's status", function()
    local before = #notes
    vim.cmd("HearthStatus")
    t.wait(5000, function()
      return #notes > before
    end, ":HearthStatus output")
    local text = notes[#notes].msg
    t.eq(notes[#notes].level, vim.log.levels.INFO, "level")
    t.match(text, "^hearth: ready on cpu %(", "first line")
    t.contains(text, "workspace: " .. root1 .. " (1 file indexed)")
    t.contains(text, "disk cache: " .. tmp .. "/cache/")
    t.contains(text, "last completion: ")
    t.contains(text, 'model="' .. model .. '"')
    local st = S.server_status
    t.eq(st.state, "ready", "state")
    t.eq(st.backend, "cpu", "backend")
    t.eq(st.documents, 1, "documents")
    t.eq(st.settings.model, model, "settings.model (initializationOptions)")
    t.eq(st.settings.logLevel, "warn", "settings.logLevel")
    t.eq(st.settings.maxTokens, 24, "settings.maxTokens")
    t.eq(st.workspace.folders[1].root, root1, "workspace folder")
    t.truthy(st.lastStats.generated_tokens > 0, "lastStats")
  end)

  t.test("a second setup() sends the new settings (workspace/didChangeConfiguration)", function()
    hearth.setup({ path = bin, model = model, backend = "cpu", cache_dir = tmp .. "/cache", max_tokens = 7, log_level = "warn" })
    t.wait(5000, function()
      local st = server_status().result
      return st.settings.maxTokens == 7
    end, "maxTokens 7 on the server")
    t.eq(#hearth.clients(), 1, "still one client")
  end)

  t.test("a file of another project joins the same server as a second workspace folder", function()
    vim.cmd("edit " .. vim.fn.fnameescape(file2))
    local c = hearth.client()
    t.wait(5000, function()
      return vim.lsp.buf_is_attached(0, c.id)
    end, "attach to the second file")
    t.eq(#hearth.clients(), 1, "one client for both projects")
    t.wait(10000, function()
      local st = server_status().result
      return #st.workspace.folders == 2 and st.documents == 2
    end, "two workspace folders on the server")
    local roots = {}
    for _, f in ipairs(S.server_status.workspace.folders) do
      roots[#roots + 1] = f.root
    end
    table.sort(roots)
    t.eq(roots, { root2, root1 }, "roots")
    local result = complete(3, 18)
    t.truthy(result.items[1] and result.items[1].textEdit.newText:match("%S"), "completion in the second project")
  end)

  t.test(":HearthClearCache clears the disk KV cache", function()
    local before = #notes
    vim.cmd("HearthClearCache")
    t.wait(5000, function()
      return #notes > before
    end, ":HearthClearCache answer")
    t.contains(notes[#notes].msg, "hearth: disk KV cache cleared (" .. tmp .. "/cache/")
    local st = server_status().result
    t.eq(st.cache.entries, 0, "no cache entries left")
  end)

  t.test(":HearthReload loads the model again", function()
    local loaded = count("model_loaded")
    vim.cmd("HearthReload")
    t.eq(hearth.status(), "hearth: loading", "statusline while reloading")
    t.contains(notes[#notes].msg, "reloading the model")
    t.wait(30000, function()
      return count("model_loaded") > loaded
    end, "model_loaded after the reload")
    t.wait(5000, function()
      return S.status.state == "ready"
    end, "the ready state")
    t.match(hearth.status(), "^hearth: ready", "statusline")
  end)

  t.test(":checkhealth hearth reports the binary, the model and the server", function()
    vim.cmd("silent checkhealth hearth")
    local text = table.concat(vim.api.nvim_buf_get_lines(0, 0, -1, false), "\n")
    vim.cmd("bwipeout!")
    t.contains(text, "hearth: Neovim")
    t.match(text, "WARNING[^\n]*Neovim 0%.%d+%.%d+: no inline ghost text", "Neovim version line")
    t.match(text, "OK[^\n]*hearth %d+%.%d+%.%d+ %(" .. vim.pesc(bin) .. "%)", "binary and version")
    t.match(text, "OK[^\n]*model " .. vim.pesc(model) .. " %(GGUF, ", "model")
    t.match(text, "OK[^\n]*running %(client %d+%), workspace folders: ", "server")
    t.match(text, "OK[^\n]*model state: ready on cpu", "model state")
    t.falsy(text:find("ERROR"), "no errors:\n" .. text)
  end)

  t.test("a model that cannot be loaded gives the error state", function()
    local missing = tmp .. "/missing.gguf"
    local loaded_or_failed = count("model_loaded") + count("model_error")
    hearth.setup({ path = bin, model = missing, backend = "cpu", cache_dir = tmp .. "/cache", max_tokens = 7, log_level = "warn" })
    t.wait(10000, function()
      return count("model_loaded") + count("model_error") > loaded_or_failed
    end, "the reload after the model changed")
    t.eq(count("model_error"), 1, "model_error events")
    -- The load's $/progress begin/end may come just after the notification.
    t.wait(5000, function()
      return hearth.status() == "hearth: error"
    end, "the statusline to say error (it says " .. hearth.status() .. ")")
    t.contains(S.status.message, "missing.gguf", "message names the file")
    local st = server_status()
    t.eq(st.result.state, "error", "server state")
    t.match(st.lines[1], "^hearth: error", "first line of :HearthStatus")
    t.contains(st.lines[2], "error: ")
  end)
end
