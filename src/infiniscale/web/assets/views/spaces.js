// Project spaces: the ones the user is a member of, with image, description, readme and quota; create
// one. A manager of a space renames it, edits its description and readme, sets its image and manages
// its members from the card's menu.
import * as api from "../api.js";
import { t } from "../i18n.js";
import { state } from "../state.js";
import { ask, dialog, h, icon, showError, toast } from "../ui.js";
import { filesUrl, popupMenu, quotaBar } from "./files.js";
import { membersDialog } from "./share.js";

const MANAGER = "312c0871-5ef7-4b3a-85b6-0e4074c64049"; // the unified role "Can manage" of a space
// the user roles that may create project spaces (Admin, Space Admin)
const CREATORS = new Set(["71881883-1768-46bd-a24d-a356a2afdf7f", "2aadd357-682c-406b-8874-293091995fdd"]);

const mayCreate = () => (state.me?.appRoleAssignments || []).some((a) => CREATORS.has(a.appRoleId));
const README_PREVIEW = 400;

function isManager(drive) {
  const mine = new Set([state.me?.id, ...(state.me?.memberOf || []).map((g) => g.id)]);
  return (drive.root?.permissions || []).some((p) => p.roles?.includes(MANAGER) &&
    mine.has(p.grantedToV2?.user?.id || p.grantedToV2?.group?.id));
}

const special = (drive, kind) => (drive.special || []).find((s) => s.specialFolder?.name === kind);

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
      mayCreate() ? h("button", { type: "button", class: "button primary", id: "new-space", onclick: create }, icon("plus"), t("newSpace")) : null),
    projects.length ? h("ul", { class: "cards", id: "space-list" }, projects.map(card)) : h("p", { class: "empty" }, t("noResults")));
}

function card(drive) {
  const image = h("div", { class: "card-image", "aria-hidden": "true" });
  const readme = h("p", { class: "readme" });
  const image_ = special(drive, "image");
  if (image_) {
    api.signedUrl(`/dav/spaces/${encodeURIComponent(image_.id)}`)
      .then((url) => { if (url) image.replaceChildren(h("img", { src: url, alt: "" })); }).catch(() => {});
  }
  const readme_ = special(drive, "readme");
  if (readme_) {
    api.request("GET", `/dav/spaces/${encodeURIComponent(readme_.id)}`).then((res) => res.text())
      .then((text) => { readme.textContent = text.length > README_PREVIEW ? `${text.slice(0, README_PREVIEW)}…` : text; })
      .catch(() => {});
  }
  const menu = isManager(drive) ? h("button", { type: "button", class: "icon-button space-menu", "aria-label": t("manageSpace", { name: drive.name }),
    onclick: (e) => popupMenu(e.currentTarget, [
      [t("members"), () => membersDialog(drive).then(reload)],
      [t("rename"), () => rename(drive)],
      [t("editDescription"), () => describe(drive)],
      [t("editReadme"), () => editReadme(drive, readme_)],
      [t("spaceImage"), () => chooseImage(drive)],
    ]) }, icon("more")) : null;
  return h("li", { class: "card", dataset: { name: drive.name } }, image,
    h("div", { class: "card-head" },
      h("h2", {}, h("a", { href: filesUrl(drive.id), onclick: (e) => { e.preventDefault(); state.navigate(filesUrl(drive.id)); } }, drive.name)),
      menu),
    drive.description ? h("p", { class: "description" }, drive.description) : null,
    readme,
    drive.quota ? quotaBar(drive.quota) : null);
}

function reload() {
  state.navigate("/spaces", true);
}

async function change(drive, patch) {
  try {
    await api.updateSpace(drive.id, patch);
    toast(t("saved"));
    reload();
  } catch (error) { showError(error); }
}

async function rename(drive) {
  const name = await ask(t("rename"), t("spaceName"), drive.name);
  if (name && name !== drive.name) await change(drive, { name });
}

async function describe(drive) {
  const description = await ask(t("editDescription"), t("description"), drive.description || "");
  if (description !== null && description !== drive.description) await change(drive, { description });
}

async function editReadme(drive, readme) {
  // the whole file, not the card's shortened preview; nothing to save until it is here
  let current = "";
  try {
    if (readme) current = await (await api.request("GET", `/dav/spaces/${encodeURIComponent(readme.id)}`)).text();
  } catch (error) { showError(error); return; }
  const text = await dialog(`${t("editReadme")}: ${drive.name}`, (done) => {
    const area = h("textarea", { id: "readme-text", rows: 10 });
    area.value = current;
    queueMicrotask(() => area.focus());
    return h("form", { class: "stack", onsubmit: (e) => { e.preventDefault(); done(area.value); } },
      h("label", { for: "readme-text" }, t("readme")), area,
      h("div", { class: "dialog-actions" },
        h("button", { type: "button", class: "button", onclick: () => done(null) }, t("cancel")),
        h("button", { type: "submit", class: "button primary", id: "readme-save" }, t("save"))));
  });
  if (text === null) return;
  try {
    await api.setSpaceSpecial(drive.id, "readme", "readme.md", text);
    toast(t("saved"));
    reload();
  } catch (error) { showError(error); }
}

function chooseImage(drive) {
  const input = h("input", { type: "file", accept: "image/*", hidden: true, id: "space-image-input",
    onchange: async () => {
      const file = input.files[0];
      input.remove();
      if (!file) return;
      try {
        await api.setSpaceSpecial(drive.id, "image", file.name, file);
        toast(t("saved"));
        reload();
      } catch (error) { showError(error); }
    } });
  document.body.append(input);
  input.click();
}
