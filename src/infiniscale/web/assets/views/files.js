// A folder of a space: breadcrumbs, the toolbar, the virtualized list, uploads by picker and by drop,
// and the actions on one or many entries.
import * as api from "../api.js";
import { FileList } from "../filelist.js";
import { formatSize, t } from "../i18n.js";
import { state } from "../state.js";
import { ask, dialog, h, icon, showError, toast } from "../ui.js";
import { UploadManager, droppedFiles } from "../upload.js";
import { detailsPanel } from "./details.js";
import { shareDialog } from "./share.js";

// one collator for every comparison: localeCompare with options builds a new one per call
const byName = new Intl.Collator(undefined, { numeric: true, sensitivity: "base" });
const SORTS = {
  name: (a, b) => byName.compare(a.name, b.name),
  size: (a, b) => a.size - b.size,
  modified: (a, b) => (a.modifiedMs ??= Date.parse(a.modified)) - (b.modifiedMs ??= Date.parse(b.modified)),
};

const REFRESH_MS = 400;
let uploads = null;

export function spaceOf(spaceId) {
  return state.drives.find((d) => d.id === spaceId);
}

export function filesUrl(spaceId, path = "") {
  return `/files/${encodeURIComponent(spaceId)}${path ? "/" + api.encodePath(path) : ""}`;
}

export async function thumbnail(spaceId, item, size) {
  const key = `${item.id}|${item.etag}|${size}`;
  if (!state.previews.has(key)) {
    state.previews.set(key, api.previewUrl(api.davUrl(spaceId, item.path), item.etag, size).catch(() => ""));
  }
  return state.previews.get(key);
}

