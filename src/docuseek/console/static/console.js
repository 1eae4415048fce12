// Docuseek console: plain JavaScript over the public HTTP API. Nothing from the API is ever
// put into the page as HTML: text goes in as text nodes, and highlights are rebuilt from
// their <mark> tags (see markedText).
"use strict";

const KEY_STORAGE = "docuseek.key";
const SEARCH_DELAY_MS = 200;
const PAGE_SIZE = 10;
// While writes to the collection are still being indexed, the first page is searched again
// this often, so what was just written appears without a keystroke.
const PENDING_REFRESH_MS = 2000;

const state = {
  key: sessionStorage.getItem(KEY_STORAGE),
  admin: false,
  collections: [],
  collection: null, // the selected collection's description
  filters: {}, // facet field -> value
  cursors: [], // cursors of the pages shown so far; the last one is the current page's
  searchSeq: 0,
  searchTimer: null,
  pendingTimer: null,
  tasksTimer: null,
  view: "search",
  fileUrls: [], // blob: URLs of originals opened, revoked after a minute or at sign-out
};

const $ = (id) => document.getElementById(id);

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === false || value === null || value === undefined) continue;
    if (name === "text") node.textContent = value;
    else node.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children) {
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

// ---- the API ------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, body) {
    const error = (body && body.error) || {};
    super(error.message || `HTTP ${status}`);
    this.status = status;
    this.code = error.code || "http_error";
    this.details = error.details;
  }
}

async function api(method, path, body, contentType) {
  const headers = { Authorization: `Bearer ${state.key}` };
  const init = { method, headers };
  if (body !== undefined) {
    headers["Content-Type"] = contentType || "application/json";
    init.body = contentType ? body : JSON.stringify(body);
  }
  const response = await fetch(path, init);
  if (response.status === 204) return null;
  let payload = null;
  const text = await response.text();
  if (text) {
    try {
      payload = JSON.parse(text);
    } catch (e) {
      payload = { error: { message: text.slice(0, 300) } };
    }
  }
  if (!response.ok) {
    const error = new ApiError(response.status, payload);
    if (response.status === 401 && path !== "/collections") signOut(error.message);
    throw error;
  }
  return payload;
}

function showError(error) {
  const message = error instanceof ApiError
    ? `${error.message} (${error.status} ${error.code})`
    : String(error && error.message ? error.message : error);
  $("error").textContent = message;
}

function clearError() {
  $("error").textContent = "";
}

// ---- signing in -----------------------------------------------------------------------

async function signIn(key) {
  state.key = key;
  try {
    state.collections = await api("GET", "/collections");
  } catch (error) {
    state.key = null;
    sessionStorage.removeItem(KEY_STORAGE);
    throw error;
  }
  sessionStorage.setItem(KEY_STORAGE, key);
  try {
    await api("GET", "/keys");
    state.admin = true;
  } catch (error) {
    if (!(error instanceof ApiError && error.status === 403)) throw error;
    state.admin = false;
  }
  $("signin").hidden = true;
  $("nav").hidden = false;
  for (const node of document.querySelectorAll("[data-admin]")) node.hidden = !state.admin;
  fillCollections();
  show("search");
}

function signOut(reason) {
  sessionStorage.removeItem(KEY_STORAGE);
  state.key = null;
  state.admin = false;
  stopTasks();
  for (const url of [...state.fileUrls]) revokeFileUrl(url);
  for (const view of document.querySelectorAll(".view")) view.hidden = true;
  $("nav").hidden = true;
  $("signin").hidden = false;
  $("key").value = "";
  $("error").textContent = reason || "";
  $("key").focus();
}

function show(view) {
  state.view = view;
  for (const section of document.querySelectorAll(".view")) {
    section.hidden = section.id !== `view-${view}`;
  }
  for (const button of document.querySelectorAll("#nav [data-view]")) {
    if (button.dataset.view === view) button.setAttribute("aria-current", "page");
    else button.removeAttribute("aria-current");
  }
  clearError();
  stopTasks();
  if (view === "tasks") startTasks();
  if (view === "keys") loadKeys().catch(showError);
  if (view === "search") $("q").focus();
}

