-- Options of require("hearth").setup(): defaults, validation, and the mapping of the
-- snake_case Lua options to the server's camelCase settings (docs/lsp.md, "Settings").
-- Everything here is pure Lua (no vim.* calls) so that it can be unit tested anywhere.
local M = {}

-- Server settings: Lua option -> server key, expected type and the range the server
-- accepts. Only options the user set are sent; the server keeps its defaults for the rest.
M.server_options = {
  model = { key = "model", type = "string", path = true },
  backend = { key = "backend", type = "string", one_of = { "auto", "cpu", "vulkan" } },
  context_size = { key = "contextSize", type = "integer", min = 256, max = 1048576 },
  context_tokens = { key = "contextTokens", type = "integer", min = 0, max = 1048576 },
  max_tokens = { key = "maxTokens", type = "integer", min = 1, max = 4096 },
  max_tokens_automatic = { key = "maxTokensAutomatic", type = "integer", min = 1, max = 4096 },
  automatic_latency_ms = { key = "automaticLatencyMs", type = "integer", min = 0, max = 60000 },
  max_suffix_tokens_automatic = { key = "maxSuffixTokensAutomatic", type = "integer", min = 0, max = 1048576 },
  max_lines = { key = "maxLines", type = "integer", min = 0, max = 1000 },
  temperature = { key = "temperature", type = "number", min = 0, max = 2 },
  debounce_ms = { key = "debounceMs", type = "integer", min = 0, max = 5000 },
  cache_dir = { key = "cacheDir", type = "string", path = true },
  cache_max_mb = { key = "cacheMaxMb", type = "integer", min = 0, max = 1048576 },
  cache_total_max_mb = { key = "cacheTotalMaxMb", type = "integer", min = 0, max = 16777216 },
  fim_template = {
    key = "fimTemplate",
    type = "string",
    one_of = { "", "qwen", "deepseek", "starcoder2", "codellama" },
  },
  context_exclude = { key = "contextExclude", type = "string_list" },
  context_secrets = { key = "contextSecrets", type = "string_list" },
  rewrite_max_tokens = { key = "rewriteMaxTokens", type = "integer", min = 1, max = 8192 },
  rewrite_instruction = { key = "rewriteInstruction", type = "string" },
  log_level = {
    key = "logLevel",
    type = "string",
    one_of = { "trace", "debug", "info", "warn", "error", "off" },
  },
}

-- Options of the plugin itself (never sent to the server).
M.plugin_defaults = {
  path = "hearth", -- the binary; found on PATH unless it is a path
  cmd = nil, -- the whole command as a list; overrides `path` (e.g. { "hearth", "lsp", "-v" })
  filetypes = nil, -- nil: every buffer that holds a file
  root_markers = { ".git" }, -- the nearest folder holding one of these is a workspace folder
  inline = true, -- Neovim >= 0.12: vim.lsp.inline_completion.enable()
  keymaps = { accept = "<Tab>", next = "<M-]>", prev = "<M-[>" }, -- inline only; false: none
  omnifunc = true, -- classic completion: set 'omnifunc' to vim.lsp.omnifunc on attach
  notify_no_inline = true, -- one warning on Neovim < 0.12 saying what works instead
  on_attach = nil, -- function(client, bufnr)
}

local plugin_types = {
  path = "string",
  cmd = "string_list",
  filetypes = "string_list",
  root_markers = "string_list",
  inline = "boolean",
  keymaps = "table_or_false",
  omnifunc = "boolean",
  notify_no_inline = "boolean",
  on_attach = "function",
}

-- The camelCase spelling of docs/lsp.md is accepted too (model, maxTokens, ...).
local by_server_key = {}
for name, spec in pairs(M.server_options) do
  by_server_key[spec.key] = name
end

local function is_integer(v)
  return type(v) == "number" and v == math.floor(v) and v > -math.huge and v < math.huge
end

local function is_string_list(v)
  if type(v) ~= "table" then
    return false
  end
  local n = 0
  for _ in pairs(v) do
    n = n + 1
  end
  for i = 1, n do
    if type(v[i]) ~= "string" then
      return false
    end
  end
  return true
end

local function check_type(kind, v)
  if kind == "integer" then
    return is_integer(v)
  elseif kind == "number" then
    return type(v) == "number" and v == v
  elseif kind == "string_list" then
    return is_string_list(v)
  elseif kind == "table_or_false" then
    return type(v) == "table" or v == false
  end
  return type(v) == kind
end

