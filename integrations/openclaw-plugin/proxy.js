// Forwarding from the gateway's HTTP server to clawstats on loopback: read-only (GET/HEAD), a fixed
// allow-list of request headers (never the caller's Authorization, cookies or `?token=`: clawstats gets
// its own token), CORS for the configured origins only, the SSE body piped through chunk by chunk.
import http from "node:http";

// Request headers clawstats may see; everything else (Authorization, Cookie, X-Forwarded-*) stays here.
const FORWARDED_REQUEST_HEADERS = ["accept", "accept-encoding", "if-none-match", "last-event-id", "cache-control"];
// Response headers that describe one hop, or that the plugin owns itself (CORS).
const DROPPED_RESPONSE_HEADERS = new Set([
  "connection",
  "keep-alive",
  "transfer-encoding",
  "www-authenticate",
  "access-control-allow-origin",
  "access-control-allow-credentials",
  "access-control-expose-headers",
]);

/** A `{ok: false, error, status}` JSON error, the same shape clawstats itself answers with. */
export function sendError(res, status, error, extraHeaders = {}) {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = JSON.stringify({ ok: false, error, status });
  res.writeHead(status, {
    ...extraHeaders,
    "content-type": "application/json",
    "content-length": Buffer.byteLength(body),
    "cache-control": "no-store",
  });
  res.end(body);
}

/** The CORS headers for an allowed `Origin`, or null when the request carries none or a refused one. */
export function corsHeaders(origin, allowedOrigins) {
  if (!origin) return null;
  if (allowedOrigins.includes("*")) return { "access-control-allow-origin": "*", vary: "Origin" };
  if (allowedOrigins.includes(origin)) return { "access-control-allow-origin": origin, vary: "Origin" };
  return null;
}

/** Answer a CORS preflight: 204 with the allow headers for a configured origin, 403 JSON otherwise. */
export function answerPreflight(req, res, allowedOrigins) {
  const cors = corsHeaders(req.headers.origin, allowedOrigins);
  if (!cors) {
    sendError(res, 403, "origin not allowed (plugins.entries.clawstats.config.corsOrigins)");
    return;
  }
  res.writeHead(204, {
    ...cors,
    "access-control-allow-methods": "GET, HEAD, OPTIONS",
    "access-control-allow-headers": "Authorization, Last-Event-ID, If-None-Match, Cache-Control",
    "access-control-max-age": "600",
    "content-length": "0",
  });
  res.end();
}

/**
 * `pathAndQuery` without the caller's credentials: `token` (not clawstats' token) and `tab` (the
 * plugin's own tab capability, unknown to clawstats, which refuses unknown query parameters).
 */
export function withoutCredentials(pathAndQuery) {
  const url = new URL(pathAndQuery, "http://upstream.invalid");
  url.searchParams.delete("token");
  url.searchParams.delete("tab");
  return url.pathname + url.search;
}

/**
 * Forward one GET/HEAD request to clawstats at `target` (`{host, port, token, timeoutMs}`) as
 * `upstreamPath`, piping its answer back. Resolves when the exchange is over.
 */
export function forward(req, res, upstreamPath, target, cors) {
  return new Promise((resolve) => {
    const headers = { host: `${target.host}:${target.port}` };
    for (const name of FORWARDED_REQUEST_HEADERS) {
      const value = req.headers[name];
      if (value !== undefined) headers[name] = value;
    }
    if (target.token) headers.authorization = `Bearer ${target.token}`;
    const upstream = http.request({
      host: target.host,
      port: target.port,
      method: req.method,
      path: withoutCredentials(upstreamPath),
      headers,
      timeout: target.timeoutMs,
    });
    let streaming = false;
    const finish = () => resolve(true);
    upstream.on("timeout", () => {
      // Only the wait for the answer's headers is bounded; an event stream may stay quiet for long.
      if (!streaming) upstream.destroy(new Error(`no answer within ${target.timeoutMs} ms`));
    });
    upstream.on("error", (err) => {
      if (!res.headersSent) {
        const reason = err.code || err.message;
        sendError(res, 503, `clawstats is not reachable at http://${target.host}:${target.port} (${reason})`, {
          ...(cors || {}),
          "retry-after": "1",
        });
      } else {
        res.destroy();
      }
      finish();
    });
    upstream.on("response", (answer) => {
      if (answer.statusCode === 401) {
        // clawstats refused the plugin's own token: a configuration error, not the caller's.
        answer.resume();
        sendError(res, 502, "clawstats refused the plugin's token (plugins.entries.clawstats.config.token)", cors || {});
        finish();
        return;
      }
      const out = { ...(cors || {}) };
      for (const [name, value] of Object.entries(answer.headers)) {
        if (!DROPPED_RESPONSE_HEADERS.has(name)) out[name] = value;
      }
      if (cors) {
        out["access-control-expose-headers"] = "ETag";
        out.vary = answer.headers.vary ? `${answer.headers.vary}, Origin` : "Origin";
      }
      streaming = (answer.headers["content-type"] || "").startsWith("text/event-stream");
      if (streaming) {
        upstream.setTimeout(0);
        out["x-accel-buffering"] = "no";
        req.socket.setNoDelay(true);
      }
      res.writeHead(answer.statusCode, out);
      answer.pipe(res);
      if (streaming) {
        res.flushHeaders();
        // The handler is done once the stream is flowing: while it is pending, the gateway counts
        // the request as active work, and a restart or stop would wait its whole drain budget
        // (315 s on 2026.9.6) for a stream that never ends. The socket closes with the server.
        finish();
      }
      answer.on("end", finish);
      answer.on("error", () => {
        res.destroy();
        finish();
      });
    });
    // The caller went away (closed tab, dropped stream): stop the upstream exchange too.
    res.on("close", () => {
      upstream.destroy();
      finish();
    });
    upstream.end();
  });
}