// ---- search -------------------------------------------------------------------------

function fillCollections(selected) {
  const select = $("collection");
  select.replaceChildren(...state.collections.map((c) => el("option", { value: c.name, text: c.name })));
  if (!state.collections.length) {
    select.append(el("option", { value: "", text: "(no collections yet)" }));
  }
  if (selected) select.value = selected;
  selectCollection(select.value);
}

function selectCollection(name) {
  state.collection = state.collections.find((c) => c.name === name) || null;
  state.filters = {};
  const sort = $("sort");
  const options = [el("option", { value: "", text: "Relevance" })];
  if (state.collection) {
    for (const [field, spec] of Object.entries(state.collection.fields)) {
      if (spec.type === "text") continue;
      options.push(el("option", { value: `${field}:asc`, text: `${field} ascending` }));
      options.push(el("option", { value: `${field}:desc`, text: `${field} descending` }));
    }
    options.push(el("option", { value: "_id", text: "id" }));
  }
  sort.replaceChildren(...options);
  closeDocument();
  search();
}

function facetFields() {
  if (!state.collection) return [];
  return Object.entries(state.collection.fields)
    .filter(([, spec]) => spec.facet)
    .map(([field]) => field);
}

function scheduleSearch() {
  clearTimeout(state.searchTimer);
  state.searchTimer = setTimeout(() => search(), SEARCH_DELAY_MS);
}

async function search(cursor) {
  if (!state.collection) {
    renderResults(null);
    return;
  }
  const seq = ++state.searchSeq;
  clearTimeout(state.pendingTimer);
  const body = { q: $("q").value, limit: PAGE_SIZE, facets: facetFields(), filter: {} };
  for (const [field, value] of Object.entries(state.filters)) body.filter[field] = [value];
  if ($("sort").value) body.sort = $("sort").value.split(",");
  if (cursor) body.cursor = cursor;
  try {
    const result = await api("POST", `/collections/${encodeURIComponent(state.collection.name)}/search`, body);
    if (seq !== state.searchSeq) return; // a later keystroke's search owns the page
    clearError();
    if (!cursor) state.cursors = [null];
    else state.cursors.push(cursor);
    renderResults(result);
    if (!cursor && result.pending_tasks > 0) {
      state.pendingTimer = setTimeout(() => {
        if (seq === state.searchSeq && state.view === "search") search();
      }, PENDING_REFRESH_MS);
    }
  } catch (error) {
    if (seq === state.searchSeq) showError(error);
  }
}

