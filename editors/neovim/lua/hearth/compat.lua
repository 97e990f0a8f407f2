-- Which Neovim APIs the plugin uses, decided from the version and from what exists.
-- parse_version() and plan() are pure; detect() reads the running Neovim.
local M = {}

-- Accepts vim.version()'s table ({ major = 0, minor = 7, patch = 2, ... }), a list
-- { 0, 7, 2 }, or a string such as "0.7.2", "v0.12.0-dev-1234+g1a2b3c" or the first line of
-- `nvim --version` ("NVIM v0.11.1"). Returns { major, minor, patch } or nil.
function M.parse_version(v)
  if type(v) == "table" then
    local major = v.major or v[1]
    local minor = v.minor or v[2]
    local patch = v.patch or v[3] or 0
    if type(major) == "number" and type(minor) == "number" and type(patch) == "number" then
      return { major = major, minor = minor, patch = patch }
    end
    return nil
  end
  if type(v) ~= "string" then
    return nil
  end
  local major, minor, patch = v:match("(%d+)%.(%d+)%.?(%d*)")
  if major == nil then
    return nil
  end
  return { major = tonumber(major), minor = tonumber(minor), patch = tonumber(patch) or 0 }
end

-- True when version v (as parse_version returns) is at least major.minor.patch.
function M.at_least(v, major, minor, patch)
  patch = patch or 0
  if v.major ~= major then
    return v.major > major
  end
  if v.minor ~= minor then
    return v.minor > minor
  end
  return v.patch >= patch
end

function M.version_string(v)
  return string.format("%d.%d.%d", v.major, v.minor, v.patch)
end

-- info: {
--   version = { major, minor, patch },
--   has_config = vim.lsp.config and vim.lsp.enable exist (Neovim >= 0.11),
--   has_inline = vim.lsp.inline_completion.enable exists (Neovim >= 0.12),
--   has_completion = vim.lsp.completion.enable exists (Neovim >= 0.11),
-- }
-- Returns {
--   path = "config" (vim.lsp.config + vim.lsp.enable) or "start_client" (FileType autocmd
--          + vim.lsp.start_client + vim.lsp.buf_attach_client),
--   inline = ghost text through vim.lsp.inline_completion,
--   colon_methods = client:request() instead of client.request() (Neovim >= 0.11),
--   send_settings_on_init = the plugin must send workspace/didChangeConfiguration itself
--          (Neovim < 0.8 does not do it),
--   no_inline_message = the warning to show once, or nil when inline completion works,
-- }
function M.plan(info)
  local v = info.version
  local plan = {
    path = (info.has_config and M.at_least(v, 0, 11)) and "config" or "start_client",
    inline = info.has_inline == true,
    colon_methods = M.at_least(v, 0, 11),
    send_settings_on_init = not M.at_least(v, 0, 8),
  }
  if not plan.inline then
    local instead = "<C-x><C-o> (omnifunc) or an LSP completion source (nvim-cmp's cmp-nvim-lsp)"
    if info.has_completion then
      instead = "<C-x><C-o>, vim.lsp.completion.enable() or an LSP completion source"
    end
    plan.no_inline_message = string.format(
      "hearth: inline ghost text (textDocument/inlineCompletion) needs Neovim 0.12 or newer; "
        .. "this is Neovim %s, so hearth serves classic completions (textDocument/completion) "
        .. "instead: use %s.",
      M.version_string(v),
      instead
    )
  end
  return plan
end

-- Reads the running Neovim.
function M.detect()
  local lsp = vim.lsp
  local inline = rawget(lsp, "inline_completion")
  if inline == nil then
    local ok, mod = pcall(function()
      return lsp.inline_completion
    end)
    inline = ok and mod or nil
  end
  local completion = nil
  if M.at_least(M.parse_version(vim.version()), 0, 11) then
    local ok, mod = pcall(function()
      return lsp.completion
    end)
    completion = ok and mod or nil
  end
  return {
    version = M.parse_version(vim.version()),
    has_config = lsp.config ~= nil and type(lsp.enable) == "function",
    has_inline = type(inline) == "table" and type(inline.enable) == "function",
    has_completion = type(completion) == "table" and type(completion.enable) == "function",
  }
end

return M
