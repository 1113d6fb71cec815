// The Control UI tab: clawstats' page in OpenClaw's sandboxed frame (`sandbox="allow-scripts"`, an
// opaque origin). The gateway authenticates the frame with a short-lived cookie grant; the page's
// fetch() and EventSource calls are cross-origin (Origin: null) and must be allowed by CORS to be
// read. Allowing `null` alone would let any site's sandboxed frame read the statistics while the
// grant cookie lives, so the plugin hands the framed page a random capability (`?tab=`) on its
// authenticated navigation and allows `null` only for requests that carry a live one.
import { randomBytes } from "node:crypto";

const TAB_CAPABILITY_TTL_MS = 12 * 60 * 60 * 1000;
const MAX_TAB_CAPABILITIES = 256;

export class TabCapabilities {
  constructor(nowMs = () => Date.now()) {
    this.nowMs = nowMs;
    this.expiresAtMs = new Map(); // capability -> expiry (ms), oldest first
  }

  issue() {
    const now = this.nowMs();
    for (const [cap, expiry] of this.expiresAtMs) if (expiry <= now) this.expiresAtMs.delete(cap);
    while (this.expiresAtMs.size >= MAX_TAB_CAPABILITIES) this.expiresAtMs.delete(this.expiresAtMs.keys().next().value);
    const cap = randomBytes(24).toString("base64url");
    this.expiresAtMs.set(cap, now + TAB_CAPABILITY_TTL_MS);
    return cap;
  }

  valid(cap) {
    if (typeof cap !== "string" || cap.length !== 32) return false;
    const expiry = this.expiresAtMs.get(cap);
    return expiry !== undefined && expiry > this.nowMs();
  }
}

/** CORS headers for the framed page's own requests (Origin: null with a live capability), else null. */
export function tabCors(req, search, capabilities) {
  if (req.headers.origin !== "null") return null;
  const cap = new URLSearchParams(search).get("tab");
  if (!capabilities.valid(cap)) return null;
  return { "access-control-allow-origin": "null", "access-control-allow-credentials": "true", vary: "Origin" };
}
