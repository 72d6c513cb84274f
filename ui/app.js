// The web console at /ui/ (docs/ui.md): accounts, a folder view over paged listing, a JSON
// editor with optimistic concurrency, live updates from the watch stream, and sharing.
// Every value and key is put on the page as text (dom.js), never as HTML.

import * as api from "./api.js";
import { $, fill, h } from "./dom.js";

const PAGE_SIZE = 200;
const SEPARATOR = "/";

const state = {
  login: "",
  namespaces: [], // {namespace, root, label}
  namespace: "me",
  root: "", // a grant's prefix: the folder view never goes above it
  folder: "",
  filter: "",
  keys: new Map(), // key -> {version, changed}
  folders: new Set(),
  nextPageToken: "",
  revision: "0",
  listing: 0, // bumped per opened folder, so that late answers of an older one are dropped
  watchAbort: null,
  edit: null, // {key, version, loadedText} of the open editor; key null = new
  saving: false,
  theirs: null, // the stored pair met by a conflict
};

// ---- accounts -------------------------------------------------------------------------

function showAuth(notice) {
  $("#auth").hidden = false;
  $("#console").hidden = true;
  $("#session").hidden = true;
  fill($("#auth-notice"), notice || "");
  $("#sign-in-login").focus();
}

async function showConsole() {
  $("#auth").hidden = true;
  $("#console").hidden = false;
  $("#session").hidden = false;
  fill($("#who"), `Signed in as ${state.login}`);
  await loadNamespaces();
  await openFolder(state.folder);
}

api.setUnauthenticatedHandler(() => {
  stopWatch();
  // The console stays in the page, hidden: after signing in again the editor is as it was.
  showAuth("Your session has ended. Sign in again; what you were editing is kept.");
});

$("#sign-in-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const login = $("#sign-in-login").value;
  fill($("#sign-in-error"));
  try {
    await api.signIn(login, $("#sign-in-password").value);
  } catch (error) {
    fill($("#sign-in-error"), error.message);
    return;
  }
  $("#sign-in-password").value = "";
  const sameUser = state.login.toLowerCase() === login.toLowerCase();
  state.login = login;
  if (!sameUser) resetConsole();
  await showConsole();
});

// Register answers one message holding every broken rule joined by "; " (docs/api.md,
// "Conventions"); each is shown under the field it names.
const FIELD_OF_RULE = [
  [/^Incorrect login|already exists/, "login"],
  [/^Incorrect password/, "password"],
  [/\(surname/, "surname"],
  [/\(name/, "name"],
];

$("#register-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const fields = {};
  for (const name of ["login", "password", "name", "surname"]) {
    fields[name] = $(`#register-${name}`).value;
    fill($(`#register-${name}-error`));
    $(`#register-${name}`).removeAttribute("aria-invalid");
  }
  fill($("#register-status"));
  try {
    const answer = await api.register(fields);
    fill($("#register-status"), `${answer.message} You can sign in now.`);
    $("#sign-in-login").value = fields.login;
    $("#sign-in-password").focus();
  } catch (error) {
    const unplaced = [];
    for (const part of error.message.split("; ")) {
      const match = FIELD_OF_RULE.find(([pattern]) => pattern.test(part));
      if (!match) {
        unplaced.push(part);
        continue;
      }
      const target = $(`#register-${match[1]}-error`);
      fill(target, target.textContent ? `${target.textContent} ${part}` : part);
      $(`#register-${match[1]}`).setAttribute("aria-invalid", "true");
    }
    fill($("#register-status"), unplaced.join("; "));
    const first = document.querySelector("#register-form [aria-invalid=true]");
    if (first) first.focus();
  }
});

$("#sign-out").addEventListener("click", async () => {
  stopWatch();
  try {
    await api.signOut();
  } catch {
    // Signed out locally either way; the token is forgotten.
  }
  state.login = "";
  resetConsole();
  showAuth("You have signed out.");
});

$("#show-account").addEventListener("click", () => showPanel("#account"));
$("#close-account").addEventListener("click", () => closePanel("#account"));

$("#password-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  fill($("#password-error"));
  fill($("#password-status"));
  const newPassword = $("#new-password").value;
  try {
    await api.changePassword($("#old-password").value, newPassword);
    // Every token of the account, this one included, is now revoked: sign in anew.
    stopWatch();
    await api.signIn(state.login, newPassword);
    $("#old-password").value = "";
    $("#new-password").value = "";
    fill($("#password-status"), "The password has been changed; other sessions were signed out.");
    startWatch();
  } catch (error) {
    fill($("#password-error"), error.message);
  }
});

