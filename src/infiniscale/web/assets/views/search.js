// The search box in the header (results as you type) and the full results page.
import * as api from "../api.js";
import { formatSize, t } from "../i18n.js";
import { state } from "../state.js";
import { h, icon, listboxKeys, showError } from "../ui.js";
import { filesUrl } from "./files.js";

function pattern(term) {
  const words = term.trim().split(/\s+/).filter(Boolean).map((w) => `name:"*${w.replace(/"/g, "")}*"`);
  return words.join(" AND ");
}

function openResult(r) {
  const parent = r.path.split("/").slice(0, -1).join("/");
  state.navigate(filesUrl(r.space, r.isFolder ? r.path : parent));
}

export function searchBox() {
  const input = h("input", { type: "search", id: "search", placeholder: t("searchFiles"), "aria-label": t("searchFiles"),
    role: "combobox", "aria-expanded": "false", "aria-controls": "search-results", autocomplete: "off" });
  const results = h("ul", { id: "search-results", role: "listbox", class: "suggestions search-results", "aria-label": t("search") });
  let timer = 0;
  let seq = 0;
  const close = () => { results.replaceChildren(); input.setAttribute("aria-expanded", "false"); };
  listboxKeys(input, results, close);
  input.addEventListener("input", () => {
    clearTimeout(timer);
    const term = input.value.trim();
    if (!term) { close(); return; }
    timer = setTimeout(async () => {
      const mine = ++seq;
      let found = [];
      try { found = await api.search(pattern(term), 8); } catch (error) { showError(error); }
      if (mine !== seq) return; // a newer query is on its way
      results.replaceChildren(...(found.length ? found.map((r, i) => h("li", { role: "option", id: `result-${i}`, tabindex: "-1",
        "aria-selected": "false", onclick: () => { close(); openResult(r); },
        onkeydown: (e) => { if (e.key === "Enter") { close(); openResult(r); } } },
      icon(r.isFolder ? "folder" : "file"), h("span", {}, r.name), h("small", {}, ` /${r.path}`)))
        : [h("li", { class: "none" }, t("noResults"))]));
      input.setAttribute("aria-expanded", "true");
    }, 150);
  });
  input.addEventListener("keydown", (e) => {
    if (e.key === "Enter") { close(); state.navigate(`/search?q=${encodeURIComponent(input.value.trim())}`); }
    if (e.key === "ArrowDown") { e.preventDefault(); results.querySelector("[role=option]")?.focus(); }
    if (e.key === "Escape") close();
  });
  return h("div", { class: "search", role: "search" }, input, results);
}

export async function searchView(term) {
  const found = term ? await api.search(pattern(term), 200) : [];
  return h("section", { class: "page" }, h("h1", {}, `${t("search")}: ${term}`),
    found.length ? h("ul", { class: "plain results", id: "search-page-results" }, found.map((r) => h("li", {},
      h("a", { href: filesUrl(r.space, r.path), onclick: (e) => { e.preventDefault(); openResult(r); } },
        icon(r.isFolder ? "folder" : "file"), ` ${r.name}`), h("small", {}, ` /${r.path} · ${formatSize(r.size)}`))))
      : h("p", { class: "empty" }, t("noResults")));
}
