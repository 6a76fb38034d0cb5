// The server's APIs as the app uses them: WebDAV on /dav/spaces, Libre Graph, OCS sharing. Errors
// become ApiError with a message the user can act on (quota, lock, permission) instead of a status.
import * as auth from "./auth.js";
import { t } from "./i18n.js";
import { streamResponses, unescapeXml } from "./multistatus.js";

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export function messageFor(status, serverMessage = "") {
  if (status === 507) return t("quotaExceeded");
  if (status === 423) return t("locked");
  if (status === 403) return t("forbidden");
  if (status === 404) return t("notFound");
  if (status === 405 || status === 412) return t("conflict");
  if (status === 409) return serverMessage || t("parentMissing"); // WebDAV: mostly the target folder is gone
  if (status === 0) return t("networkError");
  return serverMessage || t("failed", { status });
}

// a credential for requests the app cannot decorate itself (public links use Basic public:<password>)
let publicCredential = "";
export function usePublicLink(password) {
  publicCredential = "Basic " + btoa(`public:${password}`);
}

export function authHeader() {
  if (publicCredential) return publicCredential;
  const token = auth.accessToken();
  return token ? `Bearer ${token}` : "";
}

// Names this tab in the live events its own requests cause (the server echoes it as initiatorid),
// so the tab does not refresh again for what it has already shown.
export const INITIATOR_ID = globalThis.crypto?.randomUUID?.() ?? `${Date.now()}-${Math.random().toString(36).slice(2)}`;

export async function request(method, url, { headers = {}, body, retry = true } = {}) {
  let res;
  try {
    const credential = authHeader();
    const sent = { "initiator-id": INITIATOR_ID, ...headers };
    if (credential) sent.authorization = credential;
    res = await fetch(url, { method, headers: sent, body });
  } catch {
    throw new ApiError(0, messageFor(0));
  }
  if (res.status === 401 && retry && !publicCredential && auth.accessToken()) {
    try { await auth.refresh(); } catch { auth.login(); }
    return request(method, url, { headers, body, retry: false });
  }
  if (!res.ok && res.status !== 207) {
    const text = await res.text().catch(() => "");
    throw new ApiError(res.status, messageFor(res.status, serverMessage(text)));
  }
  return res;
}

function serverMessage(text) {
  const dav = /<s:message>([^<]*)<\/s:message>/.exec(text);
  if (dav) return dav[1];
  try {
    const doc = JSON.parse(text);
    return doc?.error?.message || doc?.ocs?.meta?.message || "";
  } catch {
    return "";
  }
}

