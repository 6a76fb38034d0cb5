// The share dialog: invite users and groups with a role and an optional expiry, and public links
// (type, password, expiry, copy to clipboard). The roles offered are those the server allows here.
import * as api from "../api.js";
import { formatDate, t } from "../i18n.js";
import { dialog, h, listboxKeys, showError, toast } from "../ui.js";

const LINK_TYPES = [["view", "view_link"], ["upload", "upload_link"], ["edit", "edit_link"], ["createOnly", "createOnly"]];

export function shareDialog(spaceId, item) {
  return dialog(`${t("share")}: ${item.name}`, (done) => {
    const body = h("div", { class: "share-dialog stack", id: "share-dialog" });
    render(body, spaceId, item, done).catch((error) => { showError(error); done(null); });
    return body;
  });
}

/** The members of a project space: the same dialog on the space's root, with space roles and no links. */
export function membersDialog(space) {
  return dialog(`${t("members")}: ${space.name}`, (done) => {
    const body = h("div", { class: "share-dialog stack", id: "share-dialog" });
    render(body, space.id, { id: null, name: space.name, isFolder: true }, done).catch((error) => { showError(error); done(null); });
    return body;
  });
}

async function render(body, spaceId, item, done) {
  const members = item.id === null;
  const doc = await api.permissions(spaceId, item.id);
  const roles = doc["@libre.graph.permissions.roles.allowedValues"] || [];
  const existing = h("ul", { class: "plain", id: "share-list" });
  const links = h("ul", { class: "plain", id: "link-list" });

  function showExisting(values) {
    existing.replaceChildren();
    links.replaceChildren();
    for (const p of values) {
      const remove = h("button", { type: "button", class: "link", onclick: async () => {
        try { await api.removePermission(spaceId, item.id, p.id); refresh(); } catch (error) { showError(error); }
      } }, t("removeShare"));
      if (p.link) {
        const url = p.link.webUrl;
        const li = h("li", { class: "link-row" });
        li.append(
          h("span", {}, `${t(LINK_TYPES.find(([k]) => k === p.link.type)?.[1] || "view_link")}${p.hasPassword ? ` · ${t("passwordProtected")}` : ""}` +
            (p.expirationDateTime ? ` · ${t("expiresOn", { date: formatDate(p.expirationDateTime) })}` : "")),
          h("input", { readonly: true, value: url, "aria-label": t("publicLink"), class: "link-url" }),
          h("button", { type: "button", class: "link", onclick: () => copy(url) }, t("copyLink")),
          h("button", { type: "button", class: "link link-edit", onclick: () => {
            if (!li.querySelector(".link-editor")) li.append(linkEditor(p));
          } }, t("editLink")), remove);
        links.append(li);
      } else {
        const who = p.grantedToV2?.user?.displayName || p.grantedToV2?.group?.displayName || "";
        const kind = p.grantedToV2?.group ? ` · ${t("group")}` : "";
        const roleOf = h("select", { "aria-label": t("roleOf", { name: who }), class: "share-role-of",
          onchange: async (e) => {
            try { await api.updatePermission(spaceId, item.id, p.id, { roles: [e.target.value] }); toast(t("roleChanged", { name: who })); } catch (error) { showError(error); refresh(); }
          } }, roles.map((r) => h("option", { value: r.id, selected: p.roles?.includes(r.id) }, r.displayName)));
        existing.append(h("li", { class: "share-row", dataset: { name: who } }, h("span", {}, `${who}${kind}`), roleOf, remove));
      }
    }
  }
  // a link's type, expiry and password, changed in place
  function linkEditor(p) {
    const types = item.isFolder ? LINK_TYPES : LINK_TYPES.filter(([k]) => k === "view" || k === "edit");
    const type = h("select", { "aria-label": t("linkType") },
      types.map(([value, key]) => h("option", { value, selected: value === p.link.type }, t(key))));
    const expiry = h("input", { type: "date", "aria-label": t("expires"), value: localDate(p.expirationDateTime) });
    const expiryBefore = expiry.value;
    const secret = h("input", { type: "password", "aria-label": t("newPassword"), autocomplete: "new-password" });
    const form = h("form", { class: "row-fields link-editor", onsubmit: async (e) => {
      e.preventDefault();
      try {
        // the password first: a type that needs one is refused until the link has it
        if (secret.value) await api.setLinkPassword(spaceId, item.id, p.id, secret.value);
        const change = { link: { type: type.value } };
        if (expiry.value !== expiryBefore) {
          change.expirationDateTime = expiry.value ? new Date(`${expiry.value}T23:59:59`).toISOString() : null;
        }
        await api.updatePermission(spaceId, item.id, p.id, change);
        toast(t("saved"));
        refresh();
      } catch (error) { showError(error); }
    } }, type, expiry, secret, h("button", { type: "submit", class: "button primary" }, t("save")));
    queueMicrotask(() => type.focus());
    return form;
  }

  async function refresh() {
    try { showExisting((await api.permissions(spaceId, item.id)).value || []); } catch (error) { showError(error); }
  }
  showExisting(doc.value || []);

  // people
  const search = h("input", { id: "share-search", type: "search", autocomplete: "off", role: "combobox",
    "aria-expanded": "false", "aria-controls": "share-suggestions", "aria-autocomplete": "list" });
  const suggestions = h("ul", { id: "share-suggestions", role: "listbox", class: "suggestions", "aria-label": t("searchPeople") });
  let recipient = null;
  let timer = 0;
  listboxKeys(search, suggestions, () => { suggestions.replaceChildren(); search.setAttribute("aria-expanded", "false"); });
  search.addEventListener("input", () => {
    recipient = null;
    clearTimeout(timer);
    const term = search.value.trim();
    if (term.length < 2) { suggestions.replaceChildren(); search.setAttribute("aria-expanded", "false"); return; }
    timer = setTimeout(async () => {
      const found = await api.sharees(term).catch(() => []);
      suggestions.replaceChildren(...found.map((r, i) => h("li", { role: "option", id: `sharee-${i}`, tabindex: "-1", "aria-selected": "false",
        onclick: () => choose(r), onkeydown: (e) => { if (e.key === "Enter") { e.preventDefault(); choose(r); } } },
      `${r.label}${r.detail ? ` (${r.detail})` : ""}${r.kind === "group" ? ` · ${t("group")}` : ""}`)));
      search.setAttribute("aria-expanded", String(found.length > 0));
    }, 200);
  });
  search.addEventListener("keydown", (e) => {
    if (e.key === "ArrowDown") { e.preventDefault(); suggestions.querySelector("[role=option]")?.focus(); }
  });
  function choose(r) {
    recipient = r;
    search.value = r.label;
    suggestions.replaceChildren();
    search.setAttribute("aria-expanded", "false");
    search.focus();
  }
  const roleSelect = h("select", { id: "share-role" }, roles.map((r) => h("option", { value: r.id }, r.displayName)));
  const expiry = h("input", { type: "date", id: "share-expiry" });
  const inviteForm = h("form", { class: "stack", onsubmit: async (e) => {
    e.preventDefault();
    if (!recipient) { showError(new Error(t("searchPeople"))); return; }
    try {
      await api.invite(spaceId, item.id, recipient, roleSelect.value, expiry.value ? new Date(`${expiry.value}T23:59:59`).toISOString() : "");
      toast(t("sharedWith", { name: recipient.label }));
      search.value = ""; recipient = null;
      refresh();
    } catch (error) { showError(error); }
  } },
  h("h3", {}, t("people")),
  h("label", { for: "share-search" }, t("searchPeople")), search, suggestions,
  h("div", { class: "row-fields" },
    h("label", {}, t("role"), roleSelect),
    h("label", {}, t("expires"), expiry)),
  h("button", { type: "submit", class: "button primary", id: "share-invite" }, t("invite")),
  existing);

  // links
  const types = item.isFolder ? LINK_TYPES : LINK_TYPES.filter(([k]) => k === "view" || k === "edit");
  const linkType = h("select", { id: "link-type" }, types.map(([value, key]) => h("option", { value }, t(key))));
  const password = h("input", { type: "password", id: "link-password", autocomplete: "new-password" });
  const linkExpiry = h("input", { type: "date", id: "link-expiry" });
  const linkForm = h("form", { class: "stack", onsubmit: async (e) => {
    e.preventDefault();
    try {
      const made = await api.createLink(spaceId, item.id, linkType.value, password.value,
        linkExpiry.value ? new Date(`${linkExpiry.value}T23:59:59`).toISOString() : "");
      toast(t("linkCreated"));
      password.value = "";
      if (made?.link?.webUrl) copy(made.link.webUrl, false);
      refresh();
    } catch (error) { showError(error); }
  } },
  h("h3", {}, t("links")),
  h("div", { class: "row-fields" },
    h("label", {}, t("linkType"), linkType),
    h("label", {}, t("password"), password),
    h("label", {}, t("expires"), linkExpiry)),
  h("button", { type: "submit", class: "button primary", id: "link-create" }, t("createLink")),
  links);

  body.replaceChildren(inviteForm, members ? "" : linkForm,
    h("div", { class: "dialog-actions" }, h("button", { type: "button", class: "button", onclick: () => done(null) }, t("close"))));
  search.focus();
}

/** The calendar day, in this browser's time zone, of an ISO date-time ("" for none). */
function localDate(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  const pad = (n) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
}

async function copy(url, announce = true) {
  try {
    await navigator.clipboard.writeText(url);
    if (announce) toast(t("linkCopied"));
  } catch {
    // no clipboard permission (or not a secure context): the link stays visible in the list
  }
}
