// Small DOM helpers: element creation, notices, modal dialogs (native <dialog>: focus stays inside,
// Escape closes) and icons.
import { t } from "./i18n.js";

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key in el && typeof value !== "string") el[key] = value;
    else el.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

const PATHS = {
  folder: "M3 6.5A1.5 1.5 0 0 1 4.5 5h4l2 2h9A1.5 1.5 0 0 1 21 8.5v9a1.5 1.5 0 0 1-1.5 1.5h-15A1.5 1.5 0 0 1 3 17.5z",
  file: "M6 3h8l5 5v12a1 1 0 0 1-1 1H6a1 1 0 0 1-1-1V4a1 1 0 0 1 1-1zm8 0v5h5",
  home: "M4 11l8-7 8 7v9h-5v-6H9v6H4z",
  spaces: "M4 5h7v6H4zm9 0h7v6h-7zM4 13h7v6H4zm9 0h7v6h-7z",
  share: "M17 8a3 3 0 1 0-2.8-4M7 15a3 3 0 1 0 0-6 3 3 0 0 0 0 6zm10 6a3 3 0 1 0 0-6 3 3 0 0 0 0 6zM9.6 10.6l4.8-2.7m-4.8 5.2l4.8 2.7",
  trash: "M5 7h14M10 11v6m4-6v6M6 7l1 13h10l1-13M9 7V4h6v3",
  search: "M10.5 18a7.5 7.5 0 1 1 0-15 7.5 7.5 0 0 1 0 15zm5.3-2.2L21 21",
  bell: "M6 16V11a6 6 0 1 1 12 0v5l2 2H4zm4 4h4",
  upload: "M12 16V4m-5 5l5-5 5 5M5 20h14",
  plus: "M12 5v14M5 12h14",
  more: "M5 12h.01M12 12h.01M19 12h.01",
  close: "M6 6l12 12M18 6L6 18",
  list: "M4 6h16M4 12h16M4 18h16",
  grid: "M4 4h7v7H4zm9 0h7v7h-7zM4 13h7v7H4zm9 0h7v7h-7z",
  moon: "M20 14.5A8 8 0 1 1 9.5 4a6.5 6.5 0 0 0 10.5 10.5z",
  info: "M12 8h.01M11 12h1v5h1M12 21a9 9 0 1 1 0-18 9 9 0 0 1 0 18z",
};

export function icon(name, label = "") {
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("class", `icon icon-${name}`);
  if (label) { svg.setAttribute("role", "img"); svg.setAttribute("aria-label", label); }
  else svg.setAttribute("aria-hidden", "true");
  const path = document.createElementNS("http://www.w3.org/2000/svg", "path");
  path.setAttribute("d", PATHS[name] || PATHS.file);
  svg.append(path);
  return svg;
}

export function toast(message) {
  const box = document.getElementById("toasts");
  const note = h("div", { class: "toast" }, message);
  box.append(note);
  setTimeout(() => note.remove(), 5000);
}

export function showError(error) {
  const box = document.getElementById("alerts");
  const message = error?.message || String(error);
  const note = h("div", { class: "toast toast-error" }, h("span", {}, message),
    h("button", { type: "button", class: "icon-button", "aria-label": t("close"), onclick: () => note.remove() }, icon("close")));
  box.append(note);
  setTimeout(() => note.remove(), 10000);
}

/** A modal dialog; resolves with what `build` hands to `done`, or null when cancelled. */
export function dialog(title, build) {
  return new Promise((resolve) => {
    const heading = h("h2", { id: `dialog-title-${Date.now()}` }, title);
    const box = h("dialog", { class: "dialog", "aria-labelledby": heading.id });
    let result = null;
    const done = (value) => { result = value; box.close(); };
    const body = build(done);
    box.append(h("div", { class: "dialog-head" }, heading,
      h("button", { type: "button", class: "icon-button", "aria-label": t("close"), onclick: () => done(null) }, icon("close"))), body);
    box.addEventListener("close", () => { box.remove(); resolve(result); });
    document.body.append(box);
    box.showModal();
  });
}

/** Arrow keys move among a listbox's options (which take the focus), Home/End to its ends, Escape
 * closes it and goes back to the input that opened it. */
export function listboxKeys(input, list, close) {
  list.addEventListener("keydown", (e) => {
    const options = [...list.querySelectorAll("[role=option]")];
    const at = options.indexOf(document.activeElement);
    let next = null;
    if (e.key === "ArrowDown") next = Math.min(at + 1, options.length - 1);
    else if (e.key === "ArrowUp") next = at - 1;
    else if (e.key === "Home") next = 0;
    else if (e.key === "End") next = options.length - 1;
    else if (e.key === "Escape") { e.preventDefault(); close(); input.focus(); return; }
    else return;
    e.preventDefault();
    if (next < 0) input.focus();
    else options[next]?.focus();
  });
  list.addEventListener("focusin", (e) => {
    for (const option of list.querySelectorAll("[role=option]")) option.setAttribute("aria-selected", String(option === e.target));
  });
}

/** Ask before something that cannot be undone; true when confirmed. */
export function confirmAction(title, message, confirm) {
  return dialog(title, (done) => {
    const yes = h("button", { type: "button", class: "button danger", id: "confirm-yes", onclick: () => done(true) }, confirm);
    queueMicrotask(() => yes.focus());
    return h("div", { class: "stack" }, h("p", {}, message),
      h("div", { class: "dialog-actions" },
        h("button", { type: "button", class: "button", onclick: () => done(false) }, t("cancel")), yes));
  }).then(Boolean);
}

/** Ask for one line of text (a name). */
export function ask(title, label, initial = "", confirm = t("save")) {
  return dialog(title, (done) => {
    const input = h("input", { id: "dialog-input", name: "value", value: initial, required: true, autocomplete: "off" });
    const form = h("form", { class: "stack", onsubmit: (e) => { e.preventDefault(); if (input.value.trim()) done(input.value.trim()); } },
      h("label", { for: "dialog-input" }, label), input,
      h("div", { class: "dialog-actions" },
        h("button", { type: "button", class: "button", onclick: () => done(null) }, t("cancel")),
        h("button", { type: "submit", class: "button primary" }, confirm)));
    queueMicrotask(() => {
      input.focus();
      const dot = initial.lastIndexOf(".");
      input.setSelectionRange(0, dot > 0 ? dot : initial.length);
    });
    return form;
  });
}