// Highlight HTML from the API holds only <mark> tags and escaped text: rebuild it as nodes.
const ENTITIES = { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'" };

function unescapeHtml(text) {
  return text.replace(/&(#x[0-9a-f]+|#\d+|[a-z]+);/gi, (whole, name) => {
    if (name[0] === "#") {
      const code = name[1].toLowerCase() === "x" ? parseInt(name.slice(2), 16) : parseInt(name.slice(1), 10);
      return Number.isFinite(code) ? String.fromCodePoint(code) : whole;
    }
    return ENTITIES[name.toLowerCase()] ?? whole;
  });
}

function markedText(html) {
  const fragment = document.createDocumentFragment();
  const parts = html.split(/(<mark>|<\/mark>)/);
  let marked = false;
  for (const part of parts) {
    if (part === "<mark>") marked = true;
    else if (part === "</mark>") marked = false;
    else if (part) {
      const text = document.createTextNode(unescapeHtml(part));
      fragment.append(marked ? el("mark", {}, text) : text);
    }
  }
  return fragment;
}

// The title is the highest-weighted text field (A before D; C when unset): the API returns
// the schema's fields in its own key order, not the order they were written in.
function titleOf(hit) {
  const doc = hit.document || {};
  const texts = Object.entries(state.collection ? state.collection.fields : {})
    .filter(([field, spec]) => spec.type === "text" && typeof doc[field] === "string")
    .sort(([a, x], [b, y]) => (x.weight || "C").localeCompare(y.weight || "C") || a.localeCompare(b));
  return texts.length ? [texts[0][0], doc[texts[0][0]]] : [null, hit.id];
}

function renderResults(result) {
  const hits = $("hits");
  if (!result) {
    $("result-count").textContent = state.collections.length
      ? ""
      : "No collection yet: an admin key can create one under New collection.";
    hits.replaceChildren();
    $("facets").replaceChildren();
    $("next-page").hidden = $("first-page").hidden = true;
    return;
  }
  const page = state.cursors.length;
  const about = result.total_relation === "gte" ? "at least " : "";
  const pending = result.pending_tasks || 0;
  $("result-count").textContent =
    `${about}${result.total} result${result.total === 1 ? "" : "s"}` +
    (page > 1 ? `, page ${page}` : "") + ` (${result.took_ms} ms)` +
    (pending ? ` · ${pending} write${pending === 1 ? " is" : "s are"} still being indexed` : "");
  hits.replaceChildren(...result.hits.map(renderHit));
  renderFacets(result.facets || {});
  $("next-page").hidden = !result.next_cursor;
  $("next-page").dataset.cursor = result.next_cursor || "";
  $("first-page").hidden = page <= 1;
}

function renderHit(hit) {
  const [titleField, title] = titleOf(hit);
  const highlights = hit.highlights || {};
  const heading = el("button", { type: "button", class: "hit-title" });
  heading.append(highlights[titleField] ? markedText(highlights[titleField][0]) : String(title));
  heading.addEventListener("click", () => openDocument(hit.id, heading));
  const item = el("li", { class: "hit" }, el("h4", {}, heading));
  for (const [field, snippets] of Object.entries(highlights)) {
    if (field === titleField) continue;
    for (const snippet of snippets) {
      const p = el("p", { class: "snippet" }, el("span", { class: "field", text: `${field}: ` }));
      p.append(markedText(snippet));
      item.append(p);
    }
  }
  const meta = [`id ${hit.id}`];
  for (const [field, spec] of Object.entries(state.collection.fields)) {
    const value = hit.document[field];
    if (spec.type !== "text" && value !== undefined && value !== null) {
      meta.push(`${field}: ${Array.isArray(value) ? value.join(", ") : value}`);
    }
  }
  item.append(el("p", { class: "meta", text: meta.join(" · ") }));
  const files = fileLinks(hit);
  if (files) item.append(files);
  return item;
}

// ---- stored originals -----------------------------------------------------------------

// A document uploaded as a file carries its detected content type: the original can be
// fetched, and a PDF hit's matched pages opened at their page.
function fileLinks(hit) {
  const doc = hit.document || {};
  if (typeof doc.content_type !== "string") return null;
  const pdf = doc.content_type === "application/pdf";
  const links = el("p", { class: "files" });
  const original = el("button", { type: "button", class: "link", "data-file": "original",
    text: "original file" });
  original.addEventListener("click", () => openOriginal(hit.id, doc, null).catch(showError));
  links.append(original);
  const pages = pdf && Array.isArray(hit.pages) ? hit.pages : [];
  if (pages.length) {
    links.append(" · ", el("span", { text: pages.length === 1 ? "page " : "pages " }));
    pages.forEach((page, i) => {
      if (i) links.append(", ");
      const link = el("button", { type: "button", class: "link", "data-page": String(page),
        "aria-label": `open page ${page} of the original`, text: String(page) });
      link.addEventListener("click", () => openOriginal(hit.id, doc, page).catch(showError));
      links.append(link);
    });
  }
  return links;
}

const BLOB_LIFETIME_MS = 60000;

// The download route needs the key, so a plain link cannot reach it: the bytes are fetched
// with the key and shown from a blob: URL of this origin. Only a PDF is opened (in the
// browser's viewer, at `#page=`); any other type is saved as a download, because an HTML
// original opened from a blob: URL would run as a page of the console's own origin.
async function openOriginal(id, doc, page) {
  const pdf = doc.content_type === "application/pdf";
  // Opened before the fetch, inside the click, so no popup blocker stops it afterwards.
  const tab = pdf ? window.open("", "_blank") : null;
  try {
    const name = encodeURIComponent(state.collection.name);
    const response = await fetch(`/collections/${name}/documents/${encodeURIComponent(id)}/file`,
      { headers: { Authorization: `Bearer ${state.key}` } });
    if (!response.ok) {
      let body = null;
      try { body = await response.json(); } catch (e) { body = null; }
      throw new ApiError(response.status, body);
    }
    const bytes = await response.blob();
    const blob = new Blob([bytes], { type: pdf ? "application/pdf" : "application/octet-stream" });
    const url = URL.createObjectURL(blob);
    state.fileUrls.push(url);
    setTimeout(() => revokeFileUrl(url), BLOB_LIFETIME_MS);
    if (tab) {
      tab.opener = null; // the viewer's tab gets no handle on the console
      tab.location.href = page ? `${url}#page=${page}` : url;
    } else {
      const a = el("a", { href: url, download: doc.filename || id });
      document.body.append(a);
      a.click();
      a.remove();
    }
  } catch (error) {
    if (tab) tab.close();
    throw error;
  }
}

function revokeFileUrl(url) {
  URL.revokeObjectURL(url);
  state.fileUrls = state.fileUrls.filter((u) => u !== url);
}

function renderFacets(facets) {
  // A facet clicked from the keyboard keeps the focus across the re-render.
  const had = document.activeElement && document.activeElement.closest("#facets button");
  const refocus = had ? `${had.dataset.field}\u0000${had.dataset.value}` : null;
  const groups = [];
  for (const [field, values] of Object.entries(facets)) {
    const list = el("ul", { class: "facet-values" });
    for (const { value, count } of values) {
      const active = state.filters[field] === value;
      const button = el("button", { type: "button", "aria-pressed": active ? "true" : "false",
        "data-field": field, "data-value": String(value) },
        el("span", { text: String(value) }), " ", el("span", { class: "count", text: `(${count})` }));
      button.addEventListener("click", () => {
        if (active) delete state.filters[field];
        else state.filters[field] = value;
        search();
      });
      list.append(el("li", {}, button));
    }
    groups.push(el("div", { class: "facet", role: "group", "aria-label": `Filter by ${field}` },
      el("h4", { text: field }), list));
  }
  $("facets").replaceChildren(...groups);
  if (!groups.length) $("facets").append(el("p", { class: "help", text: "No facet fields." }));
  if (refocus) {
    const again = [...$("facets").querySelectorAll("button")]
      .find((b) => `${b.dataset.field}\u0000${b.dataset.value}` === refocus);
    if (again) again.focus();
  }
}

async function openDocument(id, opener) {
  try {
    const name = encodeURIComponent(state.collection.name);
    const doc = await api("GET", `/collections/${name}/documents/${encodeURIComponent(id)}`);
    $("document-title").textContent = `Document ${doc.id}`;
    $("document-meta").replaceChildren(
      el("dt", { text: "Version" }), el("dd", { text: String(doc.version) }),
      el("dt", { text: "Updated" }), el("dd", { text: new Date(doc.updated_at).toLocaleString() }),
    );
    $("document-body").textContent = JSON.stringify(doc.document, null, 2);
    state.documentOpener = opener;
    $("document").hidden = false;
    $("document").focus();
  } catch (error) {
    showError(error);
  }
}

function closeDocument() {
  $("document").hidden = true;
  if (state.documentOpener && document.contains(state.documentOpener)) state.documentOpener.focus();
  state.documentOpener = null;
}

async function upload(event) {
  event.preventDefault();
  const file = $("upload-file").files[0];
  const status = $("upload-status");
  if (!file || !state.collection) {
    status.textContent = "Choose a collection and a file first.";
    return;
  }
  const text = await file.text();
  const ndjson = !text.trimStart().startsWith("[");
  status.textContent = `Uploading ${file.name}…`;
  try {
    const name = encodeURIComponent(state.collection.name);
    const task = await api("POST", `/collections/${name}/documents`, text,
      ndjson ? "application/x-ndjson" : "application/json");
    status.textContent = `Task ${task.task_id}: ${task.received} documents ${task.status}.`;
    waitForTask(task.task_id, status);
  } catch (error) {
    status.textContent = "";
    showError(error);
  }
}

async function waitForTask(id, status) {
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, 500));
    if (!state.key) return;
    const task = await api("GET", `/tasks/${id}`).catch(showError);
    if (!task) return;
    const d = task.details;
    status.textContent = `Task ${id}: ${task.status}, ${d.indexed} of ${d.received} indexed` +
      (task.error ? ` (${task.error})` : "") + ".";
    if (task.status === "succeeded" || task.status === "failed") {
      await refreshCollections();
      search();
      return;
    }
  }
}

