// A virtualized list (or grid) of folder entries: only the rows in view exist in the DOM, so a folder
// of 10 000 entries costs the same to scroll as one of 20. Keyboard: arrows move, Space selects,
// Shift+arrows extend, Enter opens, Delete deletes, Ctrl+A selects all.
import { formatDate, formatSize, t } from "./i18n.js";
import { h, icon } from "./ui.js";

const ROW = 44;
const TILE = 168;
const OVERSCAN = 6;
const PREVIEW_DELAY_MS = 150;

export class FileList {
  constructor({ onOpen, onMenu, onSelectionChange, onDelete, preview }) {
    this.items = [];
    this.selected = new Set();
    this.focusIndex = 0;
    this.anchor = 0;
    this.mode = localStorage.getItem("infiniscale.view") || "list";
    this.onOpen = onOpen;
    this.onMenu = onMenu;
    this.onSelectionChange = onSelectionChange;
    this.onDelete = onDelete;
    this.preview = preview;
    this.rows = new Map();
    this.spacer = h("div", { class: "list-spacer" });
    this.viewport = h("div", { class: "list-viewport", role: "rowgroup" }, this.spacer);
    this.head = h("div", { class: "list-head", role: "row" });
    this.el = h("div", { class: "file-list", role: "grid", "aria-label": t("name"), "aria-multiselectable": "true" },
      this.head, this.viewport);
    this.viewport.addEventListener("scroll", () => this.schedule(), { passive: true });
    // Tab reaches the list even when the row to focus was scrolled out of the DOM: the viewport
    // takes the focus then and hands it to that row
    this.viewport.addEventListener("focus", (e) => { if (e.target === this.viewport) this.focus(this.focusIndex); });
    this.el.addEventListener("keydown", (e) => this.key(e));
    new ResizeObserver(() => this.schedule()).observe(this.viewport);
  }

  setItems(items) {
    this.items = items;
    const ids = new Set(items.map((i) => i.path));
    for (const path of this.selected) if (!ids.has(path)) this.selected.delete(path);
    this.focusIndex = Math.min(this.focusIndex, Math.max(0, items.length - 1));
    this.el.setAttribute("aria-rowcount", String(items.length + 1));
    for (const row of this.rows.values()) row.remove();
    this.rows.clear();
    this.renderHead();
    this.schedule();
  }

  setMode(mode) {
    this.mode = mode;
    localStorage.setItem("infiniscale.view", mode);
    this.el.classList.toggle("grid-mode", mode === "grid");
    this.setItems(this.items);
  }

  renderHead() {
    const all = this.items.length > 0 && this.selected.size === this.items.length;
    const box = h("input", { type: "checkbox", "aria-label": t("selectAll"), checked: all,
      onchange: (e) => { this.selectAll(e.target.checked); } });
    this.head.replaceChildren(
      h("span", { role: "columnheader", class: "col-select" }, box),
      h("span", { role: "columnheader", class: "col-name" }, t("name")),
      h("span", { role: "columnheader", class: "col-size" }, t("size")),
      h("span", { role: "columnheader", class: "col-modified" }, t("modified")),
      h("span", { role: "columnheader", class: "col-actions" }, h("span", { class: "visually-hidden" }, t("actions"))));
    this.el.classList.toggle("grid-mode", this.mode === "grid");
  }

  columns() {
    return this.mode === "grid" ? Math.max(1, Math.floor(this.viewport.clientWidth / TILE)) : 1;
  }