export async function filesView(spaceId, path) {
  const space = spaceOf(spaceId);
  const entries = await api.list(spaceId, path);
  const self = entries.find((e) => e.path === path) || entries[0];
  let items = entries.filter((e) => e !== self);
  let sort = localStorage.getItem("infiniscale.sort") || "name";
  let descending = localStorage.getItem("infiniscale.sortdesc") === "1";
  let chosen = [];
  // what the caller may do, from oc:permissions: C/K create in a folder (W write a file), N rename,
  // V move, D delete; a viewer's items carry none of these
  const canWrite = /[CKW]/.test(self?.permissions || "");
  const may = (letter, selection) => selection.length > 0 && selection.every((i) => (i.permissions || "").includes(letter));

  const list = new FileList({
    onOpen: (item) => open(item),
    onMenu: (item, anchor) => menu(item, anchor),
    onSelectionChange: (sel) => { chosen = sel; renderSelection(); },
    onDelete: (sel) => { if (may("D", sel)) removeMany(sel); },
    preview: (item, size) => thumbnail(spaceId, item, size),
  });

  const sorted = () => {
    const folders = items.filter((i) => i.isFolder).sort(SORTS[sort]);
    const files = items.filter((i) => !i.isFolder).sort(SORTS[sort]);
    if (descending) { folders.reverse(); files.reverse(); }
    return [...folders, ...files];
  };

  // Each reload is numbered: a listing that answers after a newer one was asked for is dropped.
  let generation = 0;
  async function reload() {
    const mine = ++generation;
    try {
      const fresh = await api.list(spaceId, path);
      if (mine !== generation || !view.isConnected) return;
      items = fresh.filter((e) => e.path !== path);
      list.setItems(sorted());
      count.textContent = t("items", { n: items.length });
      empty.hidden = items.length > 0;
      if (space) { // the quota bar follows what was added or removed
        const fresh = await api.json("GET", `/graph/v1.0/drives/${encodeURIComponent(spaceId)}`);
        Object.assign(space, fresh);
        if (fresh.quota) quotaSlot.replaceChildren(quotaBar(fresh.quota));
      }
    } catch (error) {
      showError(error);
    }
  }
  // Live changes come in bursts (each file of an uploaded folder, every event of a big move): they
  // become one listing at most every REFRESH_MS. Events about other folders of the space are skipped.
  let pending = 0;
  const refresh = (changedSpace, event = {}) => {
    if (!view.isConnected) { if (state.refreshOpenFolder === refresh) state.refreshOpenFolder = null; return; }
    if (changedSpace && changedSpace !== spaceId) return;
    const here = self?.id;
    if (here && event.parentitemid && event.parentitemid !== here && event.itemid !== here) return;
    if (!pending) pending = setTimeout(() => { pending = 0; reload(); }, REFRESH_MS);
  };
  state.refreshOpenFolder = refresh;

  function open(item) {
    if (item.isFolder) state.navigate(filesUrl(spaceId, item.path));
    else api.download(api.davUrl(spaceId, item.path), item.name).catch(showError);
  }

  const childPath = (name) => (path ? `${path}/${name}` : name);

  async function newFolder() {
    const name = await ask(t("newFolder"), t("folderName"), "", t("create"));
    if (!name) return;
    try {
      await api.mkcol(spaceId, childPath(name));
      toast(t("created", { name }));
      await reload();
    } catch (error) { showError(error); }
  }

  async function rename(item) {
    const name = await ask(t("rename"), t("newName"), item.name);
    if (!name || name === item.name) return;
    try {
      await api.transfer("MOVE", spaceId, item.path, spaceId, childPath(name));
      toast(t("renamed", { name }));
      await reload();
    } catch (error) { showError(error); }
  }

  async function removeMany(selection) {
    for (const item of selection) {
      try {
        await api.remove(spaceId, item.path);
        toast(t("deleted", { name: item.name }));
      } catch (error) { showError(error); }
    }
    await reload();
  }

  async function transferMany(method, selection) {
    const target = await pickFolder(spaceId, method === "MOVE" ? t("moveTo") : t("copyTo"), path);
    if (target === null) return;
    for (const item of selection) {
      try {
        await api.transfer(method, spaceId, item.path, spaceId, target ? `${target}/${item.name}` : item.name);
        toast(t(method === "MOVE" ? "moved" : "copied", { name: item.name }));
      } catch (error) { showError(error); }
    }
    await reload();
  }

  function downloadMany(selection) {
    if (selection.length === 1 && !selection[0].isFolder) { open(selection[0]); return; }
    const ids = selection.map((i) => `id=${encodeURIComponent(i.id)}`).join("&");
    api.download(`/archiver?${ids}&output-format=zip`, "download.zip").catch(showError);
  }

  function menu(item, anchor) {
    const actions = [
      [t("download"), () => downloadMany([item])],
      may("N", [item]) && [t("rename"), () => rename(item)],
      may("V", [item]) && [t("move"), () => transferMany("MOVE", [item])],
      [t("copy"), () => transferMany("COPY", [item])],
      [t("share"), () => shareDialog(spaceId, item)],
      [t("details"), () => showDetails(item)],
      may("D", [item]) && [t("delete"), () => removeMany([item])],
    ].filter(Boolean);
    popupMenu(anchor, actions);
  }

  const details = h("aside", { class: "details", hidden: true, "aria-label": t("details") });
  async function showDetails(item) {
    details.hidden = false;
    details.replaceChildren(await detailsPanel(spaceId, item, () => { details.hidden = true; }, reload));
    details.querySelector("h2")?.focus();
  }

  // uploads
  uploads = uploads || new UploadManager(() => {});
  uploads.onFileDone = (upload) => {
    if (upload.state === "failed") showError(new Error(`${upload.relativePath}: ${upload.error}`));
    if (upload.spaceId === spaceId && state.refreshOpenFolder) state.refreshOpenFolder(spaceId);
  };
  const startUpload = (files) => uploads.add(spaceId, path, files).catch(showError);
  const fileInput = h("input", { type: "file", multiple: true, hidden: true, id: "upload-files-input",
    onchange: (e) => { startUpload([...e.target.files].map((file) => ({ file, path: file.name }))); e.target.value = ""; } });
  const folderInput = h("input", { type: "file", multiple: true, hidden: true, webkitdirectory: true, id: "upload-folder-input",
    onchange: (e) => { startUpload([...e.target.files].map((file) => ({ file, path: file.webkitRelativePath || file.name }))); e.target.value = ""; } });

  const crumbs = breadcrumbs(spaceId, path);
  const count = h("span", { class: "count", "aria-live": "polite" }, t("items", { n: items.length }));
  const sortSelect = h("select", { id: "sort", "aria-label": t("sortBy"),
    onchange: (e) => {
      const [key, dir] = e.target.value.split(":");
      sort = key; descending = dir === "desc";
      localStorage.setItem("infiniscale.sort", sort);
      localStorage.setItem("infiniscale.sortdesc", descending ? "1" : "0");
      list.setItems(sorted());
    } },
  ...["name", "size", "modified"].flatMap((key) => ["asc", "desc"].map((dir) =>
    h("option", { value: `${key}:${dir}`, selected: key === sort && (dir === "desc") === descending }, `${t(key)} ${dir === "asc" ? "↑" : "↓"}`))));
  const viewToggle = h("button", { type: "button", class: "button", id: "view-toggle", "aria-pressed": String(list.mode === "grid"),
    onclick: (e) => { list.setMode(list.mode === "grid" ? "list" : "grid"); e.currentTarget.setAttribute("aria-pressed", String(list.mode === "grid")); } },
  icon("grid"), t("gridView"));
  const toolbar = h("div", { class: "toolbar", role: "toolbar", "aria-label": t("actions") },
    canWrite ? h("button", { type: "button", class: "button primary", id: "new-folder", onclick: newFolder }, icon("plus"), t("newFolder")) : null,
    canWrite ? h("button", { type: "button", class: "button", id: "upload-files", onclick: () => fileInput.click() }, icon("upload"), t("uploadFiles")) : null,
    canWrite ? h("button", { type: "button", class: "button", id: "upload-folder", onclick: () => folderInput.click() }, icon("upload"), t("uploadFolder")) : null,
    sortSelect, viewToggle, fileInput, folderInput);
  const selectionBar = h("div", { class: "selection-bar", hidden: true, role: "region", "aria-label": t("selected", { n: "" }) });
  function renderSelection() {
    selectionBar.hidden = chosen.length === 0;
    selectionBar.replaceChildren(
      h("span", {}, t("selected", { n: chosen.length })),
      h("button", { type: "button", class: "button", onclick: () => downloadMany(chosen) }, t("downloadArchive")),
      may("V", chosen) ? h("button", { type: "button", class: "button", onclick: () => transferMany("MOVE", chosen) }, t("move")) : null,
      h("button", { type: "button", class: "button", onclick: () => transferMany("COPY", chosen) }, t("copy")),
      may("D", chosen) ? h("button", { type: "button", class: "button danger", onclick: () => removeMany(chosen) }, t("delete")) : null);
  }
  const empty = h("p", { class: "empty", hidden: items.length > 0 }, t("emptyFolder"));
  const quotaSlot = h("div", { class: "quota-slot" }, space?.quota ? quotaBar(space.quota) : null);
  const pane = h("section", { class: "files", "aria-label": t("filesIn", { name: self?.name || space?.name || "" }) },
    h("div", { class: "files-head" }, crumbs, count, quotaSlot), toolbar, selectionBar, empty, list.el);
  const dropZone = h("div", { class: "drop-zone", hidden: true }, t("dropHere"));
  const view = h("div", { class: "files-view" }, pane, details, dropZone);
  if (canWrite) {
    view.addEventListener("dragover", (e) => { if (e.dataTransfer.types.includes("Files")) { e.preventDefault(); dropZone.hidden = false; } });
    // the pointer left the view (not just one element inside it for another)
    view.addEventListener("dragleave", (e) => { if (!view.contains(e.relatedTarget)) dropZone.hidden = true; });
    view.addEventListener("drop", async (e) => {
      e.preventDefault();
      dropZone.hidden = true;
      try {
        startUpload(await droppedFiles(e.dataTransfer));
      } catch (error) { showError(error); }
    });
  }
  list.setItems(sorted());
  return view;
}

