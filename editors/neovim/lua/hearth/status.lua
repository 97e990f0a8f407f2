-- What the statusline and :HearthStatus show, built from the server's `hearth/status`
-- notifications (docs/lsp.md, "Notifications from the server"). The functions here are
-- pure: they take and return plain tables and strings.
local M = {}

-- The state before any server was started: status() gives "".
function M.initial()
  return { state = "off", workspaces = {} }
end

local function copy(t)
  local out = {}
  for k, v in pairs(t or {}) do
    out[k] = v
  end
  return out
end

-- Sets the state by hand ("starting", "loading", "ready", "error", "off"). The last error
-- message is kept until the state becomes "ready" (or a new message is given).
function M.with_state(state, new_state, message)
  local out = copy(state)
  out.state = new_state
  if message ~= nil then
    out.message = message
  elseif new_state == "ready" or new_state == "off" then
    out.message = nil
  end
  return out
end

-- Applies one `hearth/status` notification's params; returns the new state table.
--   model_loaded -> ready; model_error -> error (message kept);
--   completion / rewrite -> the call's statistics become the "last" ones;
--   workspace_indexed -> the folder's file count.
-- The last notification is kept whole as `last`.
function M.apply(state, params)
  local out = copy(state or M.initial())
  out.workspaces = copy(out.workspaces)
  if type(params) ~= "table" then
    return out
  end
  out.last = params
  local event = params.event
  if params.backend ~= nil and params.backend ~= "" then
    out.backend = params.backend
  end
  if params.device ~= nil and params.device ~= "" then
    out.device = params.device
  end
  if event == "model_loaded" then
    out.state = "ready"
    out.message = nil
  elseif event == "model_error" then
    out.state = "error"
    out.message = params.message
  elseif event == "completion" or event == "rewrite" then
    out.last_call = params
    if out.state ~= "error" then
      out.state = "ready"
    end
  elseif event == "workspace_indexed" and params.root ~= nil then
    out.workspaces[params.root] = params.files
  end
  if params.state == "ready" or params.state == "error" or params.state == "loading" then
    out.state = params.state
  end
  return out
end

-- Applies a `$/progress` value of the model load: "begin" means loading, "end" says how
-- it went. (The server may hold progress back until the client has answered
-- window/workDoneProgress/create, so begin and end can arrive after the model_loaded or
-- model_error notification; the end puts the state back.)
function M.apply_progress(state, value)
  if type(value) ~= "table" then
    return state
  end
  if value.kind == "begin" and value.message == "Loading model" then
    return M.with_state(state, "loading")
  elseif value.kind == "end" and value.message == "Model loaded" then
    return M.with_state(state, "ready")
  elseif value.kind == "end" and value.message == "Model failed to load" then
    return M.with_state(state, "error")
  end
  return state
end

local function num(v)
  if type(v) == "number" then
    return v
  end
  return 0
end

local function int(v)
  return math.floor(num(v) + 0.5)
end

local function rate(v)
  return string.format("%.1f tok/s", num(v))
end

-- The short statusline text:
--   ""                                             no server started
--   "hearth: loading"                              starting, or loading the model
--   "hearth: error"                                the model failed to load
--   "hearth: ready"                                loaded, no completion yet
--   "hearth: ready | 42.1 tok/s | reused 120, restored 0, prefilled 35"
function M.format(state)
  if state == nil or state.state == nil or state.state == "off" then
    return ""
  end
  local s = state.state
  if s == "starting" then
    s = "loading"
  end
  local text = "hearth: " .. s
  local call = state.last_call
  if s == "ready" and call ~= nil then
    text = string.format(
      "%s | %s | reused %d, restored %d, prefilled %d",
      text,
      rate(call.tokens_per_second),
      int(call.reused_tokens),
      int(call.restored_tokens),
      int(call.prefilled_tokens)
    )
  end
  return text
end