function resetConsole() {
  stopWatch();
  Object.assign(state, { namespace: "me", root: "", folder: "", filter: "", edit: null, theirs: null });
  $("#filter").value = "";
  for (const panel of ["#editor", "#sharing", "#account"]) $(panel).hidden = true;
}

// ---- namespaces and folders -------------------------------------------------------------

async function loadNamespaces() {
  let received = [];
  try {
    received = (await api.receivedGrants()).grants || [];
  } catch (error) {
    fill($("#list-status"), error.message);
  }
  state.namespaces = [
    { namespace: "me", root: "", label: `${state.login} (yours)` },
    { namespace: "shared", root: "", label: "shared" },
    ...received.map((g) => ({
      namespace: g.namespace,
      root: g.prefix || "",
      label: `${g.namespace}: ${g.prefix || "everything"} (${g.role.toLowerCase()})`,
    })),
  ];
  const select = $("#namespace");
  fill(select, state.namespaces.map((n, index) => h("option", { value: index }, n.label)));
  const current = state.namespaces.findIndex((n) => n.namespace === state.namespace && n.root === state.root);
  select.value = String(Math.max(current, 0));
}

$("#namespace").addEventListener("change", () => {
  const chosen = state.namespaces[Number($("#namespace").value)];
  Object.assign(state, { namespace: chosen.namespace, root: chosen.root });
  closePanel("#editor");
  navigate(chosen.root);
});

let filterTimer = 0;
$("#filter").addEventListener("input", () => {
  clearTimeout(filterTimer);
  $("#entries").setAttribute("aria-busy", "true"); // the list shown is about to change
  filterTimer = setTimeout(() => {
    state.filter = $("#filter").value;
    openFolder(state.folder);
  }, 250);
});

/** Goes to another folder; the filter narrowed the one left, so it is cleared. */
function navigate(folder) {
  clearTimeout(filterTimer);
  state.filter = "";
  $("#filter").value = "";
  openFolder(folder);
}
$("#toolbar").addEventListener("submit", (event) => event.preventDefault());

function listPrefix() {
  return state.folder + state.filter;
}

/** Opens a folder: its first page only, then the watch on it from the page's revision. */
async function openFolder(folder) {
  stopWatch();
  const listing = ++state.listing;
  Object.assign(state, { folder, keys: new Map(), folders: new Set(), nextPageToken: "" });
  renderCrumbs();
  fill($("#entries"));
  $("#entries").setAttribute("aria-busy", "true");
  fill($("#list-status"), "Loading…");
  const started = performance.now();
  if (await loadPage(listing)) {
    // Read by the browser test (docs/ui.md, "Measured"); never sent anywhere.
    document.body.dataset.folderOpenMs = String(Math.round(performance.now() - started));
    startWatch();
  }
}

async function loadPage(listing) {
  let page;
  try {
    page = await api.listPairs(state.namespace, listPrefix(), state.nextPageToken, PAGE_SIZE);
  } catch (error) {
    if (listing === state.listing) {
      fill($("#list-status"), error.message);
      $("#entries").setAttribute("aria-busy", "false");
    }
    return false;
  }
  if (listing !== state.listing) return false;
  for (const pair of page.pairs || []) place(pair.key, pair.version, false);
  state.nextPageToken = page.next_page_token || "";
  // The watch starts after the first page's revision: any later change arrives through it.
  if (!state.watchAbort) state.revision = page.revision;
  renderEntries();
  return true;
}

$("#more").addEventListener("click", () => loadPage(state.listing));

/** Files a key of the listing or of an event under the open folder: a key, or a subfolder. */
function place(key, version, changed) {
  const rest = key.slice(state.folder.length);
  const cut = rest.indexOf(SEPARATOR);
  if (cut >= 0) state.folders.add(state.folder + rest.slice(0, cut + 1));
  else state.keys.set(key, { version, changed });
}

function renderCrumbs() {
  const parts = [h("button", { type: "button", onclick: () => navigate(state.root) }, state.root || "(top)")];
  const below = state.folder.slice(state.root.length);
  let path = state.root;
  for (const segment of below.split(SEPARATOR).slice(0, -1)) {
    path += segment + SEPARATOR;
    const target = path;
    parts.push(h("span", { "aria-hidden": "true" }, " / "));
    parts.push(h("button", { type: "button", onclick: () => navigate(target) }, segment + SEPARATOR));
  }
  fill($("#crumbs"), parts);
}