export function quotaBar(quota) {
  const used = quota.used || 0;
  const total = quota.total || 0;
  const label = total ? t("quota", { used: formatSize(used), total: formatSize(total) }) : t("quotaUnlimited", { used: formatSize(used) });
  return h("div", { class: "quota" }, total ? h("progress", { max: String(total), value: String(used), "aria-label": label }) : null,
    h("span", {}, label));
}

function breadcrumbs(spaceId, path) {
  const space = spaceOf(spaceId);
  const parts = path ? path.split("/") : [];
  // a received share is a space of its own here: its root is called by the share's name
  const rootName = space?.driveType === "personal" ? t("personal") : space?.name || state.shareNames?.[spaceId] || t("spaces");
  const crumbs = [h("li", {}, h("a", { href: filesUrl(spaceId), "aria-current": parts.length ? null : "page",
    onclick: (e) => { e.preventDefault(); state.navigate(filesUrl(spaceId)); } }, rootName))];
  parts.forEach((part, i) => {
    const target = parts.slice(0, i + 1).join("/");
    const last = i === parts.length - 1;
    crumbs.push(h("li", {}, h("a", { href: filesUrl(spaceId, target), "aria-current": last ? "page" : null,
      onclick: (e) => { e.preventDefault(); state.navigate(filesUrl(spaceId, target)); } }, part)));
  });
  return h("nav", { class: "breadcrumbs", "aria-label": t("breadcrumb") }, h("ol", {}, crumbs));
}

