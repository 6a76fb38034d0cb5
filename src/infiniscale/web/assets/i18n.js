// Every string the app shows goes through t(): English is built in, other languages are JSON files
// in /assets/l10n/<lang>.json with the same keys (missing keys fall back to English). A count {n}
// picks the plural form the language's rules name: key_one, key_few, ... (else the key itself).
const EN = {
  appName: "infiniscale",
  loading: "Loading…",
  signIn: "Sign in",
  signOut: "Sign out",
  signingIn: "Signing in…",
  signedOut: "You are signed out.",
  personal: "Personal",
  spaces: "Spaces",
  sharedWithMe: "Shared with me",
  trash: "Trash",
  search: "Search",
  searchFiles: "Search files",
  noResults: "No results",
  name: "Name",
  size: "Size",
  modified: "Modified",
  actions: "Actions",
  newFolder: "New folder",
  folderName: "Folder name",
  upload: "Upload",
  uploadFiles: "Upload files",
  uploadFolder: "Upload folder",
  create: "Create",
  cancel: "Cancel",
  save: "Save",
  close: "Close",
  rename: "Rename",
  newName: "New name",
  move: "Move",
  copy: "Copy",
  moveTo: "Move to…",
  copyTo: "Copy to…",
  chooseFolder: "Choose a folder",
  here: "Here",
  delete: "Delete",
  download: "Download",
  downloadArchive: "Download as archive",
  share: "Share",
  details: "Details",
  restore: "Restore",
  purge: "Delete permanently",
  emptyTrash: "Empty trash",
  emptyFolder: "This folder is empty",
  emptyTrashList: "The trash is empty",
  selected: "{n} selected",
  selectAll: "Select all",
  select: "Select {name}",
  listView: "List",
  gridView: "Grid",
  view: "View",
  sortBy: "Sort by",
  items: "{n} items",
  items_one: "{n} item",
  skipToContent: "Skip to content",
  breadcrumb: "Breadcrumb",
  state: "State",
  uploadAborted: "aborted",
  percent: "{n} %",
  signInMismatch: "The sign-in answer does not match. Please sign in again.",
  pause: "Pause",
  resume: "Resume",
  retry: "Retry",
  uploads: "Uploads",
  uploadDone: "Upload finished",
  uploadFailed: "Upload failed: {reason}",
  uploadProgress: "{done} of {total}",
  dropHere: "Drop files here to upload",
  quotaExceeded: "Not enough space left: the quota is exceeded.",
  locked: "The item is locked.",
  forbidden: "You do not have permission to do this.",
  notFound: "The item was not found.",
  conflict: "An item with this name already exists.",
  parentMissing: "The folder it goes into does not exist (any more).",
  purgeQuestion: "Delete {name} for good? It cannot be restored afterwards.",
  emptyTrashQuestion: "Delete all {n} items in this trash for good? They cannot be restored afterwards.",
  trashEmptied: "The trash is empty now",
  networkError: "The server could not be reached.",
  failed: "Something went wrong ({status}).",
  deleted: "Moved {name} to the trash",
  restored: "Restored {name}",
  created: "Created {name}",
  renamed: "Renamed to {name}",
  moved: "Moved {name}",
  copied: "Copied {name}",
  owner: "Owner",
  tags: "Tags",
  versions: "Versions",
  noVersions: "No earlier versions",
  shares: "Shares",
  activities: "Activities",
  noActivities: "No activities",
  people: "People",
  links: "Public links",
  searchPeople: "Search users and groups",
  role: "Role",
  expires: "Expires",
  invite: "Share",
  sharedWith: "Shared with {name}",
  removeShare: "Remove",
  createLink: "Create link",
  linkType: "Link type",
  password: "Password",
  copyLink: "Copy link",
  linkCopied: "Link copied",
  linkCreated: "Link created",
  viewer: "Can view",
  editor: "Can edit",
  uploader: "Can upload",
  manager: "Can manage",
  internal: "Internal",
  view_link: "Can view",
  upload_link: "Can upload",
  edit_link: "Can edit",
  createOnly: "Secret file drop",
  accept: "Accept",
  decline: "Decline",
  hide: "Hide",
  unhide: "Show again",
  showHidden: "Show hidden shares ({n})",
  pending: "Pending",
  accepted: "Accepted",
  declined: "Declined",
  sharedBy: "Shared by {name}",
  newSpace: "New space",
  spaceName: "Space name",
  members: "Members",
  quota: "{used} of {total} used",
  quotaUnlimited: "{used} used",
  notifications: "Notifications",
  noNotifications: "No notifications",
  markRead: "Dismiss",
  publicLink: "Public link",
  enterPassword: "This link is protected by a password",
  open: "Open",
  wrongPassword: "The password is wrong.",
  linkGone: "This link does not exist or has expired.",
  dropFiles: "Drop files to send them to the owner",
  sent: "Sent {name}",
  themeToggle: "Dark mode",
  back: "Back",
  filesIn: "Files in {name}",
  folder: "Folder",
  file: "File",
  deletedFrom: "Deleted from",
  deletedAt: "Deleted",
  members: "Members",
  group: "group",
  roleOf: "Role of {name}",
  roleChanged: "Changed the role of {name}",
  passwordProtected: "password protected",
  editLink: "Edit",
  newPassword: "New password",
  expiresOn: "expires {date}",
  manageSpace: "Manage {name}",
  description: "Description",
  editDescription: "Edit description",
  spaceImage: "Set image",
  editReadme: "Edit readme",
  readme: "Readme",
  saved: "Saved",
};

