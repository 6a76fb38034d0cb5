// Uploads through TUS: each file is opened with POST on its folder and sent in chunks with PATCH, so
// a dropped connection or a pause costs at most one chunk: HEAD asks the server how far it got.
import { ApiError, authHeader, davUrl, messageFor, request } from "./api.js";
import { formatSize, t } from "./i18n.js";
import { h, icon } from "./ui.js";

const PARALLEL = 3;
const RETRIES = 5;
let chunkSize = 10_000_000;

export function setChunkSize(bytes) {
  if (bytes > 0) chunkSize = bytes;
}

function b64(text) {
  return btoa(String.fromCharCode(...new TextEncoder().encode(text)));
}

class Upload {
  constructor(manager, file, spaceId, folder, relativePath) {
    this.manager = manager;
    this.file = file;
    this.spaceId = spaceId;
    this.folder = folder; // the folder the upload was started in
    this.relativePath = relativePath; // with sub folders for folder uploads
    this.sent = 0;
    this.state = "queued"; // queued, running, paused, failed, done
    this.url = "";
    this.xhr = null;
    this.error = "";
    this.view = null; // its row in the uploads panel, made by the manager
  }

  get total() { return this.file.size; }

  async run() {
    this.state = "running";
    this.error = "";
    this.manager.changed(this);
    let attempts = 0;
    while (this.state === "running") {
      try {
        if (!this.url) await this.create();
        else this.sent = await this.offset();
        while (this.sent < this.total && this.state === "running") {
          await this.patch(this.sent, Math.min(this.total, this.sent + chunkSize));
          attempts = 0;
        }
        if (this.state === "running") this.state = "done";
      } catch (error) {
        if (this.state !== "running") break; // paused or cancelled: the abort is expected
        // after a pause or a dropped connection the server may still be writing the chunk before:
        // 423 while it holds the upload, 409 once it has moved the offset on; both mean "ask again"
        const resync = this.url && (error.status === 423 || error.status === 409);
        const retryable = resync || error.status === 0 || error.status >= 500 && error.status !== 507;
        attempts += 1;
        if (!retryable || attempts > RETRIES) {
          this.state = "failed";
          this.error = error.message;
        } else {
          await new Promise((r) => setTimeout(r, Math.min(8000, 500 * 2 ** attempts)));
        }
      }
    }
    this.manager.changed(this);
  }

  async create() {
    const meta = [`filename ${b64(this.relativePath)}`, `mtime ${b64(String(Math.floor(this.file.lastModified / 1000)))}`];
    const res = await request("POST", davUrl(this.spaceId, this.folder) + "/", {
      headers: { "tus-resumable": "1.0.0", "upload-length": String(this.total), "upload-metadata": meta.join(",") },
    });
    // the server names its public URL; the app always talks to its own origin
    const target = new URL(res.headers.get("location"), location.href);
    this.url = target.pathname + target.search;
    if (this.total === 0) this.sent = 0;
  }

  async offset() {
    const res = await request("HEAD", this.url, { headers: { "tus-resumable": "1.0.0" } });
    return Number(res.headers.get("upload-offset")) || 0;
  }

  patch(start, end) {
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      this.xhr = xhr;
      xhr.open("PATCH", this.url);
      xhr.setRequestHeader("authorization", authHeader());
      xhr.setRequestHeader("tus-resumable", "1.0.0");
      xhr.setRequestHeader("upload-offset", String(start));
      xhr.setRequestHeader("content-type", "application/offset+octet-stream");
      xhr.upload.onprogress = (e) => { this.sent = start + e.loaded; this.manager.changed(this); };
      xhr.onload = () => {
        this.xhr = null;
        if (xhr.status === 204 || xhr.status === 200) {
          this.sent = Number(xhr.getResponseHeader("upload-offset")) || end;
          resolve();
        } else {
          reject(new ApiError(xhr.status, messageFor(xhr.status)));
        }
      };
      xhr.onerror = () => { this.xhr = null; reject(new ApiError(0, messageFor(0))); };
      xhr.onabort = () => { this.xhr = null; reject(new ApiError(0, t("uploadAborted"))); };
      xhr.send(this.file.slice(start, end));
    });
  }

  pause() {
    if (this.state !== "running") return;
    this.state = "paused";
    this.xhr?.abort();
    this.manager.changed(this);
  }

  resume() {
    if (this.state === "paused" || this.state === "failed") {
      this.state = "queued";
      this.manager.pump();
    }
  }
}

export class UploadManager {
  constructor(onFileDone) {
    this.uploads = [];
    this.onFileDone = onFileDone;
    this.panel = null;
    this.renderQueued = false;
  }

  /** files: [{file, path}] with paths relative to `folder`; folders are created first. */
  async add(spaceId, folder, files) {
    const folders = new Set();
    for (const { path } of files) {
      const parts = path.split("/").slice(0, -1);
      for (let i = 1; i <= parts.length; i += 1) folders.add(parts.slice(0, i).join("/"));
    }
    for (const sub of [...folders].sort((a, b) => a.split("/").length - b.split("/").length)) {
      try {
        await request("MKCOL", davUrl(spaceId, [folder, sub].filter(Boolean).join("/")));
      } catch (error) {
        if (error.status !== 405) throw error; // 405: it exists already
      }
    }
    for (const { file, path } of files) this.uploads.push(new Upload(this, file, spaceId, folder, path));
    this.show();
    this.pump();
  }

