-- :checkhealth hearth
local M = {}

local function reporter()
  local h = rawget(vim, "health")
  if h == nil then
    local ok, mod = pcall(require, "vim.health")
    h = ok and mod or nil
  end
  if h ~= nil and h.start ~= nil then -- Neovim >= 0.10
    return h
  end
  if h ~= nil and h.report_start ~= nil then -- Neovim 0.8, 0.9
    return {
      start = h.report_start,
      ok = h.report_ok,
      info = h.report_info,
      warn = h.report_warn,
      error = h.report_error,
    }
  end
  -- Neovim 0.7: the Vim script API.
  local function wrap(name)
    return function(msg, advice)
      if advice ~= nil and (name == "warn" or name == "error") then
        vim.fn["health#report_" .. name](msg, advice)
      else
        vim.fn["health#report_" .. name](msg)
      end
    end
  end
  return {
    start = wrap("start"),
    ok = wrap("ok"),
    info = wrap("info"),
    warn = wrap("warn"),
    error = wrap("error"),
  }
end

local function model_from_cmd(cmd)
  for i, a in ipairs(cmd) do
    if (a == "--model" or a == "-m") and cmd[i + 1] ~= nil then
      return cmd[i + 1]
    elseif a:sub(1, 8) == "--model=" then
      return a:sub(9)
    end
  end
  return nil
end

function M.check()
  local health = reporter()
  local compat = require("hearth.compat")
  local config = require("hearth.config")
  local hearth = require("hearth")
  local S = hearth._state

  health.start("hearth: Neovim")
  local plan = compat.plan(compat.detect())
  local version = compat.version_string(compat.parse_version(vim.version()))
  if plan.inline then
    health.ok(string.format("Neovim %s: inline completion (vim.lsp.inline_completion) is available", version))
  else
    health.warn(
      string.format("Neovim %s: no inline ghost text (needs Neovim 0.12); classic completion works", version),
      { "Use <C-x><C-o> (omnifunc) or a completion plugin's LSP source" }
    )
  end
  if plan.path == "config" then
    health.info("server configured with vim.lsp.config() and vim.lsp.enable()")
  else
    health.info("server started with vim.lsp.start_client() on FileType")
  end

  health.start("hearth: setup")
  local opts = S.opts
  if not S.configured then
    health.warn("require('hearth').setup() has not been called", {
      "Call require('hearth').setup({ model = '/path/to/model.gguf' }) in your init.lua",
    })
    opts = config.plugin_options({})
  else
    health.ok("setup() called")
  end

  local cmd = config.server_cmd(opts)
  local bin = vim.fn.exepath(cmd[1])
  if bin == "" then
    health.error(string.format("'%s' not found or not executable", cmd[1]), {
      "Build it (bash .ci/build: build/release/lsp/hearth) and put it on PATH, or set setup({ path = ... })",
    })
  else
    local out = vim.fn.system({ bin, "--version" })
    local first = (out:gsub("%s+$", "")):match("[^\n]*") or ""
    if vim.v.shell_error == 0 and first:match("^hearth") then
      health.ok(string.format("%s (%s)", first, bin))
    else
      health.error(string.format("'%s --version' failed: %s", bin, first))
    end
    health.info("command: " .. table.concat(cmd, " "))
  end

  local model = (S.settings and S.settings.model) or model_from_cmd(cmd)
  if model == nil or model == "" then
    health.error("no model configured", { "setup({ model = '/path/to/model.gguf' })" })
  elseif vim.fn.filereadable(model) == 0 then
    health.error(string.format("model '%s' is not a readable file", model))
  else
    local f = io.open(model, "rb")
    local magic = f and f:read(4) or ""
    if f then
      f:close()
    end
    local stat = vim.loop.fs_stat(model)
    local size = stat and string.format("%.1f MiB", stat.size / (1024 * 1024)) or "?"
    if magic == "GGUF" then
      health.ok(string.format("model %s (GGUF, %s)", model, size))
    else
      health.error(string.format("model '%s' is not a GGUF file", model))
    end
  end

  health.start("hearth: server")
  local clients = hearth.clients()
  if #clients == 0 then
    health.info("not running (it starts when a file is opened)")
  else
    local c = clients[1]
    local folders = {}
    for _, f in ipairs(c.workspace_folders or {}) do
      folders[#folders + 1] = f.name
    end
    health.ok(string.format(
      "running (client %d), workspace folders: %s",
      c.id,
      #folders > 0 and table.concat(folders, ", ") or "none"
    ))
  end
  local st = S.status
  if st.state == "error" then
    health.error("model state: error: " .. tostring(st.message or ""))
  elseif st.state == "ready" then
    health.ok(string.format("model state: ready on %s (%s)", tostring(st.backend), tostring(st.device)))
  else
    health.info("model state: " .. tostring(st.state))
  end
  local line = hearth.status()
  if line ~= "" then
    health.info("statusline: " .. line)
  end
end

return M
