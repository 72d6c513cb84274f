-- Writing tuples whose value field is MessagePack binary (MP_BIN) from Lua.
--
-- Pairs store each value as the encoded google.protobuf.Value the client sent, so a read
-- hands the bytes back without converting them (docs/benchmarks/README.md has the
-- numbers). Tarantool before 3.0 has no Lua type that encodes as MP_BIN: a Lua string
-- becomes MP_STR, and binary data in MP_STR is invalid UTF-8 to every client. So the
-- tuple is encoded here and written through the C API, the way Tarantool's cookbook
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
    int box_replace(uint32_t space_id, const char *tuple, const char *tuple_end, struct tuple **result);
    size_t box_tuple_bsize(struct tuple *tuple);
    ssize_t box_tuple_to_buf(struct tuple *tuple, char *buf, size_t size);
]])
pcall(ffi.cdef, 'const char *box_tuple_field(struct tuple *tuple, uint32_t fieldno);')
pcall(ffi.cdef, 'typedef struct tuple_format box_tuple_format_t;')
pcall(ffi.cdef, 'box_tuple_format_t *box_tuple_format_default(void);')
pcall(ffi.cdef, 'struct tuple *box_tuple_new(box_tuple_format_t *format, const char *data, const char *end);')
-- Makes a C tuple a Lua one (referenced, freed by Lua's collector), as Tarantool's own
-- Lua does for the tuples its C functions return. Internal, so checked at start-up: a
-- Tarantool without it fails to start instead of failing every v1 Read.
local bless = box.internal.tuple.bless
assert(type(bless) == 'function', 'tkv: this Tarantool has no box.internal.tuple.bless')

local M = {}

-- A field given as the MessagePack bytes it is to be stored as.
local Encoded = {}

function M.encoded(bytes)
    return setmetatable({bytes = bytes}, Encoded)
end

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

-- A field stored as MP_BIN holding `blob`.
function M.bin(blob)
    return M.encoded(bin_header(#blob) .. blob)
end

-- The MessagePack of `fields`: one msgpack.encode call per plain field, joined once.
-- (Encoding runs of plain fields as arrays instead measured twice as slow: the tables.)
function M.encode(fields)
    local n = #fields
    -- Tuples here have fewer than 16 fields: a fixarray header.
    assert(n < 16, 'blobs: tuples of 16 fields or more are not supported')
    local parts = {string.char(0x90 + n)}
    for i = 1, n do
        local field = fields[i]
        parts[i + 1] = getmetatable(field) == Encoded and field.bytes or msgpack.encode(field)
    end
    return table.concat(parts)
end

local function write_bytes(fn, space_id, data)
    local start = ffi.cast('const char *', data)
    if fn(space_id, start, start + #data, nil) ~= 0 then
        box.error()  -- re-raises the error the C API set
    end
end

local function write(fn, space_id, fields)
    write_bytes(fn, space_id, M.encode(fields))
end

local function array_header(n)
    if n < 16 then
        return string.char(0x90 + n)
    elseif n < 0x10000 then
        return '\xdc' .. string.char(bit.rshift(n, 8), bit.band(n, 0xff))
    end
    return '\xdd' .. string.char(
        bit.band(bit.rshift(n, 24), 0xff), bit.band(bit.rshift(n, 16), 0xff),
        bit.band(bit.rshift(n, 8), 0xff), bit.band(n, 0xff))
end

-- A field holding an array of `items`, each the MessagePack bytes of one element (from
-- M.encode): how the change log nests a batch's events, MP_BIN values included.
function M.array(items)
    return M.encoded(array_header(#items) .. table.concat(items))
end

-- One new tuple whose fields are field `n` (1-based, never a tuple's last) of each of
-- `tuples`, in order, copied as stored: MP_BIN stays MP_BIN, which a Lua string of the
-- field would not. A reader that needs one field of many tuples gets them without the
-- other fields, which its client would otherwise decode one by one.
function M.fields_tuple(tuples, n)
    local C = ffi.C
    local header = array_header(#tuples)
    local total = #header
    for i = 1, #tuples do
        local tuple = tuples[i]
        total = total + (C.box_tuple_field(tuple, n) - C.box_tuple_field(tuple, n - 1))
    end
    local buf = ffi.new('char[?]', total)
    ffi.copy(buf, header, #header)
    local at = #header
    for i = 1, #tuples do
        local tuple = tuples[i]
        local from = C.box_tuple_field(tuple, n - 1)
        local size = C.box_tuple_field(tuple, n) - from
        ffi.copy(buf + at, from, size)
        at = at + size
    end
    local tuple = C.box_tuple_new(C.box_tuple_format_default(), buf, buf + total)
    if tuple == nil then
        box.error()  -- re-raises the error the C API set (out of memory)
    end
    return bless(tuple)
end

-- Replaces by a tuple given as its MessagePack bytes (a caller that encodes its own tuples
-- on a hot path, tkv/kv.lua).
function M.replace_encoded(space_id, data)
    write_bytes(ffi.C.box_replace, space_id, data)
end

-- Inserts `fields` (plain Lua values and M.bin / M.encoded fields); fails like
-- space:insert() does.
function M.insert(space_id, fields)
    write(ffi.C.box_insert, space_id, fields)
end

-- Replaces by `fields`, like space:replace().
function M.replace(space_id, fields)
    write(ffi.C.box_replace, space_id, fields)
end

-- Field `n` (1-based) of `tuple` as the MessagePack bytes it is stored as, to copy a value
-- into another tuple without decoding it (Lua cannot tell MP_BIN from MP_STR).
function M.field_bytes(tuple, n)
    local size = tonumber(ffi.C.box_tuple_bsize(tuple))
    local buf = ffi.new('char[?]', size)
    ffi.C.box_tuple_to_buf(tuple, buf, size)
    local data = ffi.string(buf, size)
    local first = data:byte(1)
    local pos = (first >= 0x90 and first <= 0x9f) and 2 or (first == 0xdc and 4 or 6)
    for _ = 1, n - 1 do
        local _, next_pos = msgpack.decode(data, pos)
        pos = next_pos
    end
    local _, next_pos = msgpack.decode(data, pos)
    return data:sub(pos, next_pos - 1)
end

return M
