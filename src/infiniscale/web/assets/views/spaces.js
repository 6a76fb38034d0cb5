// Project spaces: the ones the user is a member of, with their quota; create one (if allowed).
import * as api from "../api.js";
import { t } from "../i18n.js";
import { state } from "../state.js";
import { ask, h, icon, showError, toast } from "../ui.js";
import { filesUrl, quotaBar } from "./files.js";

export async function spacesView() {
  state.drives = await api.drives();
  const projects = state.drives.filter((d) => d.driveType === "project" && !d.root?.deleted);
  const create = async () => {
    const name = await ask(t("newSpace"), t("spaceName"), "", t("create"));
    if (!name) return;
    try {
      await api.createSpace(name);
      toast(t("created", { name }));
      state.navigate("/spaces", true);
    } catch (error) { showError(error); }
  };
  return h("section", { class: "page" },
    h("div", { class: "page-head" }, h("h1", {}, t("spaces")),
      h("button", { type: "button", class: "button primary", id: "new-space", onclick: create }, icon("plus"), t("newSpace"))),
    projects.length ? h("ul", { class: "cards", id: "space-list" }, projects.map((d) => h("li", { class: "card", dataset: { name: d.name } },
      h("h2", {}, h("a", { href: filesUrl(d.id), onclick: (e) => { e.preventDefault(); state.navigate(filesUrl(d.id)); } }, d.name)),
      d.description ? h("p", {}, d.description) : null,
      d.quota ? quotaBar(d.quota) : null))) : h("p", { class: "empty" }, t("noResults")));
}