local type_words = {
  integer = "an integer",
  number = "a number",
  string = "a string",
  string_list = "a list of strings",
  boolean = "true or false",
  ["function"] = "a function",
  table_or_false = "a table or false",
}

-- "~/models/m.gguf" -> "/home/me/models/m.gguf" (only a leading "~" or "~/").
function M.expand_home(path, home)
  if type(path) ~= "string" or home == nil or home == "" then
    return path
  end
  if path == "~" then
    return home
  end
  if path:sub(1, 2) == "~/" then
    return home .. path:sub(2)
  end
  return path
end

local function contains(list, value)
  for _, v in ipairs(list) do
    if v == value then
      return true
    end
  end
  return false
end

local function quoted_list(list)
  local out = {}
  for i, v in ipairs(list) do
    out[i] = string.format("%q", v)
  end
  return table.concat(out, ", ")
end

local function copy_list(v)
  local out = {}
  for i, s in ipairs(v) do
    out[i] = s
  end
  return out
end

-- The keys of `t` in a stable order (also used by hearth.status).
function M.sorted_keys(t)
  local keys = {}
  for k in pairs(t) do
    keys[#keys + 1] = k
  end
  table.sort(keys, function(a, b)
    return tostring(a) < tostring(b)
  end)
  return keys
end

-- Maps setup() options to the server's settings object.
-- opts: the table given to setup(); env: { home = "/home/me" } for "~" expansion.
-- Returns settings (camelCase keys, only the options that were set and valid) and a list
-- of error strings (unknown options, wrong types, values out of range); a bad option is
-- left out so that the server keeps its previous value.
function M.to_server_settings(opts, env)
  env = env or {}
  local settings, errors = {}, {}
  for _, name in ipairs(M.sorted_keys(opts or {})) do
    local value = opts[name]
    local option = name
    if M.server_options[option] == nil and by_server_key[option] ~= nil then
      option = by_server_key[option]
    end
    local spec = M.server_options[option]
    if spec == nil then
      if plugin_types[name] == nil then
        errors[#errors + 1] = string.format("unknown option '%s'", tostring(name))
      end
    elseif not check_type(spec.type, value) then
      errors[#errors + 1] =
        string.format("option '%s' must be %s, got %s", name, type_words[spec.type], type(value))
    elseif spec.one_of and not contains(spec.one_of, value) then
      errors[#errors + 1] = string.format(
        "option '%s' must be one of %s, got %q",
        name,
        quoted_list(spec.one_of),
        value
      )
    elseif (spec.min and value < spec.min) or (spec.max and value > spec.max) then
      errors[#errors + 1] =
        string.format("option '%s' must be between %s and %s, got %s", name, spec.min, spec.max, value)
    else
      if spec.type == "string_list" then
        value = copy_list(value)
      elseif spec.path then
        value = M.expand_home(value, env.home)
      end
      settings[spec.key] = value
    end
  end
  return settings, errors
end

-- The plugin's own options with defaults filled in, and errors for wrong types.
function M.plugin_options(opts)
  opts = opts or {}
  local out, errors = {}, {}
  for name, default in pairs(M.plugin_defaults) do
    if type(default) == "table" then
      local t = {}
      for k, v in pairs(default) do
        t[k] = v
      end
      default = t
    end
    out[name] = default
  end
  for _, name in ipairs(M.sorted_keys(opts)) do
    local kind = plugin_types[name]
    if kind ~= nil then
      local value = opts[name]
      if value ~= nil and not check_type(kind, value) then
        errors[#errors + 1] =
          string.format("option '%s' must be %s, got %s", name, type_words[kind], type(value))
      elseif name == "keymaps" and type(value) == "table" then
        local keys = {}
        for k, v in pairs(M.plugin_defaults.keymaps) do
          keys[k] = v
        end
        for k, v in pairs(value) do
          keys[k] = v
        end
        out.keymaps = keys
      else
        out[name] = value
      end
    end
  end
  return out, errors
end

-- The command that starts the server: `cmd` when given, else { path, "lsp" }.
function M.server_cmd(plugin_opts)
  if plugin_opts.cmd ~= nil and #plugin_opts.cmd > 0 then
    return copy_list(plugin_opts.cmd)
  end
  return { plugin_opts.path or "hearth", "lsp" }
end

-- True when a `cmd` given by the user already passes the model (--model/-m).
function M.cmd_has_model(plugin_opts)
  for _, a in ipairs(plugin_opts.cmd or {}) do
    if a == "--model" or a == "-m" or a:sub(1, 8) == "--model=" then
      return true
    end
  end
  return false
end

return M