function renderEntries() {
  const items = [];
  if (state.folder !== state.root) {
    const up = state.folder.slice(0, state.folder.slice(0, -1).lastIndexOf(SEPARATOR) + 1);
    items.push(h("li", { class: "folder" },
      h("button", { type: "button", "aria-label": "Up one folder", "data-up": "",
        onclick: () => navigate(up.length < state.root.length ? state.root : up) }, "..")));
  }
  for (const folder of [...state.folders].sort()) {
    items.push(h("li", { class: "folder" },
      h("button", { type: "button", "data-folder": folder, onclick: () => navigate(folder) },
        folder.slice(state.folder.length))));
  }
  for (const [key, entry] of [...state.keys].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    // A key equal to the folder's own path ("app/" in app/) has no name below it: show it whole.
    const label = key.slice(state.folder.length) || key;
    items.push(h("li", { class: entry.changed ? "key changed" : "key" },
      h("button", { type: "button", "data-key": key, onclick: () => openKey(key) }, label),
      h("span", { class: "version" }, `v${entry.version}`)));
  }
  // A live change re-renders the list: the entry that had the keyboard focus keeps it.
  const focused = $("#entries").contains(document.activeElement) ? document.activeElement : null;
  fill($("#entries"), items);
  $("#entries").setAttribute("aria-busy", "false");
  if (focused) {
    const again = [...$("#entries").querySelectorAll("button")].find((b) =>
      b.dataset.key === focused.dataset.key && b.dataset.folder === focused.dataset.folder
      && b.dataset.up === focused.dataset.up);
    if (again) again.focus();
  }
  const shown = state.keys.size + state.folders.size;
  fill($("#list-status"), shown ? "" : "No keys here.");
  $("#more").hidden = !state.nextPageToken;
}

// ---- live updates -----------------------------------------------------------------------

function stopWatch() {
  if (state.watchAbort) state.watchAbort.abort();
  state.watchAbort = null;
  fill($("#live"));
}

/** Follows the open folder; a dropped stream resumes from the last revision seen (no gap). */
async function startWatch() {
  stopWatch();
  const abort = new AbortController();
  state.watchAbort = abort;
  const listing = state.listing;
  let delay = 250;
  while (!abort.signal.aborted) {
    try {
      const open = () => fill($("#live"), "Live: changes appear as they are made.");
      await api.watch(state.namespace, listPrefix(), state.revision, open, (message) => {
        if (listing !== state.listing) return;
        applyEvents(message.events || []);
        if (message.revision) state.revision = message.revision;
        delay = 250;
      }, abort.signal);
    } catch (error) {
      if (abort.signal.aborted || error.name === "AbortError") return;
      if (error.status === 401) return; // the sign-in form is back; it restarts the watch
      if (error.reason === "REVISION_COMPACTED") {
        openFolder(state.folder); // too far behind: read the folder anew, then watch again
        return;
      }
      if (error.status === 403) {
        fill($("#live"), `Not live: ${error.message}`);
        return;
      }
    }
    if (abort.signal.aborted) return;
    fill($("#live"), "Reconnecting…");
    await new Promise((resolve) => setTimeout(resolve, delay));
    delay = Math.min(delay * 2, 5000);
  }
}

function applyEvents(events) {
  // The echo of this console's own delete changes nothing shown: re-rendering for it would
  // replace the list's "Deleted KEY." with "No keys here." (the console test saw it).
  let changed = false;
  for (const event of events) {
    const pair = event.pair || {};
    if (event.type === "PUT") {
      place(pair.key, pair.version, true);
      changed = true;
    } else if (state.keys.delete(pair.key)) {
      changed = true;
    }
    if (state.edit && state.edit.key === pair.key) changedUnderEditor(event);
  }
  if (changed) renderEntries();
}

function changedUnderEditor(event) {
  const edit = state.edit;
  // A save in flight reloads the key when it ends (or meets the change as a conflict).
  if (state.saving || (event.type === "PUT" && event.pair.version === edit.version)) return;
  const untouched = $("#editor-value").value === edit.loadedText;
  if (event.type === "PUT" && untouched) {
    openKey(edit.key, { keepFocus: true });
    return;
  }
  const what = event.type === "PUT" ? `changed elsewhere (version ${event.pair.version})`
    : event.type === "EXPIRE" ? "expired" : "deleted elsewhere";
  fill($("#editor-notice"), `This key was ${what}. Saving will show both values first.`);
}

