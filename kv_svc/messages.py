"""What kv_svc tells its users, in the original service's words (docs/api.md, "v1 messages").

Clients of the original match on these texts, so they are kept verbatim: do not correct
them. Rules the original did not have (key size, NUL, batch size, values) get texts in the
same style. Machine clients should match the ErrorInfo reason instead.
"""

# Said before the reason whenever a token is refused by kv_svc.
NOT_AUTHORIZED = "You are not authorized! Please, sign in or sign up"

NO_KEYS = "Incorrect keys: you have not passed any keys"
# Followed by the repeated keys, each once, separated by spaces (kv_svc.keys.list_keys).
IDENTICAL_KEYS = "Incorrect keys: you cannot pass identical keys: {keys}"
ABSENT_KEYS = "These keys don't exist: {keys}"
SKIPPED_KEYS = "success, but these keys have not been written: {keys}. Because they have already been in kv store"

TOO_MANY_KEYS = "Incorrect keys: you cannot pass more than {limit} keys at once"
EMPTY_KEY = "Incorrect keys: a key cannot be empty"
KEY_WITH_NUL = "Incorrect keys: a key cannot contain NUL (U+0000)"
KEY_TOO_LONG = "Incorrect keys: a key should be no more than {limit} bytes of UTF-8"
KEY_NOT_UTF8 = "Incorrect keys: a key should be valid UTF-8"
ANSWER_TOO_LARGE = (
    "Incorrect keys: the answer would be {size} bytes, more than the {limit} a response may hold; "
    "read these keys in smaller batches"
)
# Followed by what is wrong with the value (kv_svc.values.InvalidValue).
INCORRECT_VALUE = "Incorrect value of the key {key}"

# v2 (docs/api.md, "v2 errors"): the product's own texts, in the same style.
INVALID_NAMESPACE = "Incorrect namespace: use me, shared or a login (2-64 Latin letters and digits), got {namespace}"
NAMESPACE_DENIED = "You may not use the namespace {namespace}"
NOT_OWNER = "These pairs belong to other users: {keys}"
VERSION_MISMATCH = "These pairs do not have the expected version: {keys}"
INVALID_EXPECTED_VERSION = (
    "Incorrect expected_version of the key {key}: it should be 0 (absent) or a version, got {value}"
)
INVALID_TTL = "Incorrect ttl of the key {key}: it should be from {minimum} to {maximum} seconds"
QUOTA_EXCEEDED = "The quota of user {owner} would be exceeded: {what}"
STORAGE_FULL = "storage is full"
RESPONSE_TOO_LARGE = (
    "The answer would be {size} bytes, more than the {limit} a response may hold; read fewer keys at once"
)
INVALID_PAGE_TOKEN = (
    "Incorrect page_token: it is not a token this service issued for the same namespace, prefix and keys_only"
)
INVALID_PAGE_SIZE = "Incorrect page_size: it cannot be negative, got {value}"
KEYS_AND_PAIRS = "Incorrect request: name the pairs to delete in keys or in pairs, not both"

# Sharing and Watch (docs/api.md, "Sharing", "Watch").
NOT_GRANTED = "Your grants on the namespace {namespace} do not let you {verb} {keys}"
INVALID_GRANTEE = "Incorrect grantee: use a login (2-64 Latin letters and digits), got {grantee}"
INVALID_ROLE = "Incorrect role: use READER or WRITER"
SELF_GRANT = "Incorrect grantee: you cannot share a namespace with yourself"
NO_SUCH_USER = "There is no user {login}"
NO_SUCH_GRANT = "There is no grant to {grantee} on the prefix {prefix}"
INVALID_START_REVISION = "Incorrect start_revision: it should be 0 (from now) or a revision, got {value}"
REVISION_COMPACTED = (
    "The changes after revision {revision} are no longer kept; the oldest kept is {oldest}: "
    "watch from start_revision {resume} or later (after reading the current pairs)"
)
TOO_MANY_WATCHES = "You have {limit} watches open, the most allowed; close one first"
WATCH_FELL_BEHIND = (
    "The watch was ended because its client read more slowly than changes came; resume with start_revision {revision}"
)
WATCH_STORAGE_LOST = "The watch lost the storage; resume with start_revision {revision}"
WATCH_ACCESS_LOST = "You may no longer read what this watch follows in the namespace {namespace}"