export function popupMenu(anchor, actions) {
  document.querySelector(".menu")?.remove();
  const close = () => { box.remove(); document.removeEventListener("click", outside, true); anchor?.focus?.(); };
  const outside = (e) => { if (!box.contains(e.target)) close(); };
  const buttons = actions.map(([label, fn]) => h("button", { type: "button", role: "menuitem", tabindex: "-1",
    onclick: () => { close(); fn(); } }, label));
  const box = h("div", { class: "menu", role: "menu", onkeydown: (e) => {
    const i = buttons.indexOf(document.activeElement);
    if (e.key === "Escape") { e.preventDefault(); close(); }
    if (e.key === "ArrowDown") { e.preventDefault(); buttons[(i + 1) % buttons.length].focus(); }
    if (e.key === "ArrowUp") { e.preventDefault(); buttons[(i - 1 + buttons.length) % buttons.length].focus(); }
  } }, buttons);
  document.body.append(box);
  const rect = anchor?.getBoundingClientRect?.() || { left: 100, bottom: 100 };
  box.style.left = `${Math.min(rect.left, innerWidth - box.offsetWidth - 8)}px`;
  box.style.top = `${Math.min(rect.bottom, innerHeight - box.offsetHeight - 8)}px`;
  buttons[0]?.focus();
  setTimeout(() => document.addEventListener("click", outside, true));
}

/** A folder of the space, chosen by walking down from the root; "" is the root, null cancelled. */
export function pickFolder(spaceId, title, start = "") {
  return dialog(title, (done) => {
    let current = start;
    const listing = h("ul", { class: "picker-list", "aria-label": t("chooseFolder") });
    const where = h("p", { class: "picker-where" });
    async function show() {
      where.textContent = `/${current}`;
      const entries = await api.list(spaceId, current).catch((e) => { showError(e); return []; });
      const folders = entries.filter((e) => e.isFolder && e.path !== current);
      listing.replaceChildren(
        current ? h("li", {}, h("button", { type: "button", class: "link", onclick: () => { current = current.split("/").slice(0, -1).join("/"); show(); } }, `↑ ${t("back")}`)) : null,
        ...folders.map((f) => h("li", {}, h("button", { type: "button", class: "link", onclick: () => { current = f.path; show(); } }, icon("folder"), f.name))));
    }
    show();
    return h("div", { class: "stack" }, where, listing,
      h("div", { class: "dialog-actions" },
        h("button", { type: "button", class: "button", onclick: () => done(null) }, t("cancel")),
        h("button", { type: "button", class: "button primary", id: "pick-here", onclick: () => done(current) }, t("here"))));
  });
}