async function refreshCollections(selected) {
  state.collections = await api("GET", "/collections");
  const current = selected || (state.collection && state.collection.name);
  const select = $("collection");
  select.replaceChildren(...state.collections.map((c) => el("option", { value: c.name, text: c.name })));
  if (current) select.value = current;
  state.collection = state.collections.find((c) => c.name === select.value) || null;
}

// ---- tasks --------------------------------------------------------------------------

function startTasks() {
  loadTasks();
  state.tasksTimer = setInterval(loadTasks, 1000);
}

function stopTasks() {
  clearInterval(state.tasksTimer);
  state.tasksTimer = null;
}

async function loadTasks() {
  try {
    const page = await api("GET", "/tasks?limit=50");
    $("tasks").tBodies[0].replaceChildren(...page.results.map((t) => el("tr", {},
      el("td", { text: String(t.id) }),
      el("td", { text: t.collection }),
      el("td", { text: t.type }),
      el("td", {}, el("span", { class: `status status-${t.status}`, text: t.status }),
        t.error ? el("span", { class: "task-error", text: ` ${t.error}` }) : ""),
      el("td", { text: `${t.details.indexed} / ${t.details.received}` }),
      el("td", { text: new Date(t.enqueued_at).toLocaleString() }))));
  } catch (error) {
    showError(error);
  }
}

