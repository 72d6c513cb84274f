// The console's one HTTP client: the v1 account routes and the v2 API (docs/api.md), with
// the user's own bearer token. The token lives in this module's memory and in
// sessionStorage (gone when the tab closes), never in localStorage, a cookie or a URL.

const TOKEN_KEY = "tkv.token";
const LOGIN_KEY = "tkv.login";

/** An error answer: HTTP status, gRPC reason (ErrorInfo), message, and field violations. */
export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || `HTTP ${status}`);
    this.status = status;
    this.details = (body && body.details) || [];
    const info = this.details.find((d) => (d["@type"] || "").endsWith("google.rpc.ErrorInfo"));
    this.reason = info ? info.reason : "";
    const request = this.details.find((d) => (d["@type"] || "").endsWith("google.rpc.BadRequest"));
    this.violations = request ? request.fieldViolations || request.field_violations || [] : [];
  }
}

let token = sessionStorage.getItem(TOKEN_KEY);
let onUnauthenticated = () => {};

export function session() {
  return token ? { login: sessionStorage.getItem(LOGIN_KEY) || "" } : null;
}

/** Called with the error whenever a call is refused for its token (expired, revoked). */
export function setUnauthenticatedHandler(handler) {
  onUnauthenticated = handler;
}

function forget() {
  token = null;
  sessionStorage.removeItem(TOKEN_KEY);
  sessionStorage.removeItem(LOGIN_KEY);
}

async function request(method, path, body, { auth = true, signal } = {}) {
  const headers = { "content-type": "application/json" };
  if (auth && token) headers.authorization = `Bearer ${token}`;
  const init = { method, headers, signal, cache: "no-store", credentials: "omit" };
  if (body !== undefined) init.body = JSON.stringify(body);
  const response = await fetch(path, init);
  const text = await response.text();
  let parsed = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = { message: text };
  }
  if (!response.ok) {
    const error = new ApiError(response.status, parsed);
    if (response.status === 401 && auth) {
      forget();
      onUnauthenticated(error);
    }
    throw error;
  }
  return parsed;
}

const enc = encodeURIComponent;

function pairs(namespace, key) {
  const base = `/v2/namespaces/${enc(namespace)}/pairs`;
  return key === undefined ? base : `${base}/${enc(key)}`;
}

function query(params) {
  const parts = Object.entries(params).filter(([, v]) => v !== undefined && v !== null && v !== "");
  return parts.length ? "?" + parts.map(([k, v]) => `${enc(k)}=${enc(v)}`).join("&") : "";
}

// Accounts (docs/api.md, "Accounts", "v2 accounts").
export function register(fields) {
  return request("POST", "/api/register/", fields, { auth: false });
}

export async function signIn(login, password) {
  const answer = await request("POST", "/api/login/", { login, password }, { auth: false });
  token = answer.token;
  sessionStorage.setItem(TOKEN_KEY, token);
  sessionStorage.setItem(LOGIN_KEY, login);
  return answer;
}

export async function signOut() {
  try {
    await request("GET", "/api/logout/");
  } finally {
    forget();
  }
}

export function changePassword(oldPassword, newPassword) {
  return request("POST", "/v2/account:changePassword", { old_password: oldPassword, new_password: newPassword });
}

// Pairs (docs/api.md, "Pairs", "Listing", "TTL").
export function getPair(namespace, key) {
  return request("GET", pairs(namespace, key));
}

export function listPairs(namespace, prefix, pageToken, pageSize) {
  const params = { prefix, page_token: pageToken, page_size: pageSize, keys_only: "true" };
  return request("GET", pairs(namespace) + query(params));
}

/** expectedVersion: "0" = must be absent; ttlSeconds: empty = no expiry. */
export function putPair(namespace, key, value, expectedVersion, ttlSeconds) {
  const params = { expected_version: expectedVersion, ttl: ttlSeconds ? `${ttlSeconds}s` : "" };
  return request("PUT", pairs(namespace, key) + query(params), value);
}

export function deletePair(namespace, key, expectedVersion) {
  return request("DELETE", pairs(namespace, key) + query({ expected_version: expectedVersion }));
}

// Sharing (docs/api.md, "Sharing").
export function listGrants() {
  return request("GET", "/v2/namespaces/me/grants");
}

export function receivedGrants() {
  return request("GET", "/v2/grants/received");
}

export function createGrant(grantee, role, prefix) {
  return request("POST", "/v2/namespaces/me/grants", { grantee, role, prefix });
}

export function deleteGrant(grantee, prefix) {
  return request("DELETE", `/v2/namespaces/me/grants/${enc(grantee)}` + query({ prefix }));
}

/**
 * Watch (docs/api.md, "Watch"): over HTTP one JSON message per line, as each comes. Calls
 * onOpen once the stream is accepted, then onMessage for each message; resolves when the stream ends (the status it ended with is in HTTP
 * trailers, which fetch() cannot read: the caller resumes from the last revision it saw).
 */
export async function watch(namespace, prefix, startRevision, onOpen, onMessage, signal) {
  const headers = { "content-type": "application/json", authorization: `Bearer ${token}` };
  const body = JSON.stringify({ prefix, start_revision: startRevision, keys_only: true });
  const response = await fetch(`${pairs(namespace)}:watch`, {
    method: "POST", headers, body, signal, cache: "no-store", credentials: "omit",
  });
  if (!response.ok) {
    let parsed = null;
    try {
      parsed = await response.json();
    } catch {
      parsed = null;
    }
    const error = new ApiError(response.status, parsed);
    if (response.status === 401) {
      forget();
      onUnauthenticated(error);
    }
    throw error;
  }
  onOpen();
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffered = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffered += value;
    let end;
    while ((end = buffered.indexOf("\n")) >= 0) {
      const line = buffered.slice(0, end).trim();
      buffered = buffered.slice(end + 1);
      if (line) onMessage(JSON.parse(line));
    }
  }
}
