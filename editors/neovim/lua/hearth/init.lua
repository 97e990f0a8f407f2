-- hearth for Neovim: starts `hearth lsp` as a language server and shows its completions.
--
--   Neovim >= 0.12: vim.lsp.config + vim.lsp.enable, inline ghost text through
--                   vim.lsp.inline_completion (textDocument/inlineCompletion).
--   Neovim 0.11:    vim.lsp.config + vim.lsp.enable, classic completion.
--   Neovim 0.7-0.10: a FileType autocmd + vim.lsp.start_client, classic completion
--                   (textDocument/completion through 'omnifunc' or a completion plugin).
--
-- One server serves every buffer: the model is loaded once, and each new project root is
-- added to it as a workspace folder.
local config = require("hearth.config")
local compat = require("hearth.compat")
local status = require("hearth.status")

local M = {}

local NAME = "hearth"
local uv = vim.loop

-- Everything the plugin keeps; exposed as M._state for the tests and :checkhealth.
local S = {
  configured = false,
  opts = nil, -- plugin options with defaults
  settings = {}, -- server settings (camelCase)
  plan = nil, -- compat.plan() of this Neovim
  status = status.initial(),
  server_status = nil, -- the last hearth.status result
  warned_no_inline = false,
  augroup = nil,
}
M._state = S

local function notify(msg, level)
  vim.notify(msg, level or vim.log.levels.INFO, { title = "hearth" })
end

local function plan()
  if S.plan == nil then
    S.plan = compat.plan(compat.detect())
  end
  return S.plan
end

-- client.request(...) up to Neovim 0.10, client:request(...) from 0.11 on.
local function call(client, method, ...)
  if plan().colon_methods then
    return client[method](client, ...)
  end
  return client[method](...)
end

-- The payload of initializationOptions and of workspace/didChangeConfiguration.
local function settings_payload()
  local s = next(S.settings) == nil and vim.empty_dict() or vim.deepcopy(S.settings)
  return { hearth = s }
end