let own = {}; // the language's file: its keys win over English ones, plural forms included
let language = "en";
let plurals = new Intl.PluralRules("en");

export async function loadLanguage(lang) {
  const code = (lang || navigator.language || "en").slice(0, 2).toLowerCase();
  document.documentElement.lang = code;
  language = code;
  plurals = new Intl.PluralRules(code);
  if (code === "en") return;
  try {
    const res = await fetch(`/assets/l10n/${code}.json`);
    if (res.ok) own = await res.json();
  } catch {
    // English it is
  }
}

export function t(key, vars = {}) {
  const form = typeof vars.n === "number" ? `${key}_${plurals.select(vars.n)}` : "";
  const text = own[form] ?? own[key] ?? EN[form] ?? EN[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => (name in vars ? String(vars[name]) : `{${name}}`));
}

const UNITS = ["byte", "kilobyte", "megabyte", "gigabyte", "terabyte"];
const sizeFormats = new Map();
/** Bytes in the language's own digits, decimal sign and unit names (decimal units, as the server counts). */
export function formatSize(bytes) {
  if (bytes === undefined || bytes === null || Number.isNaN(bytes)) return "";
  let n = Number(bytes);
  let unit = 0;
  while (n >= 1000 && unit < UNITS.length - 1) { n /= 1000; unit += 1; }
  const digits = unit === 0 ? 0 : n < 10 ? 1 : 0;
  const key = `${language}|${unit}|${digits}`;
  if (!sizeFormats.has(key)) {
    // plain bytes as "B": the languages' short names for a byte ("byte", "Byte") read oddly beside kB
    sizeFormats.set(key, unit === 0 ? { format: (v) => `${new Intl.NumberFormat(language).format(v)} B` }
      : new Intl.NumberFormat(language, { style: "unit", unit: UNITS[unit], unitDisplay: "short",
        minimumFractionDigits: digits, maximumFractionDigits: digits }));
  }
  return sizeFormats.get(key).format(n);
}

const dateFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
export function formatDate(value) {
  if (!value) return "";
  const date = value instanceof Date ? value : new Date(value);
  return Number.isNaN(date.getTime()) ? "" : dateFormat.format(date);
}
