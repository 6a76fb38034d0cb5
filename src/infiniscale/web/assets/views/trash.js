// The trash of a space: what was deleted, from where and when; restore or delete for good.
import * as api from "../api.js";
import { formatDate, formatSize, t } from "../i18n.js";
import { state } from "../state.js";
import { confirmAction, h, icon, showError, toast } from "../ui.js";

export async function trashView(spaceId) {
  const space = state.drives.find((d) => d.id === spaceId);
  const body = h("tbody", {});
  const table = h("table", { class: "table", id: "trash-list" },
    h("caption", { class: "visually-hidden" }, t("trash")),
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, t("name")), h("th", { scope: "col" }, t("deletedFrom")),
      h("th", { scope: "col" }, t("deletedAt")), h("th", { scope: "col" }, t("size")),
      h("th", { scope: "col" }, h("span", { class: "visually-hidden" }, t("actions"))))), body);
  const empty = h("p", { class: "empty" }, t("emptyTrashList"));
  async function load() {
    let items = [];
    try { items = await api.trash(spaceId); } catch (error) { showError(error); }
    empty.hidden = items.length > 0;
    table.hidden = items.length === 0;
    body.replaceChildren(...items.map((item) => h("tr", { dataset: { name: item.name } },
      h("td", {}, icon(item.isFolder ? "folder" : "file"), " ", item.name),
      h("td", {}, `/${item.location.split("/").slice(0, -1).join("/")}`),
      h("td", {}, formatDate(item.deleted)),
      h("td", {}, formatSize(item.size)),
      h("td", { class: "actions" },
        h("button", { type: "button", class: "button", "aria-label": `${t("restore")}: ${item.name}`, onclick: async () => {
          try { await api.restoreTrash(spaceId, item); toast(t("restored", { name: item.name })); load(); } catch (error) { showError(error); }
        } }, t("restore")),
        h("button", { type: "button", class: "button danger", "aria-label": `${t("purge")}: ${item.name}`, onclick: async () => {
          if (!await confirmAction(t("purge"), t("purgeQuestion", { name: item.name }), t("purge"))) return;
          try { await api.purgeTrash(item); load(); } catch (error) { showError(error); }
        } }, t("purge"))))));
    emptyAll.hidden = items.length === 0;
    emptyAll.onclick = async () => {
      if (!await confirmAction(t("emptyTrash"), t("emptyTrashQuestion", { n: items.length }), t("emptyTrash"))) return;
      try { await api.emptyTrash(spaceId); toast(t("trashEmptied")); load(); } catch (error) { showError(error); }
    };
  }
  const emptyAll = h("button", { type: "button", class: "button danger", id: "empty-trash", hidden: true }, t("emptyTrash"));
  await load();
  const others = state.drives.filter((d) => d.driveType === "project").map((d) =>
    h("li", {}, h("a", { href: `/trash/${encodeURIComponent(d.id)}`, onclick: (e) => { e.preventDefault(); state.navigate(`/trash/${encodeURIComponent(d.id)}`); } }, d.name)));
  return h("section", { class: "page" },
    h("div", { class: "page-head" },
      h("h1", {}, `${t("trash")}: ${space?.driveType === "personal" ? t("personal") : space?.name || ""}`), emptyAll),
    others.length ? h("nav", { "aria-label": t("spaces") }, h("ul", { class: "chips" },
      h("li", {}, h("a", { href: "/", onclick: (e) => { e.preventDefault(); const p = state.drives.find((d) => d.driveType === "personal"); if (p) state.navigate(`/trash/${encodeURIComponent(p.id)}`); } }, t("personal"))), others)) : null,
    empty, table);
}
