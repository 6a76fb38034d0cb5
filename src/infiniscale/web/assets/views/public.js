// The page a public link opens for visitors: the password (if the link has one), then the shared
// file or folder to view and download, and an upload drop where the link allows uploads.
import * as api from "../api.js";
import { formatDate, formatSize, t } from "../i18n.js";
import { h, icon, showError } from "../ui.js";
import { UploadManager, droppedFiles } from "../upload.js";

export async function publicView(rest) {
  const [token, ...inner] = rest.split("/");
  const info = await api.json("GET", `/ocs/v1.php/apps/files_sharing/api/v1/tokeninfo/unprotected/${encodeURIComponent(token)}?format=json`)
    .then((doc) => doc.ocs.data).catch(() => null);
  const shell = (...content) => h("div", { class: "public" },
    h("header", { class: "top" }, h("span", { class: "brand" }, h("img", { src: "/assets/icon.svg", alt: "" }), t("appName"))),
    h("main", { id: "main", class: "public-main" }, ...content));
  if (!info) return shell(h("h1", {}, t("publicLink")), h("p", { role: "alert" }, t("linkGone")));
  const page = shell(h("p", {}, t("loading")));
  const main = page.querySelector("main");
  if (info.password_protected) {
    const password = h("input", { type: "password", id: "public-password", autocomplete: "current-password", required: true });
    const error = h("p", { class: "error", role: "alert", id: "password-error" });
    main.replaceChildren(h("h1", {}, t("publicLink")), h("form", { class: "stack narrow", onsubmit: async (e) => {
      e.preventDefault();
      const res = await fetch(`/ocs/v1.php/apps/files_sharing/api/v1/tokeninfo/protected/${encodeURIComponent(token)}?format=json`,
        { headers: { authorization: "Basic " + btoa(`public:${password.value}`) } });
      // OCS v1 answers HTTP 200 and says in its envelope whether the password was right
      const status = res.ok ? Number((await res.json().catch(() => null))?.ocs?.meta?.statuscode) || 500 : res.status;
      if (status !== 100 && status !== 200) {
        error.textContent = status === 401 || status === 997 ? t("wrongPassword") : api.messageFor(status);
        password.focus();
        return;
      }
      api.usePublicLink(password.value);
      show(main, token, inner.join("/"));
    } }, h("p", {}, t("enterPassword")), h("label", { for: "public-password" }, t("password")), password, error,
    h("button", { type: "submit", class: "button primary", id: "public-open" }, t("open"))));
    requestAnimationFrame(() => password.focus()); // once the page is in the document
  } else {
    api.usePublicLink("");
    show(main, token, inner.join("/"));
  }
  return page;
}

// One upload manager (and panel) per page; a folder view lists itself again once a burst of uploads
// has finished, not after each file.
let uploads = null;
let relist = () => {};
let relistTimer = 0;

function uploadsOfPage() {
  uploads ??= new UploadManager((upload) => {
    if (upload.state === "failed") { showError(new Error(`${upload.relativePath}: ${upload.error}`)); return; }
    clearTimeout(relistTimer);
    relistTimer = setTimeout(() => relist(), 300);
  });
  return uploads;
}

async function show(main, token, path) {
  const space = `public:${token}`;
  let entries = null;
  try { entries = await api.list(space, path); } catch (error) { if (error.status !== 403 && error.status !== 404) { showError(error); return; } }
  const root = entries?.find((e) => e.path === path) || entries?.[0];
  const dropOnly = !entries || root?.linkPermission === "4";
  const canUpload = dropOnly || /[CK]/.test(root?.permissions || "");
  relist = dropOnly ? () => {} : () => show(main, token, path);
  const drop = canUpload ? dropArea(space, path, uploadsOfPage(), dropOnly) : null;
  if (dropOnly) { main.replaceChildren(h("h1", {}, root?.displayName || t("publicLink")), drop); return; }
  if (!root?.isFolder && entries.length === 1) {
    main.replaceChildren(h("h1", {}, root.name), h("p", {}, formatSize(root.size)),
      h("button", { type: "button", class: "button primary", id: "public-download", onclick: () => api.download(api.davUrl(space, ""), root.name).catch(showError) }, t("download")));
    return;
  }
  const items = entries.filter((e) => e !== root);
  main.replaceChildren(h("h1", {}, root?.name || root?.displayName || t("publicLink")),
    root?.linkOwner ? h("p", { class: "muted" }, t("sharedBy", { name: root.linkOwner })) : "",
    h("ul", { class: "plain public-list", id: "public-list" }, items.map((item) => h("li", { dataset: { name: item.name } },
      icon(item.isFolder ? "folder" : "file"),
      item.isFolder ? h("a", { href: `/s/${token}/${api.encodePath(item.path)}`, onclick: (e) => { e.preventDefault(); history.pushState(null, "", e.currentTarget.href); show(main, token, item.path); } }, item.name)
        : h("span", {}, item.name),
      h("small", {}, ` ${formatSize(item.size)} · ${formatDate(item.modified)} `),
      item.isFolder ? null : h("button", { type: "button", class: "link", "aria-label": `${t("download")}: ${item.name}`,
        onclick: () => api.download(api.davUrl(space, item.path), item.name).catch(showError) }, t("download"))))),
    drop || "");
}

function dropArea(space, path, uploads, dropOnly) {
  const input = h("input", { type: "file", multiple: true, id: "public-upload-input", class: "visually-hidden",
    onchange: (e) => { uploads.add(space, path, [...e.target.files].map((file) => ({ file, path: file.name }))).catch(showError); e.target.value = ""; } });
  const area = h("div", { class: "drop-area", id: "public-drop" },
    h("p", {}, dropOnly ? t("dropFiles") : t("dropHere")),
    h("label", { for: "public-upload-input", class: "button primary" }, t("uploadFiles")), input);
  area.addEventListener("dragover", (e) => { e.preventDefault(); area.classList.add("over"); });
  area.addEventListener("dragleave", () => area.classList.remove("over"));
  area.addEventListener("drop", async (e) => {
    e.preventDefault();
    area.classList.remove("over");
    try {
      await uploads.add(space, path, await droppedFiles(e.dataTransfer));
    } catch (error) { showError(error); }
  });
  return area;
}
