-- Unit tests of the plugin's pure functions: option mapping (hearth.config), version
-- detection (hearth.compat) and status formatting (hearth.status).
return function(t)
  local config = require("hearth.config")
  local compat = require("hearth.compat")
  local status = require("hearth.status")

  -- config ---------------------------------------------------------------------------------

  t.test("every server option maps to its camelCase key", function()
    local opts = {
      model = "/m/model.gguf",
      backend = "cpu",
      context_size = 8192,
      context_tokens = 2048,
      max_tokens = 64,
      max_lines = 4,
      temperature = 0.2,
      debounce_ms = 30,
      cache_dir = "/c",
      cache_max_mb = 100,
      cache_total_max_mb = 400,
      fim_template = "qwen",
      context_exclude = { "*.lock", "build/" },
      context_secrets = { "*.pem" },
      rewrite_max_tokens = 256,
      rewrite_instruction = "Make it shorter",
      log_level = "debug",
    }
    local settings, errors = config.to_server_settings(opts, { home = "/home/u" })
    t.eq(errors, {}, "errors")
    t.eq(settings, {
      model = "/m/model.gguf",
      backend = "cpu",
      contextSize = 8192,
      contextTokens = 2048,
      maxTokens = 64,
      maxLines = 4,
      temperature = 0.2,
      debounceMs = 30,
      cacheDir = "/c",
      cacheMaxMb = 100,
      cacheTotalMaxMb = 400,
      fimTemplate = "qwen",
      contextExclude = { "*.lock", "build/" },
      contextSecrets = { "*.pem" },
      rewriteMaxTokens = 256,
      rewriteInstruction = "Make it shorter",
      logLevel = "debug",
    }, "settings")
  end)

  t.test("the mapping covers every documented server setting", function()
    -- docs/lsp.md's settings table, read from the file itself.
    local doc = table.concat(vim.fn.readfile(t.repo .. "/docs/lsp.md"), "\n")
    local section = doc:match("\n## Settings\n(.-)\n## ")
    t.truthy(section, "docs/lsp.md has a Settings section")
    local documented = {}
    for key in section:gmatch("\n| `(%w+)` |") do
      documented[#documented + 1] = key
    end
    t.truthy(#documented >= 17, "documented settings found: " .. #documented)
    local mapped = {}
    for _, spec in pairs(config.server_options) do
      mapped[spec.key] = true
    end
    for _, key in ipairs(documented) do
      t.truthy(mapped[key], "setting " .. key .. " has a Lua option")
    end
  end)

  t.test("unset options are left out; an empty setup sends nothing", function()
    local settings, errors = config.to_server_settings({}, {})
    t.eq(settings, {}, "settings")
    t.eq(errors, {}, "errors")
    settings = config.to_server_settings(nil, nil)
    t.eq(settings, {}, "settings of nil")
  end)

  t.test("camelCase keys of docs/lsp.md are accepted too", function()
    local settings, errors = config.to_server_settings({ maxTokens = 32, contextSize = 1024 }, {})
    t.eq(errors, {}, "errors")
    t.eq(settings, { maxTokens = 32, contextSize = 1024 }, "settings")
  end)

  t.test("plugin options are not sent to the server and are not errors", function()
    local settings, errors = config.to_server_settings({
      path = "/bin/hearth",
      cmd = { "hearth", "lsp" },
      filetypes = { "python" },
      root_markers = { ".git" },
      inline = false,
      keymaps = false,
      omnifunc = true,
      notify_no_inline = false,
      on_attach = function() end,
      model = "/m.gguf",
    }, {})
    t.eq(errors, {}, "errors")
    t.eq(settings, { model = "/m.gguf" }, "settings")
  end)

  t.test("unknown options, wrong types and out-of-range values are reported and left out", function()
    local settings, errors = config.to_server_settings({
      modle = "/typo.gguf",
      max_tokens = "many",
      max_lines = 1.5,
      context_size = 100,
      temperature = 3,
      backend = "cuda",
      fim_template = "other",
      context_exclude = { "a", 2 },
      log_level = "info",
    }, {})
    t.eq(settings, { logLevel = "info" }, "only the valid option is kept")
    t.eq(#errors, 8, "one error per bad option: " .. table.concat(errors, " | "))
    local all = table.concat(errors, "\n")
    t.contains(all, "unknown option 'modle'")
    t.contains(all, "option 'max_tokens' must be an integer, got string")
    t.contains(all, "option 'max_lines' must be an integer, got number")
    t.contains(all, "option 'context_size' must be between 256 and 1048576, got 100")
    t.contains(all, "option 'temperature' must be between 0 and 2, got 3")
    t.contains(all, 'option \'backend\' must be one of "auto", "cpu", "vulkan", got "cuda"')
    t.contains(all, 'option \'fim_template\' must be one of "", "qwen"')
    t.contains(all, "option 'context_exclude' must be a list of strings")
  end)

  t.test("range limits are inclusive", function()
    local settings, errors = config.to_server_settings({ max_lines = 0, max_tokens = 4096, debounce_ms = 5000 }, {})
    t.eq(errors, {}, "errors")
    t.eq(settings, { maxLines = 0, maxTokens = 4096, debounceMs = 5000 }, "settings")
  end)

  t.test("'~' in model and cache_dir is the home folder", function()
    local settings = config.to_server_settings({ model = "~/models/q.gguf", cache_dir = "~" }, { home = "/home/u" })
    t.eq(settings.model, "/home/u/models/q.gguf", "model")
    t.eq(settings.cacheDir, "/home/u", "cacheDir")
    settings = config.to_server_settings({ model = "/x/~/q.gguf", rewrite_instruction = "~/" }, { home = "/h" })
    t.eq(settings.model, "/x/~/q.gguf", "a '~' inside a path stays")
    t.eq(settings.rewriteInstruction, "~/", "non-path options are not expanded")
    t.eq(config.expand_home("~other/x", "/h"), "~other/x", "~user is not expanded")
  end)

  t.test("lists are copied, so later changes to the options do not leak", function()
    local excl = { "a" }
    local settings = config.to_server_settings({ context_exclude = excl }, {})
    excl[2] = "b"
    t.eq(settings.contextExclude, { "a" }, "contextExclude")
  end)

  t.test("plugin options get defaults; keymaps merge; types are checked", function()
    local o, errors = config.plugin_options({})
    t.eq(errors, {}, "errors")
    t.eq(o.path, "hearth", "path")
    t.eq(o.root_markers, { ".git" }, "root_markers")
    t.eq(o.inline, true, "inline")
    t.eq(o.omnifunc, true, "omnifunc")
    t.eq(o.keymaps, { accept = "<Tab>", next = "<M-]>", prev = "<M-[>" }, "keymaps")
    o = config.plugin_options({ keymaps = { accept = "<C-y>", next = false } })
    t.eq(o.keymaps, { accept = "<C-y>", next = false, prev = "<M-[>" }, "merged keymaps")
    o = config.plugin_options({ keymaps = false })
    t.eq(o.keymaps, false, "keymaps off")
    o, errors = config.plugin_options({ path = 3, filetypes = "python", inline = "yes" })
    t.eq(#errors, 3, "errors: " .. table.concat(errors, " | "))
    t.eq(o.path, "hearth", "a bad path keeps the default")
    t.eq(o.filetypes, nil, "a bad filetypes keeps the default")
  end)

  t.test("the server command: path + lsp, or cmd as given", function()
    t.eq(config.server_cmd(config.plugin_options({})), { "hearth", "lsp" }, "default")
    t.eq(config.server_cmd(config.plugin_options({ path = "/opt/hearth" })), { "/opt/hearth", "lsp" }, "path")
    local cmd = { "/x/hearth", "lsp", "--model", "/m.gguf" }
    local o = config.plugin_options({ path = "/ignored", cmd = cmd })
    t.eq(config.server_cmd(o), cmd, "cmd wins over path")
    t.truthy(config.cmd_has_model(o), "cmd passes --model")
    t.falsy(config.cmd_has_model(config.plugin_options({})), "default cmd has no model")
    t.truthy(config.cmd_has_model({ cmd = { "hearth", "lsp", "--model=/m.gguf" } }), "--model=")
  end)

  -- compat -----------------------------------------------------------------------------------

  t.test("parse_version reads tables, lists and version strings", function()
    t.eq(compat.parse_version({ major = 0, minor = 7, patch = 2, api_level = 9 }), { major = 0, minor = 7, patch = 2 })
    t.eq(compat.parse_version({ 0, 11, 1 }), { major = 0, minor = 11, patch = 1 })
    t.eq(compat.parse_version("0.7.2"), { major = 0, minor = 7, patch = 2 })
    t.eq(compat.parse_version("v0.12.0-dev-1234+g1a2b3c4"), { major = 0, minor = 12, patch = 0 })
    t.eq(compat.parse_version("NVIM v0.11.1"), { major = 0, minor = 11, patch = 1 })
    t.eq(compat.parse_version("0.10"), { major = 0, minor = 10, patch = 0 })
    t.eq(compat.parse_version("nightly"), nil, "no digits")
    t.eq(compat.parse_version({ major = "0" }), nil, "bad table")
    t.eq(compat.parse_version(nil), nil, "nil")
  end)

  t.test("at_least compares major, minor and patch numerically", function()
    local v = compat.parse_version("0.10.4")
    t.truthy(compat.at_least(v, 0, 7), ">= 0.7")
    t.truthy(compat.at_least(v, 0, 10, 4), ">= 0.10.4")
    t.falsy(compat.at_least(v, 0, 10, 5), ">= 0.10.5")
    t.falsy(compat.at_least(v, 0, 11), ">= 0.11 (10 < 11 as numbers, not strings)")
    t.truthy(compat.at_least(compat.parse_version("1.0.0"), 0, 12), "1.0 >= 0.12")
    t.falsy(compat.at_least(compat.parse_version("0.9.5"), 0, 10), "0.9.5 < 0.10")
  end)

  t.test("Neovim 0.7: start_client path, settings sent on init, one message about 0.12", function()
    local p = compat.plan({ version = compat.parse_version("0.7.2") })
    t.eq(p.path, "start_client", "path")
    t.eq(p.inline, false, "inline")
    t.eq(p.colon_methods, false, "colon_methods")
    t.eq(p.send_settings_on_init, true, "send_settings_on_init")
    t.contains(p.no_inline_message, "needs Neovim 0.12")
    t.contains(p.no_inline_message, "this is Neovim 0.7.2")
    t.contains(p.no_inline_message, "textDocument/completion")
    t.contains(p.no_inline_message, "<C-x><C-o>")
  end)

  t.test("Neovim 0.10: start_client path, the core sends the settings", function()
    local p = compat.plan({ version = compat.parse_version("0.10.4"), has_config = false })
    t.eq(p.path, "start_client", "path")
    t.eq(p.send_settings_on_init, false, "send_settings_on_init")
    t.eq(p.colon_methods, false, "colon_methods")
    t.truthy(p.no_inline_message, "message")
  end)

  t.test("Neovim 0.11: vim.lsp.config path, classic completion, colon methods", function()
    local p = compat.plan({ version = compat.parse_version("0.11.3"), has_config = true, has_completion = true })
    t.eq(p.path, "config", "path")
    t.eq(p.inline, false, "inline")
    t.eq(p.colon_methods, true, "colon_methods")
    t.eq(p.send_settings_on_init, false, "send_settings_on_init")
    t.contains(p.no_inline_message, "vim.lsp.completion.enable()")
    t.contains(p.no_inline_message, "this is Neovim 0.11.3")
  end)

  t.test("Neovim 0.12: inline completion and no message", function()
    local p = compat.plan({
      version = compat.parse_version("0.12.0"),
      has_config = true,
      has_inline = true,
      has_completion = true,
    })
    t.eq(p.path, "config", "path")
    t.eq(p.inline, true, "inline")
    t.eq(p.no_inline_message, nil, "no message")
  end)

  t.test("the API is detected, not assumed from the version", function()
    -- A build that reports 0.11 but lacks vim.lsp.config falls back to start_client.
    local p = compat.plan({ version = compat.parse_version("0.11.0"), has_config = false })
    t.eq(p.path, "start_client", "path")
    -- A dev build of 0.11 that already has inline_completion uses it.
    p = compat.plan({ version = compat.parse_version("0.11.9"), has_config = true, has_inline = true })
    t.eq(p.inline, true, "inline")
  end)

  t.test("detect() describes the running Neovim", function()
    local info = compat.detect()
    local v = vim.version()
    t.eq(info.version, { major = v.major, minor = v.minor, patch = v.patch }, "version")
    t.eq(info.has_config, vim.fn.has("nvim-0.11") == 1, "has_config follows has('nvim-0.11')")
    if vim.fn.has("nvim-0.11") == 0 then
      t.eq(info.has_inline, false, "no inline completion before 0.11")
      t.eq(info.has_completion, false, "no vim.lsp.completion before 0.11")
    end
  end)

  -- The vim.lsp.config path, with Neovim 0.12's API replaced by stand-ins (this Neovim may be
  -- older; neovim_new_api runs it for real on Neovim >= 0.11).
  t.test("Neovim >= 0.11 path: vim.lsp.config gets the server, inline completion is enabled", function()
    package.loaded["hearth"] = nil
    local hearth = require("hearth")
    hearth._state.plan = compat.plan({
      version = compat.parse_version("0.12.0"),
      has_config = true,
      has_inline = true,
      has_completion = true,
    })
    local saved = {
      config = vim.lsp.config,
      enable = vim.lsp.enable,
      inline = rawget(vim.lsp, "inline_completion"),
      notify = vim.notify,
    }
    local configured, enabled, inline_enabled, notes = {}, {}, {}, {}
    local accepted = 0
    vim.lsp.config = function(name, cfg)
      configured[#configured + 1] = { name = name, cfg = cfg }
    end
    vim.lsp.enable = function(name)
      enabled[#enabled + 1] = name
    end
    vim.lsp.inline_completion = {
      enable = function(v)
        inline_enabled[#inline_enabled + 1] = v
      end,
      get = function()
        accepted = accepted + 1
        return accepted == 1 -- a candidate the first time, none the second
      end,
      select = function() end,
    }
    vim.notify = function(msg, level)
      notes[#notes + 1] = { msg = msg, level = level }
    end
    local ok, err = pcall(function()
      hearth.setup({ path = "/opt/hearth", model = "/m.gguf", max_tokens = 32, filetypes = { "python" } })
    end)
    vim.lsp.config, vim.lsp.enable, vim.notify = saved.config, saved.enable, saved.notify
    t.truthy(ok, "setup: " .. tostring(err))
    t.eq(#configured, 1, "vim.lsp.config calls")
    t.eq(configured[1].name, "hearth", "name")
    local cfg = configured[1].cfg
    t.eq(cfg.cmd, { "/opt/hearth", "lsp" }, "cmd")
    t.eq(cfg.filetypes, { "python" }, "filetypes")
    t.eq(cfg.root_markers, { ".git" }, "root_markers")
    t.eq(cfg.root_dir, nil, "root_dir is found by vim.lsp from root_markers")
    t.eq(cfg.init_options, { hearth = { model = "/m.gguf", maxTokens = 32 } }, "init_options")
    t.eq(cfg.settings, { hearth = { model = "/m.gguf", maxTokens = 32 } }, "settings")
    t.eq(type(cfg.handlers["hearth/status"]), "function", "hearth/status handler")
    t.truthy(cfg.reuse_client({ name = "hearth" }, cfg), "one client for every root")
    t.falsy(cfg.reuse_client({ name = "other" }, cfg), "other clients are not reused")
    t.eq(enabled, { "hearth" }, "vim.lsp.enable")
    t.eq(inline_enabled, { true }, "vim.lsp.inline_completion.enable(true)")
    t.eq(#notes, 0, "no message: " .. vim.inspect(notes))

    -- on_attach: the buffer's root joins the client's folders; <Tab> accepts ghost text.
    local root = vim.fn.tempname()
    vim.fn.mkdir(root .. "/.git", "p")
    vim.cmd("edit " .. vim.fn.fnameescape(root .. "/a.py"))
    local bufnr = vim.api.nvim_get_current_buf()
    local sent = {}
    local client = { id = 1, name = "hearth", workspace_folders = {} }
    function client:notify(method, params)
      sent[#sent + 1] = { method = method, params = params }
      return true
    end
    ok, err = pcall(cfg.on_attach, client, bufnr)
    t.truthy(ok, "on_attach: " .. tostring(err))
    cfg.on_attach(client, bufnr)
    t.eq(#sent, 1, "one didChangeWorkspaceFolders for two attaches")
    t.eq(sent[1].method, "workspace/didChangeWorkspaceFolders", "method")
    t.eq(sent[1].params.event.added, { { uri = vim.uri_from_fname(root), name = root } }, "added folder")
    t.eq(client.workspace_folders, { { uri = vim.uri_from_fname(root), name = root } }, "client folders")
    local map = vim.fn.maparg("<Tab>", "i", false, true)
    t.contains(map.desc or "", "hearth", "<Tab> mapped in insert mode")
    t.eq(map.buffer, 1, "buffer-local")
    t.contains(vim.fn.maparg("<M-]>", "i", false, true).desc or "", "next inline completion")
    local function type_keys(keys)
      vim.api.nvim_feedkeys(vim.api.nvim_replace_termcodes(keys, true, false, true), "x", false)
    end
    type_keys("i<Tab><Esc>")
    t.eq(accepted, 1, "<Tab> calls vim.lsp.inline_completion.get()")
    t.eq(vim.api.nvim_buf_get_lines(bufnr, 0, -1, false), { "" }, "accepting inserts no tab")
    type_keys("i<Tab><Esc>")
    t.eq(accepted, 2, "second <Tab>")
    t.eq(vim.api.nvim_buf_get_lines(bufnr, 0, -1, false), { "\t" }, "without a candidate <Tab> is a tab")
    vim.lsp.inline_completion = saved.inline
    vim.cmd("bwipeout!")
    vim.fn.delete(root, "rf")
    package.loaded["hearth"] = nil
  end)

  -- status -----------------------------------------------------------------------------------

  local function stats(over)
    local s = {
      backend = "cpu",
      device = "x86_64, 4 threads",
      prompt_tokens = 300,
      context_tokens = 120,
      reused_tokens = 250,
      restored_tokens = 10,
      prefilled_tokens = 40,
      generated_tokens = 12,
      ms_total = 210.4,
      ms_prefill = 80.6,
      ms_restore = 3.2,
      ms_decode = 120,
      tokens_per_second = 42.06,
    }
    for k, v in pairs(over or {}) do
      s[k] = v
    end
    return s
  end

  t.test("format: nothing before the server starts, loading while it starts", function()
    local s = status.initial()
    t.eq(status.format(s), "", "initial")
    t.eq(status.format(nil), "", "nil")
    t.eq(status.format(status.with_state(s, "starting")), "hearth: loading", "starting")
    t.eq(status.format(status.with_state(s, "loading")), "hearth: loading", "loading")
  end)

  t.test("format after model_loaded and after a completion", function()
    local s = status.with_state(status.initial(), "loading")
    s = status.apply(s, stats({ event = "model_loaded", state = "ready", tokens_per_second = 0 }))
    t.eq(s.state, "ready", "state")
    t.eq(s.backend, "cpu", "backend")
    t.eq(status.format(s), "hearth: ready", "no completion yet")
    s = status.apply(s, stats({ event = "completion", uri = "file:///a.py", stop_reason = "eos", cut_by = "" }))
    t.eq(status.format(s), "hearth: ready | 42.1 tok/s | reused 250, restored 10, prefilled 40", "after completion")
  end)

  t.test("workspace_indexed keeps the last completion's numbers", function()
    local s = status.apply(status.initial(), stats({ event = "model_loaded", state = "ready" }))
    s = status.apply(s, stats({ event = "completion", tokens_per_second = 7 }))
    local before = status.format(s)
    s = status.apply(s, stats({
      event = "workspace_indexed",
      root = "/w",
      files = 12,
      reused_tokens = 0,
      restored_tokens = 0,
      prefilled_tokens = 0,
      tokens_per_second = 0,
    }))
    t.eq(status.format(s), before, "format")
    t.eq(s.workspaces["/w"], 12, "files of /w")
    t.eq(s.last.event, "workspace_indexed", "the last notification is kept whole")
  end)

  t.test("model_error gives the error state and keeps the message", function()
    local s = status.apply(status.initial(), stats({ event = "model_error", state = "error", message = "bad magic" }))
    t.eq(s.state, "error", "state")
    t.eq(s.message, "bad magic", "message")
    t.eq(status.format(s), "hearth: error", "format")
    s = status.apply(s, stats({ event = "model_loaded", state = "ready" }))
    t.eq(s.message, nil, "message cleared on reload")
  end)

  t.test("apply does not change its input; junk is ignored", function()
    local s0 = status.initial()
    local s1 = status.apply(s0, stats({ event = "workspace_indexed", root = "/r", files = 1 }))
    t.eq(s0.workspaces["/r"], nil, "input untouched")
    t.eq(s1.workspaces["/r"], 1, "output updated")
    t.eq(status.apply(s1, nil), s1, "nil params")
    t.eq(status.apply(s1, "x").state, s1.state, "string params")
  end)

  t.test("$/progress: the model load's begin means loading", function()
    local ready = status.apply(status.initial(), stats({ event = "model_loaded", state = "ready" }))
    t.eq(status.apply_progress(ready, { kind = "begin", title = "hearth", message = "Loading model" }).state, "loading")
    t.eq(status.apply_progress(ready, { kind = "begin", title = "hearth", message = "Reading context" }).state, "ready")
    t.eq(status.apply_progress(ready, { kind = "end" }).state, "ready")
    t.eq(status.apply_progress(ready, nil).state, "ready")
  end)

  t.test("$/progress: a late begin/end pair of the load leaves the final state", function()
    local failed = status.apply(status.initial(), stats({ event = "model_error", state = "error", message = "no file" }))
    local s = status.apply_progress(failed, { kind = "begin", title = "hearth", message = "Loading model" })
    t.eq(s.state, "loading", "after begin")
    s = status.apply_progress(s, { kind = "end", message = "Model failed to load" })
    t.eq(s.state, "error", "after end")
    t.eq(s.message, "no file", "message kept")
    s = status.apply_progress(s, { kind = "begin", message = "Loading model" })
    s = status.apply_progress(s, { kind = "end", message = "Model loaded" })
    t.eq(status.format(s), "hearth: ready", "after a good load")
  end)

  t.test("describe: the full status of :HearthStatus", function()
    local server = {
      state = "ready",
      error = "",
      backend = "cpu",
      device = "x86_64, 4 threads",
      documents = 2,
      pendingCompletions = 0,
      running = false,
      superseded = 3,
      lastStats = stats(),
      workspace = {
        root = "/w",
        indexedFiles = 5,
        scanning = false,
        folders = { { root = "/w", indexedFiles = 4, scanning = false }, { root = "/v", indexedFiles = 1, scanning = true } },
      },
      cache = { enabled = true, dir = "/c/w", entries = 3, bytes = 3 * 1024 * 1024, hits = 4, misses = 1, writes = 2 },
      settings = { model = "/m.gguf", maxTokens = 128, contextExclude = { "a", "b" } },
    }
    local lines = status.describe(server, status.initial())
    t.eq(lines, {
      "hearth: ready on cpu (x86_64, 4 threads)",
      "documents: 2, pending completions: 0, running: no, superseded: 3",
      "workspace: /w (4 files indexed)",
      "workspace: /v (1 file indexed, scanning)",
      "disk cache: /c/w, 3 entries, 3.0 MiB, hits 4, misses 1, writes 2",
      "last completion: 12 tokens generated, 42.1 tok/s, 210 ms (prefill 81 ms, restore 3 ms, decode 120 ms)",
      "last prompt: 300 tokens (120 repository context): reused 250, restored 10, prefilled 40",
      'settings: contextExclude=[a, b], maxTokens=128, model="/m.gguf"',
    }, "lines")
  end)

  t.test("describe: errors, no workspace, cache off, no server answer", function()
    local lines = status.describe({
      state = "error",
      error = "not a GGUF file",
      documents = 0,
      workspace = { folders = {} },
      cache = { enabled = false, error = "read-only" },
    }, nil)
    t.eq(lines[1], "hearth: error", "state")
    t.eq(lines[2], "error: not a GGUF file", "error")
    t.eq(lines[4], "workspace: none (no repository context)", "workspace")
    t.eq(lines[5], "disk cache: off (read-only)", "cache")
    t.eq(lines[6], "last completion: none yet", "no completion")
    local s = status.apply(status.initial(), stats({ event = "completion" }))
    lines = status.describe(nil, s)
    t.eq(lines[1], "hearth: ready (no answer from the server)", "no server")
    t.match(lines[2], "^last completion: 12 tokens generated, 42%.1 tok/s", "the plugin's last completion")
  end)
end