// ---- collections --------------------------------------------------------------------

const DATE_RE = /^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$/;

function inferType(value) {
  if (typeof value === "boolean") return { type: "boolean" };
  if (typeof value === "number") return { type: Number.isInteger(value) ? "integer" : "float" };
  if (Array.isArray(value) && value.every((v) => typeof v === "string")) {
    return { type: "keyword", facet: true };
  }
  if (typeof value === "string") {
    if (DATE_RE.test(value)) return { type: "date" };
    // Short values without spaces are labels to filter on rather than prose to search.
    if (value.length <= 40 && !/\s/.test(value)) return { type: "keyword", facet: true };
    return { type: "text" };
  }
  return null;
}

function inferSchema() {
  const errors = $("schema-errors");
  errors.replaceChildren();
  let sample;
  try {
    sample = JSON.parse($("sample").value);
  } catch (error) {
    errors.append(el("p", { text: `Sample document: not JSON (${error.message})` }));
    return;
  }
  if (!sample || typeof sample !== "object" || Array.isArray(sample)) {
    errors.append(el("p", { text: "Sample document: must be one JSON object" }));
    return;
  }
  const fields = {};
  let firstText = true;
  for (const [name, value] of Object.entries(sample)) {
    if (name === "id") continue;
    const spec = inferType(value);
    if (!spec) continue;
    if (spec.type === "text" && firstText) {
      spec.weight = "A";
      firstText = false;
    }
    fields[name] = spec;
  }
  $("schema").value = JSON.stringify({ fields }, null, 2);
  $("schema").focus();
}