  pump() {
    const running = this.uploads.filter((u) => u.state === "running").length;
    const next = this.uploads.filter((u) => u.state === "queued").slice(0, Math.max(0, PARALLEL - running));
    for (const upload of next) upload.run().then(() => this.pump());
  }

  changed(upload) {
    if (upload.state === "done" && !upload.reported) {
      upload.reported = true;
      this.onFileDone(upload);
    }
    if (upload.state === "failed" && !upload.reported) {
      upload.reported = true;
      this.onFileDone(upload);
    }
    if (!this.renderQueued) {
      this.renderQueued = true;
      requestAnimationFrame(() => { this.renderQueued = false; this.render(); });
    }
  }

  show() {
    if (!this.panel) {
      this.panel = h("section", { class: "uploads", "aria-label": t("uploads"), id: "uploads" });
      document.body.append(this.panel);
    }
    this.render();
  }

  render() {
    if (!this.panel) return;
    const total = this.uploads.reduce((n, u) => n + u.total, 0);
    const sent = this.uploads.reduce((n, u) => n + (u.state === "done" ? u.total : u.sent), 0);
    const done = this.uploads.filter((u) => u.state === "done").length;
    const finished = this.uploads.every((u) => u.state === "done" || u.state === "failed");
    if (!this.parts) {
      // built once: progress repaints up to every frame, and an element replaced that often
      // cannot be clicked (the press lands on one button, the release on its successor)
      this.parts = {
        title: h("h2", {}),
        total: h("span", { class: "uploads-total", id: "upload-total" }),
        bar: h("progress", { class: "uploads-bar", "aria-label": t("uploads") }),
        list: h("ul", { class: "upload-list" }),
      };
      this.panel.replaceChildren(
        h("div", { class: "uploads-head" }, this.parts.title, this.parts.total,
          h("button", { type: "button", class: "icon-button", "aria-label": t("close"), onclick: () => this.clear() }, icon("close"))),
        this.parts.bar, this.parts.list);
    }
    const { title, total: totalLabel, bar, list } = this.parts;
    title.textContent = finished ? t("uploadDone") : t("uploads");
    totalLabel.textContent = `${t("uploadProgress", { done, total: this.uploads.length })} · ${formatSize(sent)} / ${formatSize(total)}`;
    bar.max = total || 1;
    bar.value = sent;
    const rows = this.uploads.slice(-200).map((u) => this.row(u));
    if (rows.length !== list.children.length || rows.some((row, i) => list.children[i] !== row)) list.replaceChildren(...rows);
  }

  /** The upload's row, made once and brought up to date; its button changes only with the state. */
  row(u) {
    // 100 % only once the server has the file: the last bytes are sent before it has committed them
    const percent = u.state === "done" ? 100 : u.total ? Math.min(99, Math.floor(u.sent * 100 / u.total)) : 0;
    if (!u.view) {
      u.view = {
        li: h("li", { dataset: { name: u.relativePath } }, h("span", { class: "upload-name" }, u.relativePath)),
        progress: h("progress", { max: "100", "aria-label": u.relativePath }),
        state: h("span", { class: "upload-state" }),
        action: null,
        actionFor: "",
      };
      u.view.li.append(u.view.progress, u.view.state);
    }
    const view = u.view;
    view.li.className = `upload upload-${u.state}`;
    view.progress.value = percent;
    view.state.textContent = u.state === "failed" ? t("uploadFailed", { reason: u.error }) : t("percent", { n: percent });
    if (view.actionFor !== u.state) {
      view.actionFor = u.state;
      const action = u.state === "running" ? h("button", { type: "button", class: "link", onclick: () => u.pause() }, t("pause"))
        : u.state === "paused" ? h("button", { type: "button", class: "link", onclick: () => u.resume() }, t("resume"))
          : u.state === "failed" ? h("button", { type: "button", class: "link", onclick: () => { u.reported = false; u.url = ""; u.resume(); } }, t("retry"))
            : null;
      view.action?.remove();
      view.action = action;
      if (action) view.li.append(action);
    }
    return view.li;
  }

  clear() {
    for (const u of this.uploads) if (u.state === "running" || u.state === "queued") return; // still busy
    this.uploads = [];
    this.panel?.remove();
    this.panel = null;
    this.parts = null;
  }
}

/** Files and folders out of a drop, each with its path relative to the drop target. */
export async function droppedFiles(dataTransfer) {
  const entries = [...dataTransfer.items].map((item) => item.webkitGetAsEntry?.()).filter(Boolean);
  if (!entries.length) return [...dataTransfer.files].map((file) => ({ file, path: file.name }));
  const out = [];
  const walk = async (entry, prefix) => {
    if (entry.isFile) {
      const file = await new Promise((resolve, reject) => entry.file(resolve, reject));
      out.push({ file, path: prefix + entry.name });
    } else if (entry.isDirectory) {
      const reader = entry.createReader();
      for (;;) {
        const batch = await new Promise((resolve, reject) => reader.readEntries(resolve, reject));
        if (!batch.length) break;
        for (const child of batch) await walk(child, `${prefix}${entry.name}/`);
      }
    }
  };
  for (const entry of entries) await walk(entry, "");
  return out;
}
