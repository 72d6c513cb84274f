-- Inserting tuples whose last field is MessagePack binary (MP_BIN) from Lua.
--
-- kv stores each value as the encoded google.protobuf.Value the client sent, so a read
-- hands the bytes back without converting them (docs/benchmarks/README.md has the
-- numbers). Tarantool before 3.0 has no Lua type that encodes as MP_BIN: a Lua string
-- becomes MP_STR, and binary data in MP_STR is invalid UTF-8 to every client. So the
-- tuple is encoded here and inserted through the C API, the way Tarantool's cookbook
-- inserts varbinary fields ("ffi_varbinary_insert"). Returning the tuple itself (not the
-- field, which Lua would turn into a string) keeps MP_BIN on the way out.
local ffi = require('ffi')
local bit = require('bit')
local msgpack = require('msgpack')

-- Declared by name only: Tarantool's own Lua may already declare these, and pcall keeps a
-- second declaration from failing.
pcall(ffi.cdef, 'struct tuple;')
pcall(ffi.cdef, [[
    int box_insert(uint32_t space_id, const char *tuple, const char *tuple_end, struct tuple **result);
]])

local M = {}

local function bin_header(size)
    if size < 0x100 then
        return '\xc4' .. string.char(size)
    elseif size < 0x10000 then
        return '\xc5' .. string.char(bit.rshift(size, 8), bit.band(size, 0xff))
    end
    return '\xc6' .. string.char(
        bit.band(bit.rshift(size, 24), 0xff), bit.band(bit.rshift(size, 16), 0xff),
        bit.band(bit.rshift(size, 8), 0xff), bit.band(size, 0xff))
end

-- Inserts {key, blob} with blob stored as MP_BIN; fails like space:insert() does.
function M.insert(space_id, key, blob)
    local data = '\x92' .. msgpack.encode(key) .. bin_header(#blob) .. blob
    local start = ffi.cast('const char *', data)
    if ffi.C.box_insert(space_id, start, start + #data, nil) ~= 0 then
        box.error()  -- re-raises the error box_insert set
    end
end

return M
