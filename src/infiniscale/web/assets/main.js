// The app's start: its configuration, sign-in, the frame (header, navigation) and the routes.
import * as api from "./api.js";
import * as auth from "./auth.js";
import { loadLanguage, t } from "./i18n.js";
import { h, icon, showError } from "./ui.js";
import { setChunkSize } from "./upload.js";
import { state } from "./state.js";
import { filesView } from "./views/files.js";
import { trashView } from "./views/trash.js";
import { sharesView } from "./views/shares.js";
import { spacesView } from "./views/spaces.js";
import { searchView, searchBox } from "./views/search.js";
import { publicView } from "./views/public.js";
import { notificationBell } from "./views/notifications.js";

const app = document.getElementById("app");

function applyTheme() {
  const saved = localStorage.getItem("infiniscale.theme");
  const dark = saved ? saved === "dark" : matchMedia("(prefers-color-scheme: dark)").matches;
  document.documentElement.dataset.theme = dark ? "dark" : "light";
  return dark;
}

export function navigate(path, replace = false) {
  if (replace) history.replaceState(null, "", path); else history.pushState(null, "", path);
  route();
}
state.navigate = navigate;

function navLink(href, iconName, label, active) {
  return h("a", { href, class: `nav-link${active ? " active" : ""}`, "aria-current": active ? "page" : null,
    onclick: (e) => { e.preventDefault(); navigate(href); } }, icon(iconName), h("span", {}, label));
}

function frame(content, section) {
  const personal = state.drives.find((d) => d.driveType === "personal");
  const dark = document.documentElement.dataset.theme === "dark";
  const header = h("header", { class: "top" },
    h("a", { href: "/", class: "brand", onclick: (e) => { e.preventDefault(); navigate("/"); } },
      h("img", { src: "/assets/icon.svg", alt: "" }), t("appName")),
    searchBox(),
    h("div", { class: "top-actions" },
      notificationBell(),
      h("button", { type: "button", class: "icon-button", "aria-label": t("themeToggle"), "aria-pressed": String(dark),
        onclick: (e) => { // the page's colours change in place: nothing is fetched again
          const wasDark = document.documentElement.dataset.theme === "dark";
          localStorage.setItem("infiniscale.theme", wasDark ? "light" : "dark");
          e.currentTarget.setAttribute("aria-pressed", String(applyTheme()));
        } }, icon("moon")),
      h("span", { class: "user-name", id: "user-name" }, state.me?.displayName || ""),
      h("button", { type: "button", class: "button", id: "sign-out", onclick: () => auth.logout() }, t("signOut"))));
  const nav = h("nav", { class: "side", "aria-label": t("spaces") },
    personal ? navLink(`/files/${encodeURIComponent(personal.id)}`, "home", t("personal"), section === "personal") : null,
    navLink("/shares", "share", t("sharedWithMe"), section === "shares"),
    navLink("/spaces", "spaces", t("spaces"), section === "spaces"),
    personal ? navLink(`/trash/${encodeURIComponent(personal.id)}`, "trash", t("trash"), section === "trash") : null);
  const main = h("main", { id: "main", tabindex: "-1" }, content);
  return h("div", { class: "layout" }, header, nav, main);
}

async function route() {
  const path = decodeURIComponent(location.pathname);
  try {
    if (path.startsWith("/s/")) {
      app.replaceChildren(await publicView(path.slice(3)));
      return;
    }
    if (!state.me) return;
    const personal = state.drives.find((d) => d.driveType === "personal");
    let section = "";
    let content;
    if (path.startsWith("/files/")) {
      const [spaceId, ...rest] = path.slice("/files/".length).split("/");
      section = spaceId === personal?.id ? "personal" : "spaces";
      content = await filesView(spaceId, rest.filter(Boolean).join("/"));
    } else if (path.startsWith("/trash/")) {
      section = "trash";
      content = await trashView(path.slice("/trash/".length).split("/")[0]);
    } else if (path.startsWith("/shares")) {
      section = "shares";
      content = await sharesView();
    } else if (path.startsWith("/spaces")) {
      section = "spaces";
      content = await spacesView();
    } else if (path.startsWith("/search")) {
      content = await searchView(new URLSearchParams(location.search).get("q") || "");
    } else if (personal) {
      navigate(`/files/${encodeURIComponent(personal.id)}`, true);
      return;
    } else {
      section = "spaces";
      content = await spacesView();
    }
    const focused = document.activeElement?.id;
    app.replaceChildren(frame(content, section));
    if (focused && document.getElementById(focused)) document.getElementById(focused).focus();
  } catch (error) {
    showError(error);
  } finally {
    app.removeAttribute("aria-busy");
  }
}

async function start() {
  applyTheme();
  await loadLanguage();
  document.querySelector(".skip")?.replaceChildren(t("skipToContent"));
  const config = await fetch("/config.json").then((r) => r.json());
  state.config = config;
  if (location.pathname.startsWith("/s/")) { // visitors of a public link do not sign in
    route();
    return;
  }
  app.replaceChildren(h("p", { class: "loading" }, t("signingIn")));
  const signedIn = await auth.init(config);
  if (!signedIn && new URLSearchParams(location.search).has("signed-out")) {
    app.removeAttribute("aria-busy");
    app.replaceChildren(h("main", { id: "main", class: "center" }, h("h1", {}, t("appName")), h("p", {}, t("signedOut")),
      h("button", { type: "button", class: "button primary", onclick: () => auth.login("/") }, t("signIn"))));
    return;
  }
  if (!signedIn) { await auth.login(); return; }
  const [me, drives, caps] = await Promise.all([api.me(), api.drives(),
    api.json("GET", "/ocs/v1.php/cloud/capabilities?format=json")]);
  state.me = me;
  state.drives = drives;
  state.capabilities = caps.ocs.data.capabilities;
  setChunkSize(state.capabilities.files?.tus_support?.max_chunk_size || 0);
  addEventListener("popstate", route);
  route();
}

start().catch((error) => {
  app.removeAttribute("aria-busy");
  app.replaceChildren(h("main", { id: "main", class: "center" }, h("h1", {}, t("appName")),
    h("p", { role: "alert" }, error.message || String(error)),
    h("button", { type: "button", class: "button primary", onclick: () => auth.login("/") }, t("signIn"))));
});