// ---- the editor -------------------------------------------------------------------------

function showPanel(selector) {
  for (const panel of ["#editor", "#sharing", "#account"]) $(panel).hidden = panel !== selector;
  $(`${selector} h2`).focus();
}

function closePanel(selector) {
  $(selector).hidden = true;
  if (selector === "#editor") state.edit = null;
}

function describe(pair) {
  const rows = [
    ["Version", pair.version], ["Created at version", pair.create_version],
    ["Owner", pair.owner || "unknown"], ["Updated", pair.update_time],
    ["Expires", pair.expire_time || "never"],
  ];
  fill($("#editor-meta"), rows.flatMap(([name, value]) => [h("dt", {}, name), h("dd", {}, value)]));
}

async function openKey(key, { keepFocus = false } = {}) {
  let pair;
  try {
    pair = await api.getPair(state.namespace, key);
  } catch (error) {
    fill($("#list-status"), error.message);
    return;
  }
  const text = JSON.stringify(pair.value, null, 2);
  state.edit = { key, version: pair.version, loadedText: text };
  state.theirs = null;
  $("#conflict").hidden = true;
  fill($("#editor-title"), "Key");
  $("#editor-key").value = key;
  $("#editor-key").readOnly = true;
  $("#editor-value").value = text;
  $("#editor-value").removeAttribute("aria-invalid");
  const left = pair.expire_time ? Math.max(1, Math.ceil((Date.parse(pair.expire_time) - Date.now()) / 1000)) : "";
  $("#editor-ttl").value = left;
  describe(pair);
  fill($("#editor-notice"));
  fill($("#editor-error"));
  $("#delete").hidden = false;
  if (keepFocus) $("#editor").hidden = false;
  else showPanel("#editor");
}

$("#new-key").addEventListener("click", () => {
  state.edit = { key: null, version: "0", loadedText: "" };
  $("#conflict").hidden = true;
  fill($("#editor-title"), "New key");
  $("#editor-key").readOnly = false;
  $("#editor-key").value = state.folder + state.filter;
  $("#editor-value").value = "";
  $("#editor-ttl").value = "";
  fill($("#editor-meta"));
  fill($("#editor-notice"));
  fill($("#editor-error"));
  $("#delete").hidden = true;
  showPanel("#editor");
  $("#editor-key").focus();
});

$("#close-editor").addEventListener("click", () => {
  const key = state.edit && state.edit.key;
  closePanel("#editor");
  const entry = key && document.querySelector(`#entries button[data-key="${CSS.escape(key)}"]`);
  (entry || $("#new-key")).focus();
});

/** The editor's value, checked before anything is sent; null (and the error shown) if not JSON. */
function editedValue() {
  const text = $("#editor-value").value;
  try {
    const value = JSON.parse(text);
    $("#editor-value").removeAttribute("aria-invalid");
    return { value };
  } catch (error) {
    $("#editor-value").setAttribute("aria-invalid", "true");
    fill($("#editor-error"), `The value is not valid JSON: ${error.message}`);
    $("#editor-value").focus();
    return null;
  }
}

async function save(expectedVersion) {
  fill($("#editor-error"));
  fill($("#editor-notice"));
  const edited = editedValue();
  if (!edited) return;
  const key = state.edit.key ?? $("#editor-key").value;
  if (!key) {
    fill($("#editor-error"), "A key cannot be empty.");
    $("#editor-key").focus();
    return;
  }
  const ttl = $("#editor-ttl").value.trim();
  // Our own change comes back through the watch, maybe before this answer: not "elsewhere".
  state.saving = true;
  try {
    const answer = await api.putPair(state.namespace, key, edited.value, expectedVersion, ttl);
    state.edit = { key, version: answer.revision, loadedText: $("#editor-value").value };
    await openKey(key, { keepFocus: true });
    fill($("#editor-notice"), `Saved (version ${answer.revision}).`);
  } catch (error) {
    if (error.reason === "VERSION_MISMATCH") await showConflict(key);
    else fill($("#editor-error"), error.message);
  } finally {
    state.saving = false;
  }
}

$("#editor-form").addEventListener("submit", (event) => {
  event.preventDefault();
  if (state.edit) save(state.edit.version);
});

