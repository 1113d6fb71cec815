// The gateway's shared secret, checked by the plugin itself on the API routes when CORS is on.
// Why: the gateway authenticates an `auth: "gateway"` route before the plugin sees the request, so a
// browser's CORS preflight (which never carries credentials) gets the gateway's 401 and the browser
// then refuses the real request. With `corsOrigins` set, the API routes are registered with
// `auth: "plugin"`: the plugin answers the preflight and checks `Authorization: Bearer <secret>`
// against the same token (or password) the gateway accepts, in constant time.
import { createHash, timingSafeEqual } from "node:crypto";

/**
 * The secret a bearer must equal, from the gateway's config (`gateway.auth.mode` token or password,
 * the value inline or from OPENCLAW_GATEWAY_TOKEN / OPENCLAW_GATEWAY_PASSWORD), or null when the
 * gateway uses another mode (tailscale, trusted-proxy, none) that the plugin cannot check itself.
 */
export function gatewaySharedSecret(config, env = process.env) {
  const auth = config?.gateway?.auth ?? {};
  const mode = auth.mode ?? (auth.password ? "password" : "token");
  if (mode === "token") return asSecret(auth.token) ?? asSecret(env.OPENCLAW_GATEWAY_TOKEN);
  if (mode === "password") return asSecret(auth.password) ?? asSecret(env.OPENCLAW_GATEWAY_PASSWORD);
  return null;
}

function asSecret(value) {
  return typeof value === "string" && value.length > 0 ? value : null;
}

const digest = (text) => createHash("sha256").update(text, "utf8").digest();

/** True when the request carries `Authorization: Bearer <secret>` (compared as SHA-256, constant time). */
export function bearerMatches(req, secret) {
  const header = req.headers.authorization;
  if (typeof header !== "string" || !header.toLowerCase().startsWith("bearer ")) return false;
  return timingSafeEqual(digest(header.slice(7).trim()), digest(secret));
}
