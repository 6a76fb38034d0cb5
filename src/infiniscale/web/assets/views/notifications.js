// The bell: notifications from the server (shares, space membership), fed live by server-sent
// events, which also refresh the open folder when someone else changes it.
import * as api from "../api.js";
import { formatDate, t } from "../i18n.js";
import { state } from "../state.js";
import { h, icon, showError } from "../ui.js";

let items = [];
let badge = null;
let panel = null;
let streaming = false;
let bell = null; // built once: every view's header shows the same bell (its list comes live, not per view)

async function load() {
  try { items = await api.notifications(); } catch { items = []; }
  render();
}

function render() {
  if (badge) { badge.textContent = items.length ? String(items.length) : ""; badge.hidden = !items.length; }
  if (!panel || panel.hidden) return;
  panel.replaceChildren(h("h2", {}, t("notifications")),
    items.length ? h("ul", { class: "plain", id: "notification-list" }, items.map((n) => h("li", { class: "notification" },
      h("p", {}, n.message || n.subject), h("small", {}, formatDate(n.datetime)),
      h("button", { type: "button", class: "link", onclick: async () => {
        try { await api.dismissNotifications([n.notification_id]); load(); } catch (error) { showError(error); }
      } }, t("markRead"))))) : h("p", {}, t("noNotifications")));
}

// EventSource cannot send a bearer token, so the stream is read with fetch
async function stream() {
  if (streaming) return;
  streaming = true;
  let retry = 1000;
  for (;;) {
    try {
      const res = await fetch("/ocs/v2.php/apps/notifications/api/v1/notifications/sse", {
        headers: { authorization: api.authHeader(), accept: "text/event-stream" } });
      if (!res.ok || !res.body) throw new Error(String(res.status));
      retry = 1000;
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          handle(buffer.slice(0, end));
          buffer = buffer.slice(end + 2);
        }
      }
    } catch {
      // dropped: try again, waiting longer each time
    }
    await new Promise((r) => setTimeout(r, retry));
    retry = Math.min(30_000, retry * 2);
  }
}

function handle(block) {
  let event = "message";
  let data = "";
  for (const line of block.split("\n")) {
    if (line.startsWith("event:")) event = line.slice(6).trim();
    else if (line.startsWith("data:")) data += line.slice(5).trim();
  }
  if (event === "userlog-notification") { load(); return; }
  let doc = {};
  try { doc = JSON.parse(data || "{}"); } catch { return; }
  if (doc.initiatorid && doc.initiatorid === api.INITIATOR_ID) return; // this tab's own change, already shown
  const space = doc.spaceid ? doc.spaceid.split("!")[0] : "";
  // a move names only the folder it went to: the one it left is refreshed too (any open folder is)
  const about = event === "item-moved" ? {} : doc;
  if (state.refreshOpenFolder) state.refreshOpenFolder(space && state.drives.some((d) => d.id === space) ? space : "", about);
}

export function notificationBell() {
  if (bell) return bell;
  badge = h("span", { class: "badge", hidden: true, id: "notification-count" });
  panel = h("div", { class: "popover", hidden: true, id: "notifications" });
  const button = h("button", { type: "button", class: "icon-button bell", "aria-label": t("notifications"),
    "aria-expanded": String(!panel.hidden), "aria-controls": "notifications",
    onclick: () => { panel.hidden = !panel.hidden; button.setAttribute("aria-expanded", String(!panel.hidden)); render(); } },
  icon("bell"), badge);
  load();
  stream();
  bell = h("div", { class: "bell-wrap" }, button, panel);
  bell.addEventListener("keydown", (e) => {
    if (e.key !== "Escape" || panel.hidden) return;
    panel.hidden = true;
    button.setAttribute("aria-expanded", "false");
    button.focus();
  });
  return bell;
}
