-- The original HTTP API on top of Envoy's gRPC-JSON transcoder, kept byte for byte.
--
-- Runs before the transcoder. On the way in it accepts each documented path with or
-- without its trailing slash (Envoy refuses a trailing "/" in a google.api.http template),
-- answers 405 for a wrong method on a known path, 404 for any other path, 413 for a body
-- over the limit and 422 for an empty body (malformed ones get 422 from
-- local_reply_config, after the transcoder refused them). On the way out it sets the documented status code and turns gRPC errors
-- into {"message": ...} bodies. Native gRPC requests (content-type application/grpc*) pass
-- through untouched.
--
-- Replies Envoy makes itself for these requests (including this filter's respond()) are
-- shaped into {"message": ...} by local_reply_config in envoy.template.yaml, which also
-- JSON-escapes.
--
-- A template: scripts/render_envoy.py fills in $${MAX_REQUEST_BYTES}, $${MAX_VALUE_DEPTH} and
-- $${V2_ROUTES}.

local MAX_BODY_BYTES = ${MAX_REQUEST_BYTES}

-- API v2: each path template of the protos (a Lua pattern) and its methods, rendered by
-- scripts/render_envoy.py from the descriptor set: a known path with another method is
-- 405 here, as v1's are (the transcoder alone would answer 404).
local V2_ROUTES = {
${V2_ROUTES}
}

local ROUTES = {
  ["/api/register"] = {method = "POST", operation = "register"},
  ["/api/login"] = {method = "POST", operation = "login"},
  ["/api/logout"] = {method = "GET", operation = "logout"},
  ["/api/read"] = {method = "POST", operation = "read"},
  ["/api/write"] = {method = "POST", operation = "write"},
  ["/.well-known/jwks.json"] = {method = "GET", operation = "jwks"},
}

-- The one gRPC status -> HTTP status table of the gateway. DEFAULT is the usual mapping
-- (google/rpc/code.proto); the original API differs per operation.
local DEFAULT = {
  [0] = 200, [1] = 499, [2] = 500, [3] = 400, [4] = 504, [5] = 404, [6] = 409, [7] = 403,
  [8] = 429, [9] = 400, [10] = 409, [11] = 400, [12] = 501, [13] = 500, [14] = 503,
  [15] = 500, [16] = 401,
}
local BY_OPERATION = {
  register = {[0] = 201, [6] = 400},   -- login taken: 400
  login = {[0] = 201, [16] = 404},     -- wrong login or password: 404 {"token": "-", ...};
                                       -- throttled (8): 429 with Retry-After, as DEFAULT
  read = {[5] = 400},                  -- absent keys: 400
  write = {[0] = 201},
}

local METADATA = "tkv.http_api"
-- Marks HTTP/JSON requests for local_reply_config (see envoy.template.yaml).
local MARKER = "x-tkv-api"

local JSON_ESCAPES = {
  ['"'] = '\\"', ['\\'] = '\\\\', ['\b'] = '\\b', ['\f'] = '\\f',
  ['\n'] = '\\n', ['\r'] = '\\r', ['\t'] = '\\t',
}

local function json_string(text)
  local escaped = text:gsub('[%c"\\]', function(c)
    return JSON_ESCAPES[c] or string.format('\\u%04x', c:byte())
  end)
  return '"' .. escaped .. '"'
end

-- grpc-message is percent-encoded on the wire (gRPC over HTTP/2 spec).
local function percent_decode(text)
  return (text:gsub('%%(%x%x)', function(hex) return string.char(tonumber(hex, 16)) end))
end

local function http_status(operation, grpc_status)
  local override = BY_OPERATION[operation]
  return (override and override[grpc_status]) or DEFAULT[grpc_status] or 500
end

-- A local reply: local_reply_config turns the text into {"message": "<text>"}.
local function reply(handle, status, message, extra_headers)
  local headers = {[":status"] = tostring(status)}
  for name, value in pairs(extra_headers or {}) do headers[name] = value end
  handle:respond(headers, message)
end

-- The methods declared for a v2 path, or nil for a path no template matches.
local function v2_methods(path)
  local allowed, seen = nil, {}
  for _, route in ipairs(V2_ROUTES) do
    if path:find(route[1]) then
      allowed = allowed or {}
      for _, method in ipairs(route[2]) do
        if not seen[method] then
          seen[method] = true
          table.insert(allowed, method)
        end
      end
    end
  end
  return allowed, seen
end

local function not_allowed(handle, method, path, allowed)
  local list = table.concat(allowed, ", ")
  return reply(handle, 405, "method " .. method .. " is not allowed on " .. path .. "; use " .. list,
    {allow = list})
end

-- grpc-core's own words when a message exceeds the server's limit (a chunked body has no
-- Content-Length to check here, so the service is the one to notice).
local function too_large(grpc_status, message)
  return grpc_status == 8 and message:find("larger than max", 1, true) ~= nil
end

-- A Write whose value nests past what the transcoder reads. Its JSON parser stops at 100
-- nested objects/arrays, the request's own two included (measured on Envoy 1.40: a value
-- 98 deep reaches kv_svc, 99 does not), and the refusal is a transcoding failure, like a
-- body that is not JSON, which local_reply_config answers 422. The depth is a rule of the
-- value, which is 400 (docs/api.md); kv_svc's own limit (TKV_KV_MAX_VALUE_DEPTH, at most
-- 32) is far below, so the text states it. The parser stops where it meets the depth, so
-- whether the rest of the body is JSON, or `data` an object, is not known: such a body,
-- malformed after its 99th level, is answered 400 too (docs/api.md). The text names no key:
-- the transcoder names only the innermost member, and the body is not read here. Only the
-- transcoder's own words at the start count; a client's text it quotes does not.
local TOO_DEEP = '{"message":"Incorrect request structure: Message too deep. Max recursion depth reached'
local TOO_DEEP_MESSAGE = "Incorrect value of a key (it is nested deeper than ${MAX_VALUE_DEPTH} levels of objects/arrays)"

