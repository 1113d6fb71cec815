// clawstats for OpenClaw: serves clawstats' read-only API on the gateway's own port (behind the
// gateway's auth), a Control UI tab with clawstats' live page, and optionally runs `clawstats serve`
// as a plugin service. The gateway process only forwards bytes; it never reads the session store.
import { spawn } from "node:child_process";
import { bearerMatches, gatewaySharedSecret } from "./auth.js";
import { answerPreflight, corsHeaders, forward, sendError } from "./proxy.js";
import { TabCapabilities, tabCors } from "./tab.js";

const PLUGIN_ID = "clawstats";
// The Control UI tab's route root: clawstats' page and what it fetches, under one gateway-auth prefix.
export const TAB_ROOT = "/plugins/clawstats";
// The API paths forwarded as they are; /api/sessions/{key} too.
const API_EXACT = ["/api/sessions", "/api/usage", "/api/events"];
const API_SESSION_PREFIX = "/api/sessions/";
// What the tab's page may reach under TAB_ROOT (clawstats' paths, read-only).
// A static file name never starts with a dot (no `..`).
const TAB_PATHS = [
  /^\/$/,
  /^\/static\/[\w-][\w.-]*$/,
  /^\/api\/(sessions|usage|events|alerts)$/,
  /^\/api\/sessions\/.+$/,
  /^\/healthz$/,
];
const STOP_GRACE_MS = 5000;

/** The plugin config with defaults filled in (the manifest's schema has already validated it). */
export function resolveConfig(raw = {}) {
  return {
    host: raw.host ?? "127.0.0.1",
    port: raw.port ?? 18780,
    token: raw.token ?? process.env.CLAWSTATS_TOKEN ?? "",
    corsOrigins: raw.corsOrigins ?? [],
    manage: raw.manage ?? false,
    command: raw.command ?? "clawstats",
    args: raw.args ?? [],
    timeoutMs: raw.timeoutMs ?? 10000,
  };
}

function pathOf(req) {
  const url = req.url || "/";
  const q = url.indexOf("?");
  return { pathname: q < 0 ? url : url.slice(0, q), search: q < 0 ? "" : url.slice(q) };
}

/**
 * A route handler: OPTIONS preflight, GET/HEAD forwarded as `mapPath(pathname)`, anything else 405.
 * `secret` is set only on `auth: "plugin"` routes (CORS on): the bearer the plugin checks itself.
 */
function makeHandler(cfg, mapPath, secret = null) {
  return async (req, res) => {
    if (req.method === "OPTIONS") {
      answerPreflight(req, res, cfg.corsOrigins);
      return true;
    }
    const cors = corsHeaders(req.headers.origin, cfg.corsOrigins);
    if (secret !== null && !bearerMatches(req, secret)) {
      sendError(res, 401, "the gateway token is required (Authorization: Bearer ...)", {
        ...(cors || {}),
        "www-authenticate": "Bearer",
      });
      return true;
    }
    if (req.method !== "GET" && req.method !== "HEAD") {
      sendError(res, 405, "read-only: only GET and HEAD", { ...(cors || {}), allow: "GET, HEAD, OPTIONS" });
      return true;
    }
    const { pathname, search } = pathOf(req);
    const upstreamPath = mapPath(pathname);
    if (upstreamPath === null) {
      sendError(res, 404, `no such route: ${pathname}`, cors || {});
      return true;
    }
    return forward(req, res, upstreamPath + search, cfg, cors);
  };
}

/**
 * How the API routes authenticate: the gateway itself (`auth: "gateway"`), or, with CORS origins
 * configured, the plugin against the gateway's shared secret so that preflights can be answered.
 */
function resolveApiAuth(cfg, api) {
  if (cfg.corsOrigins.length === 0) return { auth: "gateway", secret: null };
  const secret = gatewaySharedSecret(api.config);
  if (secret === null) {
    api.logger.warn(
      "clawstats: corsOrigins needs gateway.auth.mode token or password; CORS preflights stay refused by the gateway",
    );
    return { auth: "gateway", secret: null };
  }
  return { auth: "plugin", secret };
}