--- Every running hearth client.
function M.clients()
  local all
  if vim.lsp.get_clients ~= nil then
    all = vim.lsp.get_clients({ name = NAME })
  else
    all = vim.lsp.get_active_clients()
  end
  local out = {}
  for _, c in pairs(all) do
    if c.name == NAME and not call(c, "is_stopped") then
      out[#out + 1] = c
    end
  end
  table.sort(out, function(a, b)
    return a.id < b.id
  end)
  return out
end

--- The hearth client: the one attached to bufnr (default: current buffer), else the first.
function M.client(bufnr)
  local clients = M.clients()
  bufnr = (bufnr == nil or bufnr == 0) and vim.api.nvim_get_current_buf() or bufnr
  for _, c in ipairs(clients) do
    if c.attached_buffers ~= nil and c.attached_buffers[bufnr] then
      return c
    end
  end
  return clients[1]
end

local function is_file_buffer(bufnr)
  if not vim.api.nvim_buf_is_valid(bufnr) or vim.bo[bufnr].buftype ~= "" then
    return false
  end
  return vim.api.nvim_buf_get_name(bufnr) ~= ""
end

local function filetype_ok(bufnr)
  local fts = S.opts and S.opts.filetypes
  if fts == nil then
    return true
  end
  local ft = vim.bo[bufnr].filetype
  for _, f in ipairs(fts) do
    if f == ft then
      return true
    end
  end
  return false
end

--- The workspace folder of a buffer: the nearest folder above its file that holds one of
--- the root markers, or nil.
function M.root_dir(bufnr)
  local name = vim.api.nvim_buf_get_name(bufnr)
  if name == "" then
    return nil
  end
  local dir = vim.fn.fnamemodify(name, ":p:h")
  local markers = (S.opts and S.opts.root_markers) or config.plugin_defaults.root_markers
  while dir ~= nil and dir ~= "" do
    for _, m in ipairs(markers) do
      if uv.fs_stat(dir .. "/" .. m) ~= nil then
        return dir
      end
    end
    local parent = vim.fn.fnamemodify(dir, ":h")
    if parent == dir then
      break
    end
    dir = parent
  end
  return nil
end

-- Adds root to the client's workspace folders (workspace/didChangeWorkspaceFolders), so
-- that one server, with one model in memory, serves every project.
local function ensure_folder(client, root)
  if root == nil then
    return
  end
  local uri = vim.uri_from_fname(root)
  client.workspace_folders = client.workspace_folders or {}
  for _, f in ipairs(client.workspace_folders) do
    if f.uri == uri then
      return
    end
  end
  local folder = { uri = uri, name = root }
  table.insert(client.workspace_folders, folder)
  call(client, "notify", "workspace/didChangeWorkspaceFolders", {
    event = { added = { folder }, removed = {} },
  })
end

local function redraw_status()
  vim.schedule(function()
    pcall(vim.cmd, "redrawstatus")
    local opts = { pattern = "HearthStatus", modeline = false }
    pcall(vim.api.nvim_exec_autocmds, "User", opts)
  end)
end

-- Handlers of the server's notifications.
local function on_status(_, result, _, _)
  S.status = status.apply(S.status, result)
  redraw_status()
end

local function on_progress(err, result, ctx, cfg)
  if type(result) == "table" then
    local before = S.status.state
    S.status = status.apply_progress(S.status, result.value)
    if S.status.state ~= before then
      redraw_status()
    end
  end
  local default = vim.lsp.handlers["$/progress"]
  if default ~= nil then
    return default(err, result, ctx, cfg)
  end
end

local function on_init(client, _)
  S.status = status.with_state(S.status, "loading")
  if plan().send_settings_on_init then
    call(client, "notify", "workspace/didChangeConfiguration", { settings = client.config.settings })
  end
  redraw_status()
end

local function on_exit(code, signal, _)
  if code ~= 0 and S.status.state ~= "off" then
    S.status = status.with_state(
      S.status,
      "error",
      string.format("the server exited (code %s, signal %s)", tostring(code), tostring(signal))
    )
  else
    S.status = status.with_state(S.status, "off")
  end
  redraw_status()
end

local function set_inline_keymaps(bufnr)
  local keys = S.opts.keymaps
  local inline = vim.lsp.inline_completion
  if not keys or inline == nil then
    return
  end
  if keys.accept then
    vim.keymap.set("i", keys.accept, function()
      if not inline.get() then
        return keys.accept
      end
    end, { buffer = bufnr, expr = true, desc = "hearth: accept the inline completion" })
  end
  if type(inline.select) == "function" then
    if keys.next then
      vim.keymap.set("i", keys.next, function()
        inline.select({ count = 1 })
      end, { buffer = bufnr, desc = "hearth: next inline completion" })
    end
    if keys.prev then
      vim.keymap.set("i", keys.prev, function()
        inline.select({ count = -1 })
      end, { buffer = bufnr, desc = "hearth: previous inline completion" })
    end
  end
end

local function on_attach(client, bufnr)
  ensure_folder(client, M.root_dir(bufnr))
  if S.opts.omnifunc then
    vim.bo[bufnr].omnifunc = "v:lua.vim.lsp.omnifunc"
  end
  if plan().inline and S.opts.inline then
    set_inline_keymaps(bufnr)
  end
  if S.opts.on_attach ~= nil then
    S.opts.on_attach(client, bufnr)
  end
end

local function client_config(root)
  local payload = settings_payload()
  return {
    name = NAME,
    cmd = config.server_cmd(S.opts),
    root_dir = root,
    init_options = payload,
    settings = payload,
    handlers = { ["hearth/status"] = on_status, ["$/progress"] = on_progress },
    on_init = on_init,
    on_exit = on_exit,
    on_attach = on_attach,
  }
end

--- Attaches hearth to a buffer (starting the server if it is not running). Neovim < 0.11;
--- from 0.11 on, vim.lsp.enable() does this.
function M.attach(bufnr)
  bufnr = (bufnr == nil or bufnr == 0) and vim.api.nvim_get_current_buf() or bufnr
  if not is_file_buffer(bufnr) or not filetype_ok(bufnr) then
    return nil
  end
  local client = M.clients()[1]
  local id
  if client ~= nil then
    id = client.id
  else
    local cmd = config.server_cmd(S.opts)
    if vim.fn.executable(cmd[1]) == 0 then
      if not S.warned_no_binary then
        S.warned_no_binary = true
        notify(
          string.format("hearth: '%s' not found; set setup({ path = '/path/to/hearth' })", cmd[1]),
          vim.log.levels.ERROR
        )
      end
      return nil
    end
    S.status = status.with_state(S.status, "starting")
    id = vim.lsp.start_client(client_config(M.root_dir(bufnr)))
    if id == nil then
      return nil
    end
  end
  vim.lsp.buf_attach_client(bufnr, id)
  return id
end

local function start_with_config()
  local cfg = client_config(nil)
  cfg.root_dir = nil
  cfg.name = nil
  cfg.filetypes = S.opts.filetypes
  cfg.root_markers = S.opts.root_markers
  -- One client for every root (see ensure_folder).
  cfg.reuse_client = function(client, _)
    return client.name == NAME
  end
  vim.lsp.config(NAME, cfg)
  vim.lsp.enable(NAME)
  if plan().inline and S.opts.inline then
    vim.lsp.inline_completion.enable(true)
  end
end

local function start_with_autocmd()
  S.augroup = vim.api.nvim_create_augroup("hearth", { clear = true })
  local pattern = S.opts.filetypes or "*"
  vim.api.nvim_create_autocmd("FileType", {
    group = S.augroup,
    pattern = pattern,
    callback = function(args)
      M.attach(args.buf)
    end,
    desc = "hearth: attach the language server",
  })
  -- Buffers opened before setup() (lazy loading).
  for _, b in ipairs(vim.api.nvim_list_bufs()) do
    if vim.api.nvim_buf_is_loaded(b) and vim.bo[b].filetype ~= "" then
      M.attach(b)
    end
  end
end

-- Sends changed settings to running servers (a second setup() call).
local function push_settings()
  local payload = settings_payload()
  for _, c in ipairs(M.clients()) do
    c.config.settings = payload
    if c.settings ~= nil then
      c.settings = payload
    end
    call(c, "notify", "workspace/didChangeConfiguration", { settings = payload })
  end
end

--- Runs a hearth command (workspace/executeCommand) on the server; cb(err, result).
function M.execute(command, cb)
  local client = M.client()
  if client == nil then
    local err = { message = "hearth is not running (open a file to start it)" }
    if cb then
      cb(err, nil)
    end
    return false
  end
  return call(client, "request", "workspace/executeCommand", { command = command }, function(err, result)
    if cb then
      cb(err, result)
    end
  end, vim.api.nvim_get_current_buf())
end

--- The statusline text: "" when hearth is not running, else e.g.
--- "hearth: ready | 42.1 tok/s | reused 120, restored 0, prefilled 35".
function M.status()
  return status.format(S.status)
end

--- Asks the server for its full status (hearth.status); cb(lines, result, err).
function M.request_status(cb)
  return M.execute("hearth.status", function(err, result)
    if err == nil and type(result) == "table" then
      S.server_status = result
    end
    if cb then
      cb(status.describe(err == nil and result or nil, S.status), result, err)
    end
  end)
end

local function error_text(err)
  if type(err) == "table" then
    return tostring(err.message or vim.inspect(err))
  end
  return tostring(err)
end

function M.show_status()
  M.request_status(function(lines, _, err)
    if err ~= nil then
      lines[#lines + 1] = "error: " .. error_text(err)
    end
    notify(table.concat(lines, "\n"), err ~= nil and vim.log.levels.WARN or vim.log.levels.INFO)
  end)
end

function M.clear_cache()
  M.execute("hearth.clearCache", function(err, result)
    if err ~= nil then
      notify("hearth: clearing the cache failed: " .. error_text(err), vim.log.levels.ERROR)
    else
      local dir = type(result) == "table" and result.dir or ""
      notify("hearth: disk KV cache cleared" .. (dir ~= "" and (" (" .. dir .. ")") or ""))
    end
  end)
end

function M.reload()
  if M.client() == nil then
    notify("hearth is not running (open a file to start it)", vim.log.levels.WARN)
    return
  end
  M.execute("hearth.reloadModel", function(err, _)
    if err ~= nil then
      notify("hearth: reloading the model failed: " .. error_text(err), vim.log.levels.ERROR)
    end
  end)
  S.status = status.with_state(S.status, "loading")
  redraw_status()
  notify("hearth: reloading the model")
end

local function create_commands()
  local cmd = vim.api.nvim_create_user_command
  cmd("HearthStatus", M.show_status, { desc = "hearth: show the server's status" })
  cmd("HearthClearCache", M.clear_cache, { desc = "hearth: clear the disk KV cache" })
  cmd("HearthReload", M.reload, { desc = "hearth: load the model again" })
end

--- setup({ model = "/path/to/model.gguf", ... }); see editors/neovim/README.md.
function M.setup(opts)
  opts = opts or {}
  if type(opts) ~= "table" then
    notify("hearth: setup() takes a table of options", vim.log.levels.ERROR)
    return
  end
  local plugin_opts, errors = config.plugin_options(opts)
  local settings, setting_errors = config.to_server_settings(opts, { home = vim.env.HOME })
  for _, e in ipairs(setting_errors) do
    errors[#errors + 1] = e
  end
  if #errors > 0 then
    notify("hearth: " .. table.concat(errors, "; "), vim.log.levels.WARN)
  end
  local first = not S.configured
  S.opts = plugin_opts
  S.settings = settings
  S.configured = true

  if settings.model == nil and not config.cmd_has_model(plugin_opts) then
    notify(
      "hearth: no model set; pass setup({ model = '/path/to/model.gguf' }) (:checkhealth hearth)",
      vim.log.levels.WARN
    )
  end

  local p = plan()
  if first and p.no_inline_message and plugin_opts.notify_no_inline and not S.warned_no_inline then
    S.warned_no_inline = true
    notify(p.no_inline_message, vim.log.levels.WARN)
  end

  create_commands()
  if not first then
    push_settings()
  end
  if p.path == "config" then
    start_with_config()
  else
    start_with_autocmd()
  end
end

return M
