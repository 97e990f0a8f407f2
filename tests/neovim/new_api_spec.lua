-- The plugin on Neovim >= 0.11 with the real `hearth lsp` binary: the server is configured
-- with vim.lsp.config + vim.lsp.enable; on 0.12 (vim.lsp.inline_completion) inline
-- completion is enabled and textDocument/inlineCompletion answers, on 0.11 classic
-- completion does. Skipped (exit 77) on older Neovim.
--
-- Environment: HEARTH_BIN, HEARTH_TEST_MODEL, HEARTH_TEST_TMP (as integration_spec.lua).
return function(t)
  if vim.fn.has("nvim-0.11") == 0 then
    local v = vim.version()
    t.skip(string.format(
      "needs Neovim >= 0.11 (vim.lsp.config, vim.lsp.enable); this is %d.%d.%d. "
        .. "Point HEARTH_NVIM_NEW at a newer nvim to run it (cmake -DHEARTH_NVIM_NEW=/path/to/nvim)",
      v.major, v.minor, v.patch
    ))
    return
  end
  local compat = require("hearth.compat")
  local plan = compat.plan(compat.detect())
  local bin = vim.env.HEARTH_BIN
  local model = vim.env.HEARTH_TEST_MODEL or (t.repo .. "/tests/data/hearth-demo-py-q8_0.gguf")
  if bin == nil or bin == "" or vim.fn.executable(bin) == 0 then
    error("HEARTH_BIN must name the hearth binary (got " .. tostring(bin) .. ")")
  end

  local tmp = vim.env.HEARTH_TEST_TMP
  if tmp == nil or tmp == "" then
    tmp = vim.fn.tempname()
  end
  tmp = vim.fn.fnamemodify(tmp, ":p"):gsub("/$", "")
  vim.fn.delete(tmp, "rf")
  local root = tmp .. "/proj"
  vim.fn.mkdir(root .. "/.git", "p")
  vim.fn.mkdir(tmp .. "/cache", "p")
  local file = root .. "/main.py"
  vim.fn.writefile({ "def add(a, b):", "    return ", "" }, file)

  local notes = {}
  vim.notify = function(msg, level)
    notes[#notes + 1] = { msg = msg, level = level }
  end

  vim.cmd("filetype on")
  local hearth = require("hearth")
  local S = hearth._state
  -- Count every hearth/status notification the plugin applies, by event.
  local events = {}
  local status_mod = require("hearth.status")
  local apply = status_mod.apply
  status_mod.apply = function(state, params)
    if type(params) == "table" and params.event ~= nil then
      events[params.event] = (events[params.event] or 0) + 1
    end
    return apply(state, params)
  end

  t.test("setup() configures and enables the server with vim.lsp.config", function()
    hearth.setup({ path = bin, model = model, backend = "cpu", cache_dir = tmp .. "/cache", max_tokens = 24 })
    t.eq(plan.path, "config", "plan")
    local cfg = vim.lsp.config.hearth
    t.truthy(cfg, "vim.lsp.config.hearth")
    t.eq(cfg.cmd, { bin, "lsp" }, "cmd")
    t.eq(cfg.root_markers, { ".git" }, "root_markers")
    t.eq(cfg.init_options.hearth.model, model, "init_options")
    t.eq(cfg.settings.hearth.backend, "cpu", "settings")
    t.truthy(cfg.handlers["hearth/status"], "hearth/status handler")
    if vim.lsp.is_enabled ~= nil then
      t.truthy(vim.lsp.is_enabled("hearth"), "vim.lsp.is_enabled")
    end
    local warned = 0
    for _, n in ipairs(notes) do
      if n.msg:find("needs Neovim 0.12", 1, true) then
        warned = warned + 1
      end
    end
    t.eq(warned, plan.inline and 0 or 1, "warnings about 0.12")
  end)

  t.test("opening a Python file attaches the client and loads the model", function()
    vim.cmd("edit " .. vim.fn.fnameescape(file))
    t.eq(vim.bo.filetype, "python", "filetype")
    t.wait(10000, function()
      local c = hearth.client()
      return c ~= nil and c.initialized and vim.lsp.buf_is_attached(0, c.id)
    end, "the hearth client to attach")
    t.eq(hearth.client().root_dir, root, "root_dir")
    -- hearth/status model_loaded (the load's $/progress end may come first).
    t.wait(30000, function()
      return events.model_loaded ~= nil or events.model_error ~= nil
    end, "hearth/status model_loaded")
    t.eq(S.status.state, "ready", "state (" .. tostring(S.status.message) .. ")")
    t.eq(hearth.status(), "hearth: ready", "statusline")
  end)

  local function request(method, params)
    local res = vim.lsp.buf_request_sync(0, method, params, 15000)
    t.truthy(res, method .. " answered")
    local r = res[hearth.client().id]
    t.truthy(r, "hearth answered " .. method)
    t.eq(r.err, nil, method .. " error")
    return r.result
  end

  local pos = { line = 1, character = 11 }

  if plan.inline then
    t.test("Neovim 0.12: inline completion is enabled and answers", function()
      local c = hearth.client()
      -- Static, or registered with client/registerCapability when Neovim asks for that.
      t.wait(5000, function()
        return c:supports_method("textDocument/inlineCompletion")
      end, "the server to offer textDocument/inlineCompletion")
      local caps = vim.lsp.protocol.make_client_capabilities()
      if caps.textDocument and caps.textDocument.inlineCompletion then
        t.eq(c.server_capabilities.completionProvider, nil, "no classic completion for inline clients")
      end
      if vim.lsp.inline_completion.is_enabled ~= nil then
        t.truthy(vim.lsp.inline_completion.is_enabled({ bufnr = 0 }), "inline completion enabled")
      end
      local map = vim.fn.maparg("<Tab>", "i", false, true)
      t.contains(map.desc or "", "hearth", "<Tab> accepts the inline completion")
      local result = request("textDocument/inlineCompletion", {
        textDocument = { uri = vim.uri_from_bufnr(0) },
        position = pos,
        context = { triggerKind = 1 },
      })
      local items = result.items or result
      t.truthy(items[1] and items[1].insertText:match("%S"), "a non-empty inline item: " .. vim.inspect(result))
    end)
  else
    t.test("Neovim 0.11: classic completion answers", function()
      local c = hearth.client()
      t.truthy(c.server_capabilities.completionProvider, "completionProvider")
      t.eq(vim.bo.omnifunc, "v:lua.vim.lsp.omnifunc", "omnifunc")
      local result = request("textDocument/completion", {
        textDocument = { uri = vim.uri_from_bufnr(0) },
        position = pos,
      })
      t.truthy(result.items[1] and result.items[1].textEdit.newText:match("%S"), "a non-empty item")
    end)
  end

  t.test("the statusline and :HearthStatus after a completion", function()
    t.wait(5000, function()
      return S.status.last_call ~= nil
    end, "hearth/status completion")
    t.match(hearth.status(), "^hearth: ready | %d+%.%d tok/s | reused %d+, restored %d+, prefilled %d+$", "statusline")
    local before = #notes
    vim.cmd("HearthStatus")
    t.wait(5000, function()
      return #notes > before
    end, ":HearthStatus output")
    t.match(notes[#notes].msg, "^hearth: ready on cpu", ":HearthStatus")
    t.eq(S.server_status.settings.model, model, "settings.model")
    t.eq(S.server_status.workspace.folders[1].root, root, "workspace folder")
  end)
end