  schedule() {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => { this.frame = 0; this.render(); });
  }

  // Previews are fetched once scrolling rests: rows that fly past while scrolling ask the server for none.
  wantPreview(thumb, item) {
    this.pendingPreviews ??= new Map();
    this.pendingPreviews.set(thumb, item);
    clearTimeout(this.previewTimer);
    this.previewTimer = setTimeout(() => this.loadPreviews(), PREVIEW_DELAY_MS);
  }

  loadPreviews() {
    const size = this.mode === "grid" ? 160 : 36;
    for (const [thumb, item] of this.pendingPreviews) {
      if (!thumb.isConnected) continue; // scrolled out of view (and out of the DOM) meanwhile
      this.preview(item, size).then((url) => {
        if (!url) return;
        const img = h("img", { src: url, alt: "" });
        img.decode().then(() => thumb.replaceChildren(img), () => {}); // the icon stays until the image is ready
      });
    }
    this.pendingPreviews.clear();
  }

  render() {
    const cols = this.columns();
    const height = this.mode === "grid" ? TILE + 24 : ROW;
    const lines = Math.ceil(this.items.length / cols);
    this.spacer.style.height = `${lines * height}px`;
    const top = this.viewport.scrollTop;
    const first = Math.max(0, Math.floor(top / height) - OVERSCAN);
    const last = Math.min(lines, Math.ceil((top + this.viewport.clientHeight) / height) + OVERSCAN);
    const wanted = new Set();
    for (let line = first; line < last; line += 1) {
      for (let c = 0; c < cols; c += 1) {
        const index = line * cols + c;
        if (index >= this.items.length) break;
        wanted.add(index);
        let row = this.rows.get(index);
        if (!row) {
          row = this.row(this.items[index], index);
          this.rows.set(index, row);
          this.viewport.append(row);
        }
        row.style.transform = this.mode === "grid" ? `translate(${c * TILE}px, ${line * height}px)` : `translateY(${line * height}px)`;
      }
    }
    for (const [index, row] of this.rows) {
      if (!wanted.has(index) && row !== document.activeElement) { row.remove(); this.rows.delete(index); }
    }
    this.viewport.tabIndex = this.items.length && !this.rows.has(this.focusIndex) ? 0 : -1;
  }

  row(item, index) {
    const selected = this.selected.has(item.path);
    const box = h("input", { type: "checkbox", tabindex: "-1", checked: selected, "aria-label": t("select", { name: item.name }),
      onclick: (e) => { e.stopPropagation(); this.toggle(index, e.shiftKey); } });
    const thumb = h("span", { class: "thumb" }, icon(item.isFolder ? "folder" : "file"));
    // a text page shrunk to a list row's 36 px is a blank square: there the icon says more
    const readable = this.mode === "grid" || !item.type.startsWith("text/");
    if (item.hasPreview && this.preview && readable) this.wantPreview(thumb, item);
    const name = h("a", { class: "name", href: "#", tabindex: "-1",
      onclick: (e) => { e.preventDefault(); this.onOpen(item); } }, item.name);
    const menu = h("button", { type: "button", class: "icon-button row-menu", tabindex: "-1", "aria-label": `${t("actions")}: ${item.name}`,
      "aria-haspopup": "menu", onclick: (e) => { e.stopPropagation(); this.onMenu(item, e.currentTarget); } }, icon("more"));
    const row = h("div", {
      class: `row${selected ? " selected" : ""}${item.isFolder ? " folder" : ""}`, role: "row", tabindex: index === this.focusIndex ? "0" : "-1",
      "aria-rowindex": String(index + 2), "aria-selected": String(selected), dataset: { name: item.name, index: String(index) },
      onclick: (e) => { if (e.target === row || e.target.closest(".thumb, .size, .modified")) this.focus(index, e); },
      ondblclick: () => this.onOpen(item),
    },
    h("span", { role: "gridcell", class: "col-select" }, box),
    h("span", { role: "gridcell", class: "col-name" }, thumb, name, item.shared ? icon("share", t("share")) : null),
    h("span", { role: "gridcell", class: "col-size size" }, formatSize(item.size)),
    h("span", { role: "gridcell", class: "col-modified modified" }, formatDate(item.modified)),
    h("span", { role: "gridcell", class: "col-actions" }, menu));
    return row;
  }

  refreshRows() {
    for (const row of this.rows.values()) row.remove();
    this.rows.clear();
    this.renderHead();
    this.render();
  }

  focus(index, event) {
    this.focusIndex = index;
    if (event?.shiftKey) this.selectRange(this.anchor, index);
    else if (event && (event.ctrlKey || event.metaKey)) this.toggle(index);
    else if (event) { this.selected = new Set([this.items[index].path]); this.anchor = index; this.selectionChanged(); }
    this.scrollTo(index);
    this.render();
    for (const [i, row] of this.rows) row.tabIndex = i === index ? 0 : -1;
    this.rows.get(index)?.focus({ preventScroll: true });
  }

  scrollTo(index) {
    const cols = this.columns();
    const height = this.mode === "grid" ? TILE + 24 : ROW;
    const y = Math.floor(index / cols) * height;
    if (y < this.viewport.scrollTop) this.viewport.scrollTop = y;
    else if (y + height > this.viewport.scrollTop + this.viewport.clientHeight) {
      this.viewport.scrollTop = y + height - this.viewport.clientHeight;
    }
  }

  toggle(index, range = false) {
    if (range) { this.selectRange(this.anchor, index); return; }
    const path = this.items[index].path;
    if (this.selected.has(path)) this.selected.delete(path); else this.selected.add(path);
    this.anchor = index;
    this.selectionChanged();
  }

  selectRange(from, to) {
    const [a, b] = from < to ? [from, to] : [to, from];
    this.selected = new Set(this.items.slice(a, b + 1).map((i) => i.path));
    this.selectionChanged();
  }

  selectAll(on) {
    this.selected = on ? new Set(this.items.map((i) => i.path)) : new Set();
    this.selectionChanged();
  }

  selectionChanged() {
    this.refreshRows();
    this.onSelectionChange(this.items.filter((i) => this.selected.has(i.path)));
  }

  key(e) {
    if (e.target.closest("input, button:not(.row-menu)") && e.target.type !== "checkbox") return;
    if (!this.items.length) return;
    const cols = this.columns();
    const moves = { ArrowDown: cols, ArrowUp: -cols, ArrowRight: this.mode === "grid" ? 1 : 0,
      ArrowLeft: this.mode === "grid" ? -1 : 0, PageDown: 10 * cols, PageUp: -10 * cols };
    if (e.key in moves && moves[e.key] !== 0) {
      e.preventDefault();
      const next = Math.max(0, Math.min(this.items.length - 1, this.focusIndex + moves[e.key]));
      if (e.shiftKey) { this.focusIndex = next; this.selectRange(this.anchor, next); }
      this.focus(next);
    } else if (e.key === "Home" || e.key === "End") {
      e.preventDefault();
      this.focus(e.key === "Home" ? 0 : this.items.length - 1);
    } else if (e.key === "Enter") {
      e.preventDefault();
      this.onOpen(this.items[this.focusIndex]);
    } else if (e.key === " ") {
      e.preventDefault();
      this.toggle(this.focusIndex);
      this.focus(this.focusIndex);
    } else if ((e.key === "a" || e.key === "A") && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      this.selectAll(true);
    } else if (e.key === "Delete") {
      e.preventDefault();
      const chosen = this.items.filter((i) => this.selected.has(i.path));
      this.onDelete(chosen.length ? chosen : [this.items[this.focusIndex]]);
    } else if (e.key === "ContextMenu" || (e.key === "F10" && e.shiftKey)) {
      e.preventDefault();
      this.onMenu(this.items[this.focusIndex], this.rows.get(this.focusIndex));
    }
  }
}
