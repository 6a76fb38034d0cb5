// What the whole app shares: the signed-in user, their drives, the server's capabilities, and the
// view that is open (so live updates can refresh it).
export const state = {
  config: null,
  me: null,
  drives: [],
  capabilities: {},
  navigate: () => {},
  refreshOpenFolder: null, // set by the files view: (spaceId, event?) => void
  previews: new Map(), // id+etag+size -> blob URL
};

export function driveName(drive) {
  return drive?.driveType === "personal" ? "Personal" : drive?.name || "";
}
