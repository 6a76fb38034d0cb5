// Folder listings read as they arrive. A PROPFIND of 10 000 entries is 7 MB of XML: DOMParser takes
// seconds over it in one task and freezes the page. The server writes every entry in the same shape
// (prefixes d:, oc:, nc:), so each finished <d:response> is cut out of the stream and its properties
// read with one pattern; every network chunk is its own short task.

const BATCH = 250;
const ENTITIES = { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'" };
const RESPONSE = /<d:response>([\s\S]*?)<\/d:response>/g;
const PROPSTAT = /<d:propstat>\s*<d:prop>([\s\S]*?)<\/d:prop>\s*<d:status>([^<]*)<\/d:status>/g;
const PROP = /<(d|oc|nc):([\w-]+)(?:\s[^>]*)?(?:\/>|>([\s\S]*?)<\/\1:\2>)/g;

export function unescapeXml(s) {
  if (s.indexOf("&") < 0) return s;
  return s.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|\w+);/g, (whole, name) => {
    if (name[0] !== "#") return ENTITIES[name] ?? whole;
    return String.fromCodePoint(name[1] === "x" ? parseInt(name.slice(2), 16) : parseInt(name.slice(1), 10));
  });
}

/** One <d:response>'s inner XML -> { href, props: Map("d:getetag" -> raw inner XML) } from its 200 propstat. */
export function readResponse(inner) {
  const hrefMatch = /<d:href>([\s\S]*?)<\/d:href>/.exec(inner);
  const props = new Map();
  for (const [, block, status] of inner.matchAll(PROPSTAT)) {
    if (!status.includes(" 200 ")) continue;
    for (const [, prefix, name, value] of block.matchAll(PROP)) props.set(`${prefix}:${name}`, value ?? "");
  }
  return { href: hrefMatch ? unescapeXml(hrefMatch[1]) : "", props };
}

/** The responses of a multistatus body, in order, as its chunks come in (an async generator). */
export async function* streamResponses(res) {
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { done, value } = await reader.read();
    buffer += decoder.decode(value || new Uint8Array(), { stream: !done });
    const end = buffer.lastIndexOf("</d:response>");
    if (end >= 0) {
      const complete = buffer.slice(0, end + 13);
      buffer = buffer.slice(end + 13);
      let batch = [];
      for (const [, inner] of complete.matchAll(RESPONSE)) {
        batch.push(readResponse(inner));
        if (batch.length === BATCH) { // a big read is cut into short tasks: the page stays responsive
          yield batch;
          batch = [];
          await new Promise((resolve) => setTimeout(resolve, 0));
        }
      }
      if (batch.length) yield batch;
    }
    if (done) return;
  }
}