export async function json(method, url, body) {
  const res = await request(method, url, body === undefined ? {} :
    { headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  return res.status === 204 ? null : res.json();
}

// ---- WebDAV ---------------------------------------------------------------------------------------

export const DAV = "/dav/spaces";
const NS = { d: "DAV:", oc: "http://owncloud.org/ns", nc: "http://nextcloud.org/ns" };
const LIST_PROPS = `<?xml version="1.0"?><d:propfind xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns" \
xmlns:nc="http://nextcloud.org/ns"><d:prop><oc:fileid/><d:getetag/><d:resourcetype/><oc:size/>\
<d:getcontentlength/><d:getcontenttype/><d:getlastmodified/><oc:permissions/><oc:share-types/>\
<nc:has-preview/><oc:tags/></d:prop></d:propfind>`;
// a public link's root also says what the link allows (oc:public-link-permission: 4 is a file drop)
const PUBLIC_PROPS = LIST_PROPS.replace("<oc:tags/>", "<oc:tags/><d:displayname/><oc:public-link-permission/><oc:public-link-share-owner/>");

export function encodePath(path) {
  return path.split("/").map(encodeURIComponent).join("/");
}

// a space by its id, or a public link as "public:<token>"
export function davBase(spaceId) {
  return spaceId.startsWith("public:") ? `/dav/public-files/${encodeURIComponent(spaceId.slice(7))}`
    : `${DAV}/${encodeURIComponent(spaceId)}`;
}

export function davUrl(spaceId, path = "") {
  return `${davBase(spaceId)}${path ? "/" + encodePath(path.replace(/^\/+/, "")) : ""}`;
}

function text(el, ns, name) {
  const found = el.getElementsByTagNameNS(ns, name)[0];
  return found ? found.textContent : "";
}

/** A folder entry from one response of a listing (see multistatus.js). */
export function entryOf({ href: raw, props }, hrefBase) {
  const href = decodeURIComponent(raw);
  const value = (name) => unescapeXml(props.get(name) ?? "");
  const isFolder = (props.get("d:resourcetype") || "").includes("collection");
  const rel = href.startsWith(hrefBase) ? href.slice(hrefBase.length) : href;
  const path = rel.replace(/^\/+|\/+$/g, "");
  return {
    href,
    path,
    name: path.split("/").pop() || "",
    id: value("oc:fileid"),
    etag: value("d:getetag"),
    isFolder,
    size: Number(isFolder ? value("oc:size") : value("d:getcontentlength")) || 0,
    type: value("d:getcontenttype"),
    modified: value("d:getlastmodified"),
    permissions: value("oc:permissions"),
    shared: (props.get("oc:share-types") || "") !== "",
    hasPreview: value("nc:has-preview") === "true",
    tags: value("oc:tags"),
    displayName: value("d:displayname"),
    linkPermission: value("oc:public-link-permission"),
    linkOwner: value("oc:public-link-share-owner"),
  };
}

/** The folder's own entry first, then its children. */
export async function list(spaceId, path = "", depth = "1") {
  const res = await request("PROPFIND", davUrl(spaceId, path), {
    headers: { depth, "content-type": "application/xml" }, body: spaceId.startsWith("public:") ? PUBLIC_PROPS : LIST_PROPS,
  });
  const base = decodeURIComponent(davBase(spaceId));
  const out = [];
  for await (const batch of streamResponses(res)) {
    for (const response of batch) if (response.props.size) out.push(entryOf(response, base));
  }
  return out;
}

export function mkcol(spaceId, path) {
  return request("MKCOL", davUrl(spaceId, path));
}

export function remove(spaceId, path) {
  return request("DELETE", davUrl(spaceId, path));
}

export function transfer(method, spaceId, path, targetSpaceId, targetPath, overwrite = false) {
  return request(method, davUrl(spaceId, path), {
    headers: { destination: location.origin + davUrl(targetSpaceId, targetPath), overwrite: overwrite ? "T" : "F" },
  });
}

// ---- downloads ------------------------------------------------------------------------------------
// A download goes to disk as the browser receives it: the app signs the URL with the user's signing
// key (as ownCloud Web does), so no Authorization header is needed and nothing is held in memory. A
// link's visitor signs with the link's key (asked for with the link's password). Where WebCrypto is
// missing (plain HTTP on another host), the file comes through fetch as a blob instead.

const SIGNED_URL_LIFETIME_S = 1200;
const signingKeys = new Map(); // "" for the signed-in user, else the public link's token -> key request

function hex(buffer) {
  return [...new Uint8Array(buffer)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

export async function signedUrl(url) {
  if (!globalThis.crypto?.subtle) return null;
  const target = new URL(url, location.origin);
  const link = publicCredential ? /^\/dav\/public-files\/([^/]+)/.exec(target.pathname)?.[1] : "";
  if (link === undefined) return null; // a visitor's URL that is not the link's
  if (!signingKeys.has(link)) {
    const query = link ? `format=json&public-token=${link}` : "format=json";
    signingKeys.set(link, json("GET", `/ocs/v1.php/cloud/user/signing-key?${query}`).then((doc) => doc.ocs.data)
      .catch((error) => { signingKeys.delete(link); throw error; }));
  }
  const { user, "signing-key": key } = await signingKeys.get(link);
  const unsigned = `${target.origin}${target.pathname}${target.search ? target.search + "&" : "?"}` +
    `OC-Credential=${encodeURIComponent(user)}&OC-Date=${encodeURIComponent(new Date().toISOString())}` +
    `&OC-Expires=${SIGNED_URL_LIFETIME_S}&OC-Verb=GET`;
  const encoder = new TextEncoder();
  const material = await crypto.subtle.importKey("raw", encoder.encode(unsigned), "PBKDF2", false, ["deriveBits"]);
  const bits = await crypto.subtle.deriveBits({ name: "PBKDF2", hash: "SHA-512", salt: encoder.encode(key), iterations: 10000 },
    material, 256);
  return `${unsigned}&OC-Algo=${encodeURIComponent("PBKDF2/10000-SHA512")}&OC-Signature=${hex(bits)}`;
}

export async function download(url, name) {
  const signed = await signedUrl(url).catch(() => null);
  if (signed) {
    const link = Object.assign(document.createElement("a"), { href: signed, download: name });
    document.body.append(link);
    link.click();
    link.remove();
    return;
  }
  const res = await request("GET", url);
  const blob = await res.blob();
  const link = Object.assign(document.createElement("a"), { href: URL.createObjectURL(blob), download: name });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 60_000);
}

export async function previewUrl(url, etag, size = 64) {
  const res = await request("GET", `${url}?preview=1&x=${size}&y=${size}&a=1&c=${encodeURIComponent(etag)}`);
  return URL.createObjectURL(await res.blob());
}

// ---- trash and versions ---------------------------------------------------------------------------

const TRASH_PROPS = `<?xml version="1.0"?><d:propfind xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns"><d:prop>\
<oc:trashbin-original-filename/><oc:trashbin-original-location/><oc:trashbin-delete-timestamp/>\
<oc:trashbin-delete-datetime/><d:getcontentlength/><oc:size/><d:resourcetype/></d:prop></d:propfind>`;

export async function trash(spaceId) {
  const base = `/dav/spaces/trash-bin/${encodeURIComponent(spaceId)}`;
  const res = await request("PROPFIND", `${base}/`, { headers: { depth: "1" }, body: TRASH_PROPS });
  const doc = new DOMParser().parseFromString(await res.text(), "application/xml");
  const items = [];
  for (const response of doc.getElementsByTagNameNS(NS.d, "response")) {
    const href = text(response, NS.d, "href");
    const key = decodeURIComponent(href).replace(/\/+$/, "").split("/").pop();
    if (!text(response, NS.oc, "trashbin-original-filename")) continue; // the trash's own entry
    items.push({
      key, href,
      name: text(response, NS.oc, "trashbin-original-filename"),
      location: text(response, NS.oc, "trashbin-original-location"),
      deleted: text(response, NS.oc, "trashbin-delete-datetime"),
      isFolder: response.getElementsByTagNameNS(NS.d, "collection").length > 0,
      size: Number(text(response, NS.oc, "size") || text(response, NS.d, "getcontentlength")) || 0,
    });
  }
  return items;
}

export function restoreTrash(spaceId, item) {
  return request("MOVE", item.href, {
    headers: { destination: location.origin + davUrl(spaceId, item.location), overwrite: "F" },
  });
}

export function purgeTrash(item) {
  return request("DELETE", item.href);
}

export function emptyTrash(spaceId) {
  return request("DELETE", `/dav/spaces/trash-bin/${encodeURIComponent(spaceId)}/`);
}

export async function versions(fileId) {
  const base = `/dav/meta/${encodeURIComponent(fileId)}/v`;
  const res = await request("PROPFIND", base, {
    headers: { depth: "1" }, body: `<?xml version="1.0"?><d:propfind xmlns:d="DAV:"><d:prop><d:getcontentlength/>\
<d:getlastmodified/><d:getetag/></d:prop></d:propfind>`,
  });
  const doc = new DOMParser().parseFromString(await res.text(), "application/xml");
  const out = [];
  for (const response of doc.getElementsByTagNameNS(NS.d, "response")) {
    const href = text(response, NS.d, "href");
    if (!href.includes("/v/") || href.endsWith("/v/")) continue; // the collection's own entry
    out.push({ href, size: Number(text(response, NS.d, "getcontentlength")) || 0,
      modified: text(response, NS.d, "getlastmodified") });
  }
  return out;
}

export function restoreVersion(version, spaceId, path) {
  return request("COPY", version.href, { headers: { destination: location.origin + davUrl(spaceId, path) } });
}

// ---- search ---------------------------------------------------------------------------------------

export async function search(pattern, limit = 50) {
  const body = `<?xml version="1.0"?><oc:search-files xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns">\
<d:prop><oc:fileid/><oc:spaceid/><d:getcontentlength/><oc:size/><d:resourcetype/><d:getlastmodified/></d:prop>\
<oc:search><oc:pattern>${escapeXml(pattern)}</oc:pattern><oc:limit>${limit}</oc:limit></oc:search></oc:search-files>`;
  const res = await request("REPORT", DAV + "/", { headers: { "content-type": "application/xml" }, body });
  const doc = new DOMParser().parseFromString(await res.text(), "application/xml");
  const out = [];
  for (const response of doc.getElementsByTagNameNS(NS.d, "response")) {
    const href = decodeURIComponent(text(response, NS.d, "href"));
    const rest = href.slice(DAV.length + 1);
    const slash = rest.indexOf("/");
    const space = slash < 0 ? rest : rest.slice(0, slash);
    const path = slash < 0 ? "" : rest.slice(slash + 1).replace(/\/+$/, "");
    out.push({ space, path, name: path.split("/").pop(),
      isFolder: response.getElementsByTagNameNS(NS.d, "collection").length > 0,
      size: Number(text(response, NS.oc, "size") || text(response, NS.d, "getcontentlength")) || 0 });
  }
  return out;
}

export function escapeXml(value) {
  return String(value).replace(/[<>&'"]/g, (c) => `&#${c.charCodeAt(0)};`);
}

// ---- Graph ----------------------------------------------------------------------------------------

export const me = () => json("GET", "/graph/v1.0/me?$expand=memberOf,appRoleAssignments");
export const drives = () => json("GET", "/graph/v1.0/me/drives").then((doc) => doc.value || []);
export const createSpace = (name) => json("POST", "/graph/v1.0/drives", { name, driveType: "project" });
export const sharedWithMe = () => json("GET", "/graph/v1beta1/me/drive/sharedWithMe").then((doc) => doc.value || []);

// an item's shares, or with itemId null the space's members (its root)
function itemPath(driveId, itemId) {
  return `/graph/v1beta1/drives/${encodeURIComponent(driveId)}/${itemId ? `items/${encodeURIComponent(itemId)}` : "root"}`;
}

export function permissions(driveId, itemId) {
  return json("GET", `${itemPath(driveId, itemId)}/permissions`);
}

export function invite(driveId, itemId, recipient, roleId, expiration) {
  const body = { recipients: [{ objectId: recipient.id, "@libre.graph.recipient.type": recipient.kind }], roles: [roleId] };
  if (expiration) body.expirationDateTime = expiration;
  return json("POST", `${itemPath(driveId, itemId)}/invite`, body);
}

export function createLink(driveId, itemId, type, password, expiration) {
  const body = { type };
  if (password) body.password = password;
  if (expiration) body.expirationDateTime = expiration;
  return json("POST", `${itemPath(driveId, itemId)}/createLink`, body);
}

export function updatePermission(driveId, itemId, permissionId, change) {
  return json("PATCH", `${itemPath(driveId, itemId)}/permissions/${encodeURIComponent(permissionId)}`, change);
}

export function setLinkPassword(driveId, itemId, permissionId, password) {
  return json("POST", `${itemPath(driveId, itemId)}/permissions/${encodeURIComponent(permissionId)}/setPassword`, { password });
}

export function removePermission(driveId, itemId, permissionId) {
  return json("DELETE", `${itemPath(driveId, itemId)}/permissions/${encodeURIComponent(permissionId)}`);
}

export const updateSpace = (driveId, change) => json("PATCH", `/graph/v1.0/drives/${encodeURIComponent(driveId)}`, change);

/** Puts a file into the space's hidden .space folder and makes it the space's image or readme. */
export async function setSpaceSpecial(driveId, kind, name, body) {
  await request("MKCOL", davUrl(driveId, ".space")).catch((error) => { if (error.status !== 405) throw error; });
  const res = await request("PUT", davUrl(driveId, `.space/${name}`), { body });
  const fileId = res.headers.get("oc-fileid");
  return updateSpace(driveId, { special: [{ specialFolder: { name: kind }, id: fileId }] });
}

export async function sharees(term) {
  const q = encodeURIComponent(`"${term.replace(/"/g, "")}"`);
  const [users, groups] = await Promise.all([
    json("GET", `/graph/v1.0/users?$search=${q}&$orderby=displayName`).catch(() => ({ value: [] })),
    json("GET", `/graph/v1.0/groups?$search=${q}&$orderby=displayName`).catch(() => ({ value: [] })),
  ]);
  return [...(users.value || []).map((u) => ({ kind: "user", id: u.id, label: u.displayName, detail: u.mail || u.onPremisesSamAccountName })),
    ...(groups.value || []).map((g) => ({ kind: "group", id: g.id, label: g.displayName, detail: "" }))];
}

export function activities(itemId) {
  const kql = encodeURIComponent(`itemid:${itemId} AND depth:-1 AND limit:50`);
  return json("GET", `/graph/v1beta1/extensions/org.libregraph/activities?kql=${kql}`).then((doc) => doc.value || []);
}

export function notifications() {
  return json("GET", "/ocs/v2.php/apps/notifications/api/v1/notifications?format=json").then((doc) => doc.ocs.data || []);
}

export function dismissNotifications(ids) {
  return json("DELETE", "/ocs/v2.php/apps/notifications/api/v1/notifications?format=json", { ids });
}