function apiPath(pathname) {
  if (API_EXACT.includes(pathname)) return pathname;
  if (pathname.startsWith(API_SESSION_PREFIX) && pathname.length > API_SESSION_PREFIX.length) return pathname;
  return null;
}

function tabPath(pathname) {
  const rest = pathname === TAB_ROOT ? "/" : pathname.slice(TAB_ROOT.length);
  return TAB_PATHS.some((re) => re.test(rest)) ? rest : null;
}

/**
 * The tab's route: the page's first load is redirected to carry a fresh `?tab=` capability; the
 * page's API calls from the sandboxed frame get CORS for `null` only with a live one.
 */
function makeTabHandler(cfg) {
  const capabilities = new TabCapabilities();
  return async (req, res) => {
    const { pathname, search } = pathOf(req);
    if (req.method !== "GET" && req.method !== "HEAD") {
      sendError(res, 405, "read-only: only GET and HEAD", { allow: "GET, HEAD" });
      return true;
    }
    const upstreamPath = tabPath(pathname);
    if (upstreamPath === null) {
      sendError(res, 404, `no such route: ${pathname}`);
      return true;
    }
    if (upstreamPath === "/" && !capabilities.valid(new URLSearchParams(search).get("tab"))) {
      res.writeHead(302, { location: `${TAB_ROOT}/?tab=${capabilities.issue()}`, "cache-control": "no-store" });
      res.end();
      return true;
    }
    return forward(req, res, upstreamPath + search, cfg, tabCors(req, search, capabilities));
  };
}

/** `clawstats serve` as a child process for the gateway's lifetime (config `manage: true`). */
function makeService(cfg, logger) {
  let child = null;
  return {
    id: "clawstats-server",
    start(ctx) {
      const args = ["serve", "--host", cfg.host, "--port", String(cfg.port), "--state-dir", ctx.stateDir, ...cfg.args];
      // The gateway's own secrets stay in the gateway; clawstats gets only its own token.
      const env = { ...process.env };
      for (const name of Object.keys(env)) if (name.startsWith("OPENCLAW_GATEWAY_")) delete env[name];
      if (cfg.token) env.CLAWSTATS_TOKEN = cfg.token;
      child = spawn(cfg.command, args, { env, stdio: ["ignore", "pipe", "pipe"] });
      const log = (chunk) => {
        for (const line of chunk.toString().split("\n")) if (line.trim()) logger.info(`clawstats: ${line}`);
      };
      child.stdout.on("data", log);
      child.stderr.on("data", log);
      child.on("error", (err) => logger.warn(`clawstats: could not start ${cfg.command}: ${err.message}`));
      child.on("exit", (code, signal) => {
        logger.info(`clawstats: exited (${signal || code})`);
        child = null;
      });
    },
    async stop() {
      const running = child;
      if (!running) return;
      await new Promise((resolve) => {
        const timer = setTimeout(() => running.kill("SIGKILL"), STOP_GRACE_MS);
        running.once("exit", () => {
          clearTimeout(timer);
          resolve();
        });
        running.kill("SIGTERM");
      });
    },
  };
}

export default {
  id: PLUGIN_ID,
  name: "clawstats",
  description: "clawstats' live per-session statistics on the gateway's port and in the Control UI",
  register(api) {
    const cfg = resolveConfig(api.pluginConfig);
    const apiAuth = resolveApiAuth(cfg, api);
    const apiHandler = makeHandler(cfg, apiPath, apiAuth.secret);
    for (const path of API_EXACT) api.registerHttpRoute({ path, auth: apiAuth.auth, match: "exact", handler: apiHandler });
    api.registerHttpRoute({ path: API_SESSION_PREFIX, auth: apiAuth.auth, match: "prefix", handler: apiHandler });
    api.registerHttpRoute({ path: TAB_ROOT, auth: "gateway", match: "prefix", handler: makeTabHandler(cfg) });
    const controls = api.session?.controls ?? api;
    controls.registerControlUiDescriptor?.({
      surface: "tab",
      id: "clawstats",
      label: "clawstats",
      description: "Live context, cost and compactions per session",
      icon: "bar-chart",
      group: "control",
      path: `${TAB_ROOT}/`,
      requiredScopes: ["operator.read"],
    });
    if (cfg.manage) api.registerService(makeService(cfg, api.logger));
  },
};
