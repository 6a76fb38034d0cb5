// Shared with me: every received share with its state; accept, decline, hide; open what is accepted.
import * as api from "../api.js";
import { formatDate, t } from "../i18n.js";
import { state } from "../state.js";
import { h, icon, showError } from "../ui.js";
import { filesUrl } from "./files.js";

const JAIL = "a0ca6a90-a365-4782-871e-d44447bbc668$a0ca6a90-a365-4782-871e-d44447bbc668";

let showHidden = false;

export async function sharesView() {
  const items = await api.sharedWithMe();
  const hiddenCount = items.filter((i) => i["@UI.Hidden"]).length;
  const rows = items.filter((i) => showHidden || !i["@UI.Hidden"]).map((item) => {
    const hidden = Boolean(item["@UI.Hidden"]);
    const accepted = item["@client.synchronize"];
    const sharer = item.remoteItem?.permissions?.[0]?.invitation?.invitedBy?.user?.displayName ||
      item.remoteItem?.createdBy?.user?.displayName || "";
    const open = () => {
      state.shareNames = { ...(state.shareNames || {}), [item.id]: item.name };
      if (item.folder) state.navigate(filesUrl(item.id));
      else api.download(api.davUrl(item.id), item.name).catch(showError);
    };
    const act = (fn) => async () => { try { await fn(); state.navigate("/shares", true); } catch (error) { showError(error); } };
    return h("tr", { dataset: { name: item.name } },
      h("td", {}, icon(item.folder ? "folder" : "file"), " ",
        accepted ? h("a", { href: item.folder ? filesUrl(item.id) : "#", onclick: (e) => { e.preventDefault(); open(); } }, item.name) : item.name),
      h("td", {}, sharer ? t("sharedBy", { name: sharer }) : ""),
      h("td", {}, formatDate(item.lastModifiedDateTime)),
      h("td", {}, accepted ? t("accepted") : t("pending")),
      h("td", { class: "actions" },
        accepted ? null : h("button", { type: "button", class: "button primary", onclick: act(() =>
          api.json("POST", `/graph/v1beta1/drives/${encodeURIComponent(JAIL)}/root/children`, { remoteItem: { id: item.remoteItem.id } })) }, t("accept")),
        accepted ? h("button", { type: "button", class: "button", onclick: act(() =>
          api.json("DELETE", `/graph/v1beta1/drives/${encodeURIComponent(JAIL)}/items/${encodeURIComponent(item.id)}`)) }, t("decline")) : null,
        h("button", { type: "button", class: "button", onclick: act(() =>
          api.json("PATCH", `/graph/v1beta1/drives/${encodeURIComponent(JAIL)}/items/${encodeURIComponent(item.id)}`, { "@UI.Hidden": !hidden })) },
        hidden ? t("unhide") : t("hide"))));
  });
  const toggle = hiddenCount || showHidden ? h("label", { class: "toggle" },
    h("input", { type: "checkbox", id: "show-hidden", checked: showHidden,
      onchange: (e) => { showHidden = e.target.checked; state.navigate("/shares", true); } }),
    ` ${t("showHidden", { n: hiddenCount })}`) : null;
  return h("section", { class: "page" }, h("div", { class: "page-head" }, h("h1", {}, t("sharedWithMe")), toggle),
    rows.length ? h("table", { class: "table", id: "shares-list" },
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, t("name")), h("th", { scope: "col" }, t("owner")),
        h("th", { scope: "col" }, t("modified")), h("th", { scope: "col" }, t("state")),
        h("th", { scope: "col" }, h("span", { class: "visually-hidden" }, t("actions"))))),
      h("tbody", {}, rows)) : h("p", { class: "empty" }, t("noResults")));
}
