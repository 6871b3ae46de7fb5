"""The Lua scripts of the shared state: each one atomic step on Redis (a table of sources).

Every script takes the key prefix as ``ARGV[1]`` and builds its keys from
it, so one Redis database may hold several registries' state under
different prefixes (tests do).  The data model (see ``docs/replicas.rst``)::

    <P>gen                 generation of the index data, INCR'd when a build begins
    <P>ready               "<gen>:<run_id>": the data of <gen> is complete on the
                           Redis server whose INFO run_id is <run_id>
    <P>build               the builder's token (PX lease, renewed)
    <P>building            "<gen>:<run_id>" of the build in progress
    <P>g<gen>:catalog      ZSET, score 0: catalog_key(name) of every repository
    <P>g<gen>:packs        ZSET, score 0: catalog_key(name) of every listed pack
    <P>g<gen>:pack:<name>  HASH: state (tags' summaries and parent tags, JSON), doc
                           (its _packs document, JSON; absent when not listed)
    <P>lock:<name>         the token of the process whose turn it is (PX lease, renewed)
    <P>pending             HASH name -> token of a turn that has not finished cleanly
    <P>throttle:<client>   the login throttle's entry of one client key (JSON, see below;
                           PX: it expires when nothing in it matters any more)

A server restarted (from an old snapshot, or empty) has another run_id, so
its data is never taken as complete: readers get "not ready" and one process
rebuilds it from storage.  A catalog key turns '/' into NUL, which sorts
before every other byte: distribution's order.
"""

from __future__ import annotations

__all__ = ["SCRIPTS"]

# Lua 5.1 as Redis runs it; `redis.call('GET', k)` is false for a missing key.
_COMMON = """
local P = ARGV[1]
local function run_id()
  return string.match(redis.call('INFO', 'server'), 'run_id:(%x+)')
end
local function generation()
  return redis.call('GET', P .. 'gen') or '0'
end
local function ready(gen)
  return redis.call('GET', P .. 'ready') == gen .. ':' .. run_id()
end
local function data(gen, name)
  return P .. 'g' .. gen .. ':' .. name
end
"""

#: name -> Lua source (after the common preamble); ARGV[1] is always the prefix
SCRIPTS: dict[str, str] = {  # a table of scripts, one per atomic step
    # ARGV: start ('-' or '(' .. key), n  ->  {0} not ready | {1, members}
    "read_catalog": """
local gen = generation()
if not ready(gen) then return {0} end
local n = tonumber(ARGV[3])
return {1, redis.call('ZRANGEBYLEX', data(gen, 'catalog'), ARGV[2], '+', 'LIMIT', 0, n + 1)}
""",
    # ARGV: start, n  ->  {0} | {1, members (n + 1 at most), docs (n at most)}
    "read_packs": """
local gen = generation()
if not ready(gen) then return {0} end
local n = tonumber(ARGV[3])
local members = redis.call('ZRANGEBYLEX', data(gen, 'packs'), ARGV[2], '+', 'LIMIT', 0, n + 1)
local docs = {}
for i = 1, math.min(n, #members) do
  local name = (string.gsub(members[i], '%z', '/'))
  docs[i] = redis.call('HGET', data(gen, 'pack:' .. name), 'doc') or ''
end
return {1, members, docs}
""",
    # ARGV: member...  ->  the generation written to
    "add_repositories": """
local gen = generation()
local args = {}
for i = 2, #ARGV do
  args[#args + 1] = 0
  args[#args + 1] = ARGV[i]
end
if #args > 0 then redis.call('ZADD', data(gen, 'catalog'), unpack(args)) end
return gen
""",
    # ARGV: name  ->  {gen, state or ''}
    "read_state": """
local gen = generation()
return {gen, redis.call('HGET', data(gen, 'pack:' .. ARGV[2]), 'state') or ''}
""",
    # ARGV: name, member, token ('' = no turn), gen read, state ('' = none), doc ('' = unlisted)
    "write_pack": """
if ARGV[4] ~= '' and redis.call('GET', P .. 'lock:' .. ARGV[2]) ~= ARGV[4] then return 'LOST' end
local gen = generation()
if gen ~= ARGV[5] then return 'GEN' end
local h = data(gen, 'pack:' .. ARGV[2])
if ARGV[6] == '' then redis.call('DEL', h) else redis.call('HSET', h, 'state', ARGV[6]) end
if ARGV[7] == '' then
  redis.call('HDEL', h, 'doc')
  redis.call('ZREM', data(gen, 'packs'), ARGV[3])
else
  redis.call('HSET', h, 'doc', ARGV[7])
  redis.call('ZADD', data(gen, 'packs'), 0, ARGV[3])
end
return 'OK'
""",
    # ARGV: name, token, lease ms  ->  {0} held elsewhere | {1, token of an unfinished turn or ''}
    "acquire": """
if not redis.call('SET', P .. 'lock:' .. ARGV[2], ARGV[3], 'NX', 'PX', ARGV[4]) then return {0} end
local previous = redis.call('HGET', P .. 'pending', ARGV[2]) or ''
redis.call('HSET', P .. 'pending', ARGV[2], ARGV[3])
return {1, previous}
""",
    # ARGV: key suffix ('lock:<name>' or 'build'), token, lease ms  ->  1 renewed | 0 lost
    "renew": """
local k = P .. ARGV[2]
if redis.call('GET', k) ~= ARGV[3] then return 0 end
redis.call('PEXPIRE', k, ARGV[4])
return 1
""",
    # ARGV: name, token, clean ('1'/'0')  ->  1 the lease was still ours | 0 lost
    "release": """
local lk = P .. 'lock:' .. ARGV[2]
local pk = P .. 'pending'
local mine = redis.call('GET', lk) == ARGV[3]
if mine then redis.call('DEL', lk) end
if mine and ARGV[4] == '1' then
  if redis.call('HGET', pk, ARGV[2]) == ARGV[3] then redis.call('HDEL', pk, ARGV[2]) end
elseif not mine then
  -- the lease ran out under us: whoever takes the next turn repairs from storage
  redis.call('HSET', pk, ARGV[2], ARGV[3])
end
if mine then return 1 end
return 0
""",
    # ->  names whose turn was left unfinished and that nobody holds now
    "unfinished": """
local out = {}
for _, name in ipairs(redis.call('HKEYS', P .. 'pending')) do
  if redis.call('EXISTS', P .. 'lock:' .. name) == 0 then out[#out + 1] = name end
end
return out
""",
    # ->  {ready 0/1, a build in progress 0/1, gen}
    "status": """
local gen = generation()
return {ready(gen) and 1 or 0, redis.call('EXISTS', P .. 'build'), gen}
""",
    # ARGV: token, lease ms  ->  the new generation | false (another process builds)
    "build_begin": """
if not redis.call('SET', P .. 'build', ARGV[2], 'NX', 'PX', ARGV[3]) then return false end
local gen = redis.call('INCR', P .. 'gen')
redis.call('SET', P .. 'building', gen .. ':' .. run_id())
return gen
""",
    # ARGV: token  ->  1 the index is ready | 0 overtaken (lease lost, server restarted)
    "build_end": """
if redis.call('GET', P .. 'build') ~= ARGV[2] then return 0 end
redis.call('DEL', P .. 'build')
local marker = generation() .. ':' .. run_id()
if redis.call('GET', P .. 'building') ~= marker then return 0 end
redis.call('SET', P .. 'ready', marker)
redis.call('DEL', P .. 'building')
return 1
""",
}

