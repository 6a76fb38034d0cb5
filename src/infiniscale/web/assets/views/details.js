// The details panel of one entry: size, dates, owner, tags, versions (download, restore), shares
// and activities.
import * as api from "../api.js";
import { formatDate, formatSize, t } from "../i18n.js";
import { state } from "../state.js";
import { h, icon, showError, toast } from "../ui.js";

export async function detailsPanel(spaceId, item, close, reload) {
  const space = state.drives.find((d) => d.id === spaceId);
  const section = (title, ...content) => h("section", { class: "details-section" }, h("h3", {}, title), ...content);
  const facts = h("dl", { class: "facts" },
    h("dt", {}, t("size")), h("dd", {}, formatSize(item.size)),
    h("dt", {}, t("modified")), h("dd", {}, formatDate(item.modified)),
    h("dt", {}, t("owner")), h("dd", {}, space?.owner?.user?.displayName || space?.name || ""),
    item.tags ? h("dt", {}, t("tags")) : null, item.tags ? h("dd", {}, item.tags) : null);

  const versionList = h("ul", { class: "plain", id: "versions" });
  if (!item.isFolder) {
    try {
      const versions = await api.versions(item.id);
      if (!versions.length) versionList.append(h("li", {}, t("noVersions")));
      for (const version of versions) {
        versionList.append(h("li", { class: "version" },
          h("span", {}, `${formatDate(version.modified)} · ${formatSize(version.size)}`),
          h("button", { type: "button", class: "link", onclick: () => api.download(version.href, item.name).catch(showError) }, t("download")),
          h("button", { type: "button", class: "link", onclick: async () => {
            try {
              await api.restoreVersion(version, spaceId, item.path);
              toast(t("restored", { name: item.name }));
              close();
              reload();
            } catch (error) { showError(error); }
          } }, t("restore"))));
      }
    } catch (error) {
      versionList.append(h("li", {}, error.message));
    }
  }

  const shareList = h("ul", { class: "plain" });
  try {
    const doc = await api.permissions(spaceId, item.id);
    for (const p of doc.value || []) {
      const who = p.link ? `${t("publicLink")} (${p.link.type})` : p.grantedToV2?.user?.displayName || p.grantedToV2?.group?.displayName || "";
      if (who) shareList.append(h("li", {}, who));
    }
  } catch {
    // not a manager of this item: nothing to list
  }

  const activityList = h("ul", { class: "plain" });
  try {
    const activities = await api.activities(item.id);
    if (!activities.length) activityList.append(h("li", {}, t("noActivities")));
    for (const activity of activities.slice(0, 20)) {
      const template = activity.template?.message || "";
      const vars = activity.template?.variables || {};
      const text = template.replace(/\{(\w+)\}/g, (_, k) => vars[k]?.displayName || vars[k]?.name || "");
      activityList.append(h("li", {}, h("span", {}, text), h("small", {}, ` ${formatDate(activity.times?.recordedTime)}`)));
    }
  } catch {
    activityList.append(h("li", {}, t("noActivities")));
  }

  return h("div", { class: "details-body" },
    h("div", { class: "dialog-head" }, h("h2", { tabindex: "-1" }, item.name),
      h("button", { type: "button", class: "icon-button", "aria-label": t("close"), onclick: close }, icon("close"))),
    facts,
    item.isFolder ? null : section(t("versions"), versionList),
    section(t("shares"), shareList),
    section(t("activities"), activityList));
}