async function createCollection(event) {
  event.preventDefault();
  const errors = $("schema-errors");
  errors.replaceChildren();
  $("collection-status").textContent = "";
  const name = $("new-name").value.trim();
  let schema;
  try {
    schema = JSON.parse($("schema").value);
  } catch (error) {
    errors.append(el("p", { text: `Schema: not JSON (${error.message})` }));
    $("schema").focus();
    return;
  }
  try {
    await api("PUT", `/collections/${encodeURIComponent(name)}`, schema);
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    errors.append(el("p", { text: `${error.message} (${error.status} ${error.code})` }));
    if (Array.isArray(error.details)) {
      errors.append(el("ul", {}, ...error.details.map((d) =>
        el("li", { text: `${(d.loc || []).join(".")}: ${d.msg}` }))));
    }
    return;
  }
  $("collection-status").textContent = `Collection ${name} created.`;
  await refreshCollections(name);
  fillCollections(name);
}

// ---- keys ---------------------------------------------------------------------------

async function loadKeys() {
  const keys = await api("GET", "/keys");
  $("keys").tBodies[0].replaceChildren(...keys.map((k) => {
    const revoke = el("button", { type: "button", class: "danger", text: "Revoke",
      "aria-label": `Revoke key ${k.name}` });
    revoke.addEventListener("click", async () => {
      if (!window.confirm(`Revoke key ${k.name} (${k.prefix}…)? It stops working at once.`)) return;
      try {
        await api("DELETE", `/keys/${k.id}`);
        $("new-key").hidden = true;
        await loadKeys();
        $("key-name").focus();
      } catch (error) {
        showError(error);
      }
    });
    return el("tr", {},
      el("td", { text: String(k.id) }), el("td", { text: k.name }),
      el("td", {}, el("code", { text: `${k.prefix}…` })),
      el("td", { text: k.scopes.join(", ") }), el("td", { text: k.collections.join(", ") }),
      el("td", { text: new Date(k.created_at).toLocaleString() }), el("td", {}, revoke));
  }));
}

async function createKey(event) {
  event.preventDefault();
  clearError();
  const scopes = [...document.querySelectorAll("input[name=scope]:checked")].map((i) => i.value);
  const collections = $("key-collections").value.split(",").map((s) => s.trim()).filter(Boolean);
  try {
    const created = await api("POST", "/keys", { name: $("key-name").value, scopes, collections });
    $("new-key-secret").value = created.key;
    $("new-key").hidden = false;
    $("new-key-secret").select();
    $("new-key-secret").focus();
    $("key-name").value = "";
    await loadKeys();
  } catch (error) {
    showError(error);
  }
}

// ---- wiring -------------------------------------------------------------------------

document.addEventListener("DOMContentLoaded", () => {
  $("signin-form").addEventListener("submit", (event) => {
    event.preventDefault();
    clearError();
    signIn($("key").value.trim()).catch(showError);
  });
  $("signout").addEventListener("click", () => signOut());
  for (const button of document.querySelectorAll("#nav [data-view]")) {
    button.addEventListener("click", () => show(button.dataset.view));
  }
  $("collection").addEventListener("change", (event) => selectCollection(event.target.value));
  $("q").addEventListener("input", () => {
    state.filters = {};
    scheduleSearch();
  });
  $("sort").addEventListener("change", () => search());
  $("next-page").addEventListener("click", () => {
    search($("next-page").dataset.cursor);
    $("results").focus();
  });
  $("first-page").addEventListener("click", () => search());
  $("document-close").addEventListener("click", closeDocument);
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && !$("document").hidden) closeDocument();
  });
  $("upload-form").addEventListener("submit", upload);
  $("infer").addEventListener("click", inferSchema);
  $("collection-form").addEventListener("submit", (e) => createCollection(e).catch(showError));
  $("key-form").addEventListener("submit", createKey);
  $("results").setAttribute("tabindex", "-1");
  if (state.key) {
    signIn(state.key).catch((error) => signOut(error.message));
  } else {
    $("key").focus();
  }
});
