-- A small test runner for Neovim, run headlessly:
--
--   HEARTH_NVIM_TEST=unit nvim --headless -u NONE -i NONE -c "luafile tests/neovim/runner.lua"
--
-- HEARTH_NVIM_TEST names the spec file (tests/neovim/<name>_spec.lua). A spec returns
-- function(t), which registers tests with t.test(name, fn) and may call t.skip(reason)
-- to skip all of them. Each test runs in pcall; the runner prints one line per test, then
-- "N passed, N failed" (", N skipped" when skipped), and quits Neovim with exit code 0
-- (all passed), 1 (a failure) or 77 (skipped; ctest's SKIP_RETURN_CODE).
local here = debug.getinfo(1, "S").source:sub(2)
local dir = vim.fn.fnamemodify(here, ":p:h")
local repo = vim.fn.fnamemodify(dir, ":h:h")
vim.opt.runtimepath:prepend(repo .. "/editors/neovim")

local out = io.stdout
local function say(...)
  out:write(string.format(...), "\n")
  out:flush()
end

local t = { repo = repo, dir = dir }
local tests = {}
local skip_reason = nil

function t.test(name, fn)
  tests[#tests + 1] = { name = name, fn = fn }
end

function t.skip(reason)
  skip_reason = reason
end

local function show(v)
  if type(v) == "string" then
    return string.format("%q", v)
  end
  return vim.inspect(v)
end

local function fail(msg, level)
  error(msg, (level or 1) + 2)
end

function t.eq(actual, expected, what)
  if not vim.deep_equal(actual, expected) then
    fail(string.format("%s: expected %s, got %s", what or "value", show(expected), show(actual)))
  end
end

function t.truthy(v, what)
  if not v then
    fail(string.format("%s: expected a true value, got %s", what or "value", show(v)))
  end
  return v
end

function t.falsy(v, what)
  if v then
    fail(string.format("%s: expected false or nil, got %s", what or "value", show(v)))
  end
end

-- Lua pattern match.
function t.match(s, pattern, what)
  if type(s) ~= "string" or not s:match(pattern) then
    fail(string.format("%s: %s does not match %q", what or "string", show(s), pattern))
  end
  return s:match(pattern)
end

-- Plain substring.
function t.contains(s, part, what)
  if type(s) ~= "string" or not s:find(part, 1, true) then
    fail(string.format("%s: %s does not contain %q", what or "string", show(s), part))
  end
end

-- Waits (processing events) until cond() is true; fails after timeout_ms.
function t.wait(timeout_ms, cond, what)
  local ok = vim.wait(timeout_ms, cond, 20)
  if not ok then
    fail(string.format("timed out after %d ms waiting for %s", timeout_ms, what or "a condition"))
  end
end

local function finish(code)
  -- Stop language servers without waiting for them before leaving.
  pcall(function()
    for _, c in pairs((vim.lsp.get_clients or vim.lsp.get_active_clients)()) do
      if vim.fn.has("nvim-0.11") == 1 then
        c:stop(true)
      else
        c.stop(true)
      end
    end
  end)
  vim.cmd("cquit " .. code)
end

local name = vim.env.HEARTH_NVIM_TEST or "unit"
local spec_path = dir .. "/" .. name .. "_spec.lua"
local ok, spec = pcall(dofile, spec_path)
if not ok or type(spec) ~= "function" then
  say("error: cannot load %s: %s", spec_path, tostring(spec))
  say("0 passed, 1 failed")
  finish(1)
  return
end
local started = vim.loop.hrtime()
local ok_reg, err_reg = pcall(spec, t)
if not ok_reg then
  say("error: %s: %s", spec_path, tostring(err_reg))
  say("0 passed, 1 failed")
  finish(1)
  return
end
if skip_reason ~= nil then
  say("SKIP %s: %s", name, skip_reason)
  say("0 passed, 0 failed, %d skipped", math.max(#tests, 1))
  finish(77)
  return
end

local passed, failed = 0, 0
for _, case in ipairs(tests) do
  local t0 = vim.loop.hrtime()
  local ok_case, err = xpcall(case.fn, debug.traceback)
  local ms = (vim.loop.hrtime() - t0) / 1e6
  if ok_case then
    passed = passed + 1
    say("ok   %s (%.0f ms)", case.name, ms)
  else
    failed = failed + 1
    say("FAIL %s (%.0f ms)\n     %s", case.name, ms, tostring(err):gsub("\n", "\n     "))
  end
end
say("%s: %.1f s", name, (vim.loop.hrtime() - started) / 1e9)
say("%d passed, %d failed", passed, failed)
finish(failed == 0 and passed > 0 and 0 or 1)