local function bytes(n)
  n = num(n)
  if n >= 1024 * 1024 * 1024 then
    return string.format("%.1f GiB", n / (1024 * 1024 * 1024))
  elseif n >= 1024 * 1024 then
    return string.format("%.1f MiB", n / (1024 * 1024))
  elseif n >= 1024 then
    return string.format("%.1f KiB", n / 1024)
  end
  return string.format("%d B", n)
end

local function yes_no(b)
  return b and "yes" or "no"
end

local function nonempty(v)
  return type(v) == "string" and v ~= ""
end

local sorted_keys = require("hearth.config").sorted_keys

local function scalar(v)
  if type(v) == "table" then
    local parts = {}
    for i, x in ipairs(v) do
      parts[i] = tostring(x)
    end
    return "[" .. table.concat(parts, ", ") .. "]"
  elseif type(v) == "string" then
    return string.format("%q", v)
  end
  return tostring(v)
end

-- The lines :HearthStatus prints, from the `hearth.status` command's result (server) and
-- the plugin's state (for the last notification). Either may be nil.
function M.describe(server, state)
  local lines = {}
  local function add(fmt, ...)
    lines[#lines + 1] = string.format(fmt, ...)
  end
  state = state or M.initial()
  if server == nil then
    add("hearth: %s (no answer from the server)", state.state or "off")
  else
    local where = ""
    if nonempty(server.backend) then
      where = " on " .. server.backend
      if nonempty(server.device) then
        where = where .. " (" .. server.device .. ")"
      end
    end
    add("hearth: %s%s", tostring(server.state), where)
    if nonempty(server.error) then
      add("error: %s", server.error)
    end
    add(
      "documents: %d, pending completions: %d, running: %s, superseded: %d",
      int(server.documents),
      int(server.pendingCompletions),
      yes_no(server.running),
      int(server.superseded)
    )
    local ws = server.workspace
    if type(ws) == "table" then
      local folders = type(ws.folders) == "table" and ws.folders or {}
      if #folders == 0 then
        add("workspace: none (no repository context)")
      end
      for _, f in ipairs(folders) do
        local n = int(f.indexedFiles)
        add(
          "workspace: %s (%d %s indexed%s)",
          tostring(f.root),
          n,
          n == 1 and "file" or "files",
          f.scanning and ", scanning" or ""
        )
      end
    end
    local cache = server.cache
    if type(cache) == "table" then
      if cache.enabled then
        add(
          "disk cache: %s, %d entries, %s, hits %d, misses %d, writes %d",
          tostring(cache.dir),
          int(cache.entries),
          bytes(cache.bytes),
          int(cache.hits),
          int(cache.misses),
          int(cache.writes)
        )
      else
        add("disk cache: off%s", nonempty(cache.error) and (" (" .. cache.error .. ")") or "")
      end
    end
  end
  local call = (server and type(server.lastStats) == "table" and server.lastStats) or state.last_call
  if call ~= nil then
    add(
      "last completion: %d tokens generated, %s, %d ms (prefill %d ms, restore %d ms, decode %d ms)",
      int(call.generated_tokens),
      rate(call.tokens_per_second),
      int(call.ms_total),
      int(call.ms_prefill),
      int(call.ms_restore),
      int(call.ms_decode)
    )
    add(
      "last prompt: %d tokens (%d repository context): reused %d, restored %d, prefilled %d",
      int(call.prompt_tokens),
      int(call.context_tokens),
      int(call.reused_tokens),
      int(call.restored_tokens),
      int(call.prefilled_tokens)
    )
  else
    add("last completion: none yet")
  end
  if server ~= nil and type(server.settings) == "table" then
    local parts = {}
    for _, k in ipairs(sorted_keys(server.settings)) do
      parts[#parts + 1] = k .. "=" .. scalar(server.settings[k])
    end
    add("settings: %s", table.concat(parts, ", "))
  end
  return lines
end

return M
