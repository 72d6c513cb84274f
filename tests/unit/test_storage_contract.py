"""The contract between the Lua stored functions and the Python storage that calls them:
every status a stored function can answer a service has that service's error for it
(STATUS_ERRORS in kv_svc/storage.py and auth_svc/storage.py), and every entry of those
tables is a status some stored function of that service can answer, taking the values that
follow the status (`return 'too_large', size, max_bytes` is raised as
STATUS_ERRORS["too_large"](size, max_bytes)).

Lua answers status first ('ok', or a refusal and its payload: tarantool/tkv/api.lua). The
scan reads every file of tarantool/tkv/, whatever module a function lives in: a status
belongs to a service when a function returning it is reachable from one of the service's
stored functions (api.lua's `auth_*` and `kv_*` exports), by name, through the calls
between functions. A status without its Python entry would raise KeyError in the service
(-> INTERNAL) the first time it is answered; an entry no function answers is dead text.
"""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from auth_svc import storage as auth_storage
from kv_svc import names
from kv_svc import storage as kv_storage

LUA = Path(__file__).resolve().parents[2] / "tarantool" / "tkv"
# Each service's status table, by the prefix of its stored functions' names in api.lua.
TABLES = {"auth": auth_storage.STATUS_ERRORS, "kv": kv_storage.STATUS_ERRORS}

# A function defined at the start of a line: `function M.put(`, `local function refusal(`,
# `M.kv_read = as_caller(kv.v1_read)`, `M.auth_logout_all = authenticated(function(user)`.
_DEFINITION = re.compile(
    r"^(?:local\s+)?function\s+(?:(\w+)[.:])?(\w+)\s*\(|^(?:local\s+)?(?:(\w+)\.)?(\w+)\s*=\s*(?=\S)", re.M
)
# A status answered, and what follows it on the line: `return 'denied', ns`, or a refusal
# built for its caller to unpack, `return {'denied', ns_name}` or `return nil, {'denied', ns_name}`.
_STATUS = re.compile(r"\breturn\s+(?:nil\s*,\s*)?(\{?)\s*'(\w+)'([^\n]*)")
_MODULE_REFERENCE = re.compile(r"\b\w+\.(\w+)\b")
_WORD = re.compile(r"\b\w+\b")


@dataclass(frozen=True)
class LuaFunction:
    file: str
    name: str
    exported: bool  # M.name: others reach it as module.name
    body: str  # comments removed


def lua_functions() -> list[LuaFunction]:
    functions = []
    for path in sorted(LUA.glob("*.lua")):
        text = re.sub(r"--.*", "", path.read_text())
        starts = list(_DEFINITION.finditer(text))
        ends = [*starts[1:], None] if starts else []  # defaults.lua is data: no function
        for start, end in zip(starts, ends, strict=True):
            module = start.group(1) or start.group(3)
            name = start.group(2) or start.group(4)
            body = text[start.start() : end.start() if end else len(text)]
            functions.append(LuaFunction(path.name, name, module == "M", body))
    return functions


def callees(caller: LuaFunction, functions: list[LuaFunction]) -> list[LuaFunction]:
    """What `caller` may call or pass on: module functions named `anything.name`, and the
    local functions of its own file named at all (token_problem is passed, not called)."""
    modules = set(_MODULE_REFERENCE.findall(caller.body))
    words = set(_WORD.findall(caller.body))
    return [
        f
        for f in functions
        if (f.exported and f.name in modules) or (not f.exported and f.file == caller.file and f.name in words)
    ]


@dataclass(frozen=True)
class Answer:
    status: str
    where: str  # "file function"
    payload: int  # how many values follow the status


def payload_count(rest: str, table: bool) -> int:
    """The values after a status: `, size, max_bytes` is 2; in a table, up to its `}`."""
    depth, items, current = 0, [], ""
    for char in rest:
        if char in "([{":
            depth += 1
        elif char in ")]}":
            if depth == 0 and table:
                break
            depth -= 1
        if char == "," and depth == 0:
            items.append(current)
            current = ""
        else:
            current += char
    items.append(current)
    return len([item for item in items[1:] if item.strip()])