local function nested_too_deep(handle, operation)
  if operation ~= "write" or handle:headers():get(":status") ~= "422" then
    return false
  end
  local body = handle:body()
  return body ~= nil and body:length() >= #TOO_DEEP and body:getBytes(0, #TOO_DEEP) == TOO_DEEP
end

function envoy_on_request(handle)
  local headers = handle:headers()
  if (headers:get("content-type") or ""):find("^application/grpc") then
    -- gRPC is POST only: another method would reach a service as a malformed call (kv_svc
    -- answered FROBNICATE with INTERNAL, "Error parsing ':method' metadata").
    if headers:get(":method") ~= "POST" then
      -- As a gRPC server answers a call it does not serve: UNIMPLEMENTED, in a trailers-only
      -- reply (Envoy would turn a plain 405 into UNKNOWN).
      local message = "method " .. headers:get(":method") .. " is not allowed on " .. headers:get(":path") .. "; use POST"
      return handle:respond({[":status"] = "200", ["content-type"] = "application/grpc", ["grpc-status"] = "12",
        ["grpc-message"] = message, allow = "POST"}, "")
    end
    return
  end
  local path, query = headers:get(":path"):match("^([^?]*)(.*)")
  if path:sub(1, 4) == "/v2/" then
    -- API v2: the transcoder routes it by the proto annotations, and errors are its JSON
    -- google.rpc.Status with the standard status mapping (envoy.template.yaml).
    headers:replace(MARKER, "v2")
    local allowed, methods = v2_methods(path)
    if allowed ~= nil and not methods[headers:get(":method")] then
      return not_allowed(handle, headers:get(":method"), path, allowed)
    end
    -- The transcoder's streaming JSON parser never finishes a body that is a bare number
    -- ("PUT .../pairs/n" with body `1`): it waits for a character that ends the number
    -- and the call times out (measured on Envoy 1.40). A newline after a small body ends
    -- it; small bodies only, since reading a body here buffers it whole.
    local length = tonumber(headers:get("content-length") or "")
    if headers:get(":method") == "PUT" and length ~= nil and length > 0 and length <= 64 then
      local body = handle:body()
      local text = body:getBytes(0, body:length())
      if not text:find("%s$$") then
        body:setBytes(text .. "\n")
        -- Waiting for the body ended the scope of `headers`: fetch them again.
        handle:headers():replace("content-length", tostring(#text + 1))
      end
    end
    return
  end
  if path == "/docs" or path:sub(1, 6) == "/docs/" or path == "/ui" or path:sub(1, 4) == "/ui/" then
    if headers:get(":method") ~= "GET" then
      headers:replace(MARKER, "http")
      return not_allowed(handle, headers:get(":method"), path, {"GET"})
    end
    return  -- the API reference's and the console's pages and assets, answered by Envoy's routes
  end
  if path == "/openapi.json" then
    if headers:get(":method") ~= "GET" then
      headers:replace(MARKER, "http")  -- the reply in the {"message": ...} shape
      return not_allowed(handle, headers:get(":method"), path, {"GET"})
    end
    return  -- the description of this API, answered by Envoy's route (envoy.template.yaml)
  end
  headers:replace(MARKER, "http")
  if #path > 1 and path:sub(-1) == "/" then
    path = path:sub(1, -2)
  end
  local route = ROUTES[path]
  if route == nil then
    return reply(handle, 404, "no such endpoint: " .. path)
  end
  if headers:get(":method") ~= route.method then
    return not_allowed(handle, headers:get(":method"), path, {route.method})
  end
  local length = tonumber(headers:get("content-length") or "0")
  if length and length > MAX_BODY_BYTES then
    return reply(handle, 413, "request body is " .. length .. " bytes; the limit is " .. MAX_BODY_BYTES)
  end
  -- An empty body is not JSON either (docs/api.md, "v1 HTTP routes": 422), though the transcoder would read it
  -- as {}. Only a body announced as empty is known here: asking for the body itself
  -- (handle:body()) would buffer chunked uploads under the connection's 1 MiB limit, and
  -- the codec has already dropped their transfer-encoding header.
  if route.method == "POST" and headers:get("content-length") == "0" then
    return reply(handle, 422, "Incorrect request structure: the body is empty; send a JSON object")
  end
  headers:replace(":path", path .. query)
  local metadata = handle:streamInfo():dynamicMetadata()
  metadata:set(METADATA, "operation", route.operation)
  -- For the access log: the transcoder turns every request into a gRPC POST.
  metadata:set(METADATA, "method", route.method)
end

function envoy_on_response(handle)
  local metadata = handle:streamInfo():dynamicMetadata():get(METADATA)
  if metadata == nil then
    return  -- native gRPC, or a reply this filter made itself
  end
  local operation = metadata.operation
  local headers = handle:headers()
  -- The transcoder leaves grpc-status in the headers: absent or "0" on success.
  local grpc_status = tonumber(headers:get("grpc-status") or "0")
  local message = percent_decode(headers:get("grpc-message") or "")
  for _, name in ipairs({"grpc-status", "grpc-message", "grpc-status-details-bin"}) do
    headers:remove(name)
  end
  if grpc_status == 0 then
    if headers:get(":status") == "200" then
      -- A transcoded success: its JSON body is the documented body; only the code differs.
      headers:replace(":status", tostring(http_status(operation, 0)))
    end
    if nested_too_deep(handle, operation) then
      -- Waiting for the body ended the scope of `headers`: fetch them again.
      handle:headers():replace(":status", "400")
      handle:body():setBytes('{"message":' .. json_string(TOO_DEEP_MESSAGE) .. '}')
    end
    return  -- otherwise a local reply (malformed JSON, ...), already shaped
  end
  local status = http_status(operation, grpc_status)
  if too_large(grpc_status, message) then
    status = 413
  end
  headers:replace(":status", tostring(status))
  headers:replace("content-type", "application/json")
  local body = '{"message":' .. json_string(message) .. '}'
  if operation == "login" and grpc_status == 16 then
    body = '{"token":"-","message":' .. json_string(message) .. '}'
  end
  handle:body(true):setBytes(body)
end
