// OpenID Connect for a browser app: authorization code with PKCE (S256), tokens kept in this tab's
// sessionStorage, refreshed with the refresh token before they expire, end-session on sign-out.
// Works against the built-in provider and any external one named in /config.json.
import { t } from "./i18n.js";

const STORE = "infiniscale.tokens";
const PENDING = "infiniscale.login";
const CALLBACK = "/oidc-callback.html";

let config = null;
let metadata = null;
let tokens = null;
let refreshTimer = 0;
let refreshing = null;

function base64url(bytes) {
  let text = "";
  for (const b of new Uint8Array(bytes)) text += String.fromCharCode(b);
  return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function randomString(length = 48) {
  return base64url(crypto.getRandomValues(new Uint8Array(length)));
}

async function challengeOf(verifier) {
  return base64url(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier)));
}

function save(next) {
  tokens = next;
  if (next) sessionStorage.setItem(STORE, JSON.stringify(next));
  else sessionStorage.removeItem(STORE);
  scheduleRefresh();
}

function scheduleRefresh() {
  clearTimeout(refreshTimer);
  if (!tokens?.refresh_token) return;
  // refresh at three quarters of the lifetime, so a request never carries an expired token
  const wait = Math.max(5_000, (tokens.expires_at - Date.now()) * 0.75);
  refreshTimer = setTimeout(() => refresh().catch(() => {}), wait);
}

async function tokenRequest(form) {
  const res = await fetch(metadata.token_endpoint, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ client_id: config.openIdConnect.client_id, ...form }),
  });
  const body = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(body.error_description || body.error || `token endpoint: ${res.status}`);
  return {
    access_token: body.access_token,
    refresh_token: body.refresh_token || tokens?.refresh_token || "",
    id_token: body.id_token || tokens?.id_token || "",
    expires_at: Date.now() + (body.expires_in || 300) * 1000,
  };
}

export async function init(appConfig) {
  config = appConfig;
  const res = await fetch(config.openIdConnect.metadata_url);
  if (!res.ok) throw new Error(`OpenID configuration: ${res.status}`);
  metadata = await res.json();
  tokens = JSON.parse(sessionStorage.getItem(STORE) || "null");
  if (location.pathname === CALLBACK) await finishLogin();
  if (tokens && tokens.expires_at < Date.now() + 10_000) {
    try { await refresh(); } catch { save(null); }
  }
  scheduleRefresh();
  return Boolean(tokens);
}

export async function login(returnTo = location.pathname + location.search + location.hash) {
  const verifier = randomString();
  const state = randomString(16);
  const nonce = randomString(16);
  sessionStorage.setItem(PENDING, JSON.stringify({ verifier, state, nonce, returnTo }));
  const params = new URLSearchParams({
    client_id: config.openIdConnect.client_id,
    response_type: "code",
    scope: config.openIdConnect.scope || "openid profile email offline_access",
    redirect_uri: location.origin + CALLBACK,
    code_challenge: await challengeOf(verifier),
    code_challenge_method: "S256",
    state,
    nonce,
  });
  location.assign(`${metadata.authorization_endpoint}?${params}`);
  return new Promise(() => {}); // the page is leaving
}

async function finishLogin() {
  const params = new URLSearchParams(location.search);
  const pending = JSON.parse(sessionStorage.getItem(PENDING) || "null");
  sessionStorage.removeItem(PENDING);
  if (params.get("error")) throw new Error(params.get("error_description") || params.get("error"));
  if (!pending || params.get("state") !== pending.state) throw new Error(t("signInMismatch"));
  const answer = await tokenRequest({
    grant_type: "authorization_code",
    code: params.get("code") || "",
    redirect_uri: location.origin + CALLBACK,
    code_verifier: pending.verifier,
  });
  // the ID token must be the one this sign-in asked for (its nonce), not one replayed from elsewhere
  if (answer.id_token && claims(answer.id_token).nonce !== pending.nonce) throw new Error(t("signInMismatch"));
  save(answer);
  history.replaceState(null, "", pending.returnTo && pending.returnTo !== CALLBACK ? pending.returnTo : "/");
}

function claims(jwt) {
  try {
    const part = jwt.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(part.padEnd(part.length + ((4 - (part.length % 4)) % 4), "=")));
  } catch {
    return {};
  }
}

export function refresh() {
  // one refresh at a time: the provider rotates refresh tokens, a second use would be refused
  if (!refreshing) {
    refreshing = tokenRequest({ grant_type: "refresh_token", refresh_token: tokens?.refresh_token || "" })
      .then(save)
      .finally(() => { refreshing = null; });
  }
  return refreshing;
}

export function accessToken() {
  return tokens?.access_token || "";
}

export function logout() {
  const idToken = tokens?.id_token || "";
  save(null);
  const end = metadata?.end_session_endpoint;
  // a provider without end-session keeps its own session: going to "/" would sign in again at once
  if (!end) { location.assign("/?signed-out"); return; }
  const params = new URLSearchParams({ post_logout_redirect_uri: `${location.origin}/`, client_id: config.openIdConnect.client_id });
  if (idToken) params.set("id_token_hint", idToken);
  location.assign(`${end}?${params}`);
}