# The login throttle (paxd.shared.throttle).  A client's entry is {"f": [[time, user], ...]
# failures within the window, "a": [time, ...] admissions in flight (each one forgotten after
# the lease: a killed replica's attempts do not hold their slots for ever), "b": blocked until}.
# Times are the callers' clocks in whole milliseconds (exact in cjson's 14 digits), and so are
# the durations; a user is "=" .. name, or "" for none.
# ARGV[2..7]: client key, now, max_failures, window, block_for, lease.
_THROTTLE = """
local K = P .. 'throttle:' .. ARGV[2]
local now, limit = tonumber(ARGV[3]), tonumber(ARGV[4])
local window, block_for, lease = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local function load()
  local raw = redis.call('GET', K)
  local s = raw and cjson.decode(raw) or {}
  local f, a = {}, {}
  for _, e in ipairs(s.f or {}) do
    if e[1] > now - window then f[#f + 1] = e end
  end
  for _, t in ipairs(s.a or {}) do
    if t > now - lease then a[#a + 1] = t end
  end
  return {f = f, a = a, b = s.b or 0}
end
local function save(s)
  local ttl = s.b - now
  for _, e in ipairs(s.f) do ttl = math.max(ttl, e[1] + window - now) end
  for _, t in ipairs(s.a) do ttl = math.max(ttl, t + lease - now) end
  if ttl <= 0 then
    redis.call('DEL', K)
  else
    redis.call('SET', K, cjson.encode(s), 'PX', ttl)
  end
end
local function fail(s, user)
  s.f[#s.f + 1] = {now, user}
  if #s.f >= limit then
    s.b = math.max(s.b, now + block_for)
    s.f = {}
  end
end
local function blocked(s)
  return math.max(0, s.b - now)
end
"""

SCRIPTS.update(
    {
        # ->  {1} admitted | {0, ms blocked, 1} | {0, 0, 0} the attempts in flight fill it
        "throttle_admit": _THROTTLE
        + """
local s = load()
if s.b > now then return {0, blocked(s), 1} end
if #s.f + #s.a >= limit then return {0, 0, 0} end
s.a[#s.a + 1] = now
save(s)
return {1}
""",
        # ARGV[8..9]: outcome ('failed', 'succeeded', 'abandoned'), user  ->  ms blocked
        "throttle_settle": _THROTTLE
        + """
local s = load()
local oldest = nil
for i, t in ipairs(s.a) do
  if oldest == nil or t < s.a[oldest] then oldest = i end
end
if oldest ~= nil then table.remove(s.a, oldest) end
if ARGV[8] == 'failed' then
  fail(s, ARGV[9])
elseif ARGV[8] == 'succeeded' then
  local kept = {}
  for _, e in ipairs(s.f) do
    if e[2] ~= ARGV[9] then kept[#kept + 1] = e end
  end
  s.f = kept
end
save(s)
return blocked(s)
""",
        # ARGV[8]: user  ->  ms blocked
        "throttle_fail": _THROTTLE
        + """
local s = load()
fail(s, ARGV[8])
save(s)
return blocked(s)
""",
    }
)

SCRIPTS = {name: _COMMON + source for name, source in SCRIPTS.items()}