/** Both values side by side; nothing is written until the user chooses. */
async function showConflict(key) {
  let theirs = null;
  try {
    theirs = await api.getPair(state.namespace, key);
  } catch (error) {
    if (error.reason !== "KEYS_NOT_FOUND") {
      fill($("#editor-error"), error.message);
      return;
    }
  }
  state.theirs = theirs;
  fill($("#conflict-text"), theirs
    ? `Someone saved version ${theirs.version} of this key after you opened it. Choose which value to keep.`
    : "This key was deleted after you opened it. Choose whether to save your value.");
  fill($("#conflict-mine"), $("#editor-value").value);
  fill($("#conflict-theirs-title"), theirs ? `Stored value (version ${theirs.version})` : "Stored value");
  fill($("#conflict-theirs"), theirs ? JSON.stringify(theirs.value, null, 2) : "(deleted)");
  $("#take-theirs").hidden = !theirs;
  $("#conflict").hidden = false;
  $("#conflict-title").focus();
  $("#conflict").scrollIntoView({ block: "start" });
}

$("#keep-mine").addEventListener("click", () => {
  $("#conflict").hidden = true;
  save(state.theirs ? state.theirs.version : "0");
});

$("#take-theirs").addEventListener("click", () => {
  $("#conflict").hidden = true;
  openKey(state.edit.key);
});

$("#delete").addEventListener("click", async () => {
  fill($("#editor-error"));
  const key = state.edit.key;
  try {
    await api.deletePair(state.namespace, key, state.edit.version);
  } catch (error) {
    fill($("#editor-error"), error.reason === "VERSION_MISMATCH"
      ? "This key changed after you opened it; nothing was deleted. Close and open it again to see the new value."
      : error.message);
    return;
  }
  state.keys.delete(key);
  renderEntries();
  closePanel("#editor");
  fill($("#list-status"), `Deleted ${key}.`);
  $("#new-key").focus();
});

// ---- sharing ----------------------------------------------------------------------------

$("#show-sharing").addEventListener("click", async () => {
  showPanel("#sharing");
  await renderGrants();
});
$("#close-sharing").addEventListener("click", () => closePanel("#sharing"));

async function renderGrants() {
  fill($("#grant-error"));
  fill($("#grants-given"));
  fill($("#grants-received"));
  try {
    const [given, received] = await Promise.all([api.listGrants(), api.receivedGrants()]);
    fill($("#grants-given"), (given.grants || []).map(grantRow));
    if (!(given.grants || []).length) fill($("#grants-given"), h("li", {}, "You have shared nothing."));
    fill($("#grants-received"), (received.grants || []).map((g) =>
      h("li", {}, `${g.namespace}: ${g.prefix || "everything"} (${g.role.toLowerCase()})`)));
    if (!(received.grants || []).length) fill($("#grants-received"), h("li", {}, "Nothing is shared with you."));
  } catch (error) {
    fill($("#grant-error"), error.message);
  }
}

function grantRow(grant) {
  const label = `${grant.grantee}: ${grant.prefix || "everything"}`;
  const role = h("select", {
    "aria-label": `Role of ${label}`,
    onchange: () => changeGrant(grant.grantee, role.value, grant.prefix || ""),
  }, h("option", { value: "READER" }, "Reader"), h("option", { value: "WRITER" }, "Writer"));
  role.value = grant.role;
  return h("li", { class: "grant" }, h("span", {}, label), role,
    h("button", { type: "button", "aria-label": `Revoke ${label}`, onclick: () => revoke(grant.grantee, grant.prefix || "") },
      "Revoke"));
}

async function changeGrant(grantee, role, prefix) {
  try {
    await api.createGrant(grantee, role, prefix);
  } catch (error) {
    fill($("#grant-error"), error.message);
  }
  await renderGrants();
}

async function revoke(grantee, prefix) {
  try {
    await api.deleteGrant(grantee, prefix);
  } catch (error) {
    fill($("#grant-error"), error.message);
    return;
  }
  await renderGrants();
  $("#grant-grantee").focus();
}

$("#grant-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  fill($("#grant-error"));
  try {
    await api.createGrant($("#grant-grantee").value, $("#grant-role").value, $("#grant-prefix").value);
  } catch (error) {
    fill($("#grant-error"), error.message);
    return;
  }
  $("#grant-grantee").value = "";
  $("#grant-prefix").value = "";
  await renderGrants();
});

// ---- start ------------------------------------------------------------------------------

const current = api.session();
if (current) {
  state.login = current.login;
  showConsole();
} else {
  showAuth("");
}