def answers_of(prefix: str) -> list[Answer]:
    """Every answer other than 'ok' the stored functions `tkv.<prefix>_*` can give."""
    functions = lua_functions()
    todo = [f for f in functions if f.file == "api.lua" and f.exported and f.name.startswith(prefix + "_")]
    assert todo, f"api.lua exports no {prefix}_ function"
    seen: set[tuple[str, str]] = set()
    answers = []
    while todo:
        function = todo.pop()
        if (function.file, function.name) in seen:
            continue
        seen.add((function.file, function.name))
        for table, status, rest in _STATUS.findall(function.body):
            if status != "ok":
                answers.append(Answer(status, f"{function.file} {function.name}", payload_count(rest, bool(table))))
        todo += callees(function, functions)
    return answers


def statuses_of(prefix: str) -> dict[str, set[str]]:
    """Each status the `tkv.<prefix>_*` functions can answer, with the Lua functions that return it."""
    statuses: dict[str, set[str]] = {}
    for answer in answers_of(prefix):
        statuses.setdefault(answer.status, set()).add(answer.where)
    return statuses


# Answers a storage method turns into its error itself, not through STATUS_ERRORS, and why.
HANDLED_APART = {
    # TarantoolAdapter.changes: the follower's read of the change log says only the oldest
    # revision held; the revision asked for is the follower's own `after`.
    ("kv", "compacted", "watch.lua changes"),
}


def accepts(error: object, count: int) -> bool:
    positional = [
        p
        for p in inspect.signature(error).parameters.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    required = [p for p in positional if p.default is p.empty]
    varargs = any(p.kind == p.VAR_POSITIONAL for p in inspect.signature(error).parameters.values())
    return len(required) <= count and (varargs or count <= len(positional))


@pytest.mark.parametrize("prefix", TABLES)
def test_every_status_a_stored_function_answers_has_its_error_in_the_service(prefix):
    unmapped = {status: sorted(where) for status, where in statuses_of(prefix).items() if status not in TABLES[prefix]}
    assert not unmapped, f"{prefix}_svc's STATUS_ERRORS has no error for {unmapped}"


@pytest.mark.parametrize("prefix", TABLES)
def test_every_error_of_a_status_table_is_a_status_some_stored_function_answers(prefix):
    unreachable = sorted(set(TABLES[prefix]) - set(statuses_of(prefix)))
    assert not unreachable, f"{prefix}_svc's STATUS_ERRORS maps statuses no {prefix}_ function answers: {unreachable}"


@pytest.mark.parametrize("prefix", TABLES)
def test_each_error_takes_the_payload_its_status_comes_with(prefix):
    # `return 'too_large', size, max_bytes` is raised as STATUS_ERRORS["too_large"](size, max_bytes).
    wrong = [
        f"{a.where}: '{a.status}' with {a.payload} values"
        for a in answers_of(prefix)
        if a.status in TABLES[prefix]
        and (prefix, a.status, a.where) not in HANDLED_APART
        and not accepts(TABLES[prefix][a.status], a.payload)
    ]
    assert not wrong, f"{prefix}_svc's STATUS_ERRORS takes another payload: {wrong}"


def test_what_is_handled_apart_is_still_answered():
    for prefix, status, where in HANDLED_APART:
        assert where in statuses_of(prefix).get(status, set()), f"{where} no longer answers '{status}'"


def test_the_scan_finds_statuses_through_calls_and_unpacked_refusals():
    # Guards the scan itself: a status returned two calls away (kv_put -> kv.put ->
    # quota), one in a refusal table (refusal -> {'denied', ...}), and the token problems
    # every authenticated function shares.
    kv = statuses_of("kv")
    assert {"quota", "denied", "not_granted", "revoked", "compacted"} <= set(kv)
    assert {"exists", "locked", "revoked"} <= set(statuses_of("auth"))
    assert "quota" not in statuses_of("auth")
    # Payloads counted, in a refusal table too (where is left free: the Lua moves).
    assert {a.payload for a in answers_of("kv") if a.status == "not_granted"} == {3}
    assert {a.payload for a in answers_of("kv") if a.status == "too_large"} == {2}


def test_the_shared_namespace_is_stored_as_the_lua_side_stores_it():
    stored = {m for path in LUA.glob("*.lua") for m in re.findall(r"\bSHARED\s*=\s*'([^']*)'", path.read_text())}
    assert stored == {names.STORED_SHARED}, f"tarantool/tkv stores `shared` as {stored}"
