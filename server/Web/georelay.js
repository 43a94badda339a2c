// GeoRelay web learner client: one ES module, no build step. Served by every node with a `web` address at /georelay.js.
// Contract: docs/web.md. Usage:
//   import { subscribe } from "http://HOST:PORT/georelay.js";
//   subscribe("http://HOST:PORT", { from: 1 }, e => console.log(e.index, e.key, e.payload));
//
// Every entry reaches the callback once and in order: the client remembers the last index it handed over and, after
// any disconnect, connects again (with back-off) from that index + 1, to the next of the addresses given (a list of
// nodes' web addresses, so the stream goes on when a node dies). It uses WebSocket, or Server-Sent Events where
// WebSocket is not available (or with { transport: "sse" }).

const RESUMABLE = new Set(["stopping", "slow-consumer", "upstream-lost", "internal-error", "client-gone", "unavailable"]);

/**
 * Subscribes to a GeoRelay log through a node's web endpoint.
 * @param {string|string[]} urls  a node's web address, e.g. "http://127.0.0.1:7014" (https:// when the cluster has tls), or
 *   several: the client starts on the first and, after each disconnect, resumes on the next (round robin)
 * @param {{from?: number, prefix?: string, token?: string, transport?: "websocket"|"sse",
 *          backoffInitialMs?: number, backoffMaxMs?: number,
 *          onError?: (error: {error: string, message: string}) => void,
 *          onStatus?: (status: "connecting"|"open"|"closed") => void}} options
 * @param {(entry: {index: number, key: string, payload: string|null, keyBytes: Uint8Array|null, payloadBytes: Uint8Array|null}) => void} onEntry
 * @returns {{close: () => void, lastIndex: () => number}}
 */
export function subscribe(urls, options, onEntry) {
  const addresses = Array.isArray(urls) ? [...urls] : [urls];
  if (addresses.length === 0 || addresses.some(a => typeof a !== "string" || !/^https?:\/\//.test(a)))
    throw new TypeError("georelay: subscribe needs a web address (http://HOST:PORT or https://...) or a non-empty list of them, got " + JSON.stringify(urls));
  let next = 0;
  let url = addresses[0];
  const opts = { from: 1, transport: typeof WebSocket === "function" ? "websocket" : "sse",
    backoffInitialMs: 250, backoffMaxMs: 10000, ...options };
  let last = Math.max(0, (opts.from ?? 1) - 1);
  let closed = false;
  let failures = 0;
  let current = null;
  let timer = null;

  const status = s => opts.onStatus && opts.onStatus(s);
  const fail = error => { closed = true; status("closed"); if (opts.onError) opts.onError(error); else console.error("georelay:", error.message); };

  function streamUrl(scheme) {
    const u = new URL("/stream", url);
    if (scheme) u.protocol = scheme;
    u.searchParams.set("from", String(last + 1));
    if (scheme) u.searchParams.set("batch", "1"); // WebSocket: what arrived together comes as one array
    if (opts.prefix) u.searchParams.set("prefix", opts.prefix);
    if (opts.token) u.searchParams.set("token", opts.token);
    return u.toString();
  }

  function deliver(text) {
    const parsed = JSON.parse(text);
    // A node that predates batching sends one object per message.
    if (Array.isArray(parsed)) parsed.forEach(deliverOne);
    else deliverOne(parsed);
  }

  function deliverOne(m) {
    if (m.index <= last) return; // already handed over (never expected; the server resumes at last + 1)
    last = m.index;
    failures = 0;
    onEntry({
      index: m.index,
      key: m.key ?? null,
      payload: m.payload ?? null,
      keyBytes: m.key_base64 !== undefined ? fromBase64(m.key_base64) : null,
      payloadBytes: m.payload_base64 !== undefined ? fromBase64(m.payload_base64) : null,
    });
  }

  function retry() {
    if (closed) return;
    status("connecting");
    const base = Math.min(opts.backoffMaxMs, opts.backoffInitialMs * 2 ** Math.min(failures, 16));
    failures++;
    timer = setTimeout(connect, base * (1 + Math.random() * 0.2));
  }

  function ended(error) {
    current = null;
    if (closed) return;
    if (error && !RESUMABLE.has(error.error)) fail(error);
    else retry();
  }

  function connect() {
    if (closed) return;
    url = addresses[next++ % addresses.length];
    status("connecting");
    if (opts.transport === "sse") connectSse(); else connectWebSocket();
  }

  function connectWebSocket() {
    const ws = new WebSocket(streamUrl(url.startsWith("https") ? "wss:" : "ws:"));
    let opened = false;
    current = ws;
    ws.onopen = () => { opened = true; status("open"); };
    ws.onmessage = event => deliver(event.data);
    const lost = event => {
      if (closed || current !== ws) return; // the error and the close of one failure are handled once
      if (!opened) { current = null; probe(); return; } // refused before the upgrade: the HTTP answer says why
      // 4401/4403 (token), 4409 (truncated), 4410 (snapshot required), 1008 (protocol): reconnecting cannot help.
      const final = { 4401: "unauthorized", 4403: "forbidden", 4409: "truncated", 4410: "snapshot-required", 1008: "client-sent-data" }[event.code];
      ended(final ? { error: final, message: event.reason } : null);
    };
    ws.onclose = lost;
    // Some implementations report a refused connection only as an error, without a close after it.
    ws.onerror = () => lost({ code: 1006, reason: "" });
  }

  function connectSse() {
    const es = new EventSource(streamUrl());
    current = es;
    es.onopen = () => status("open");
    es.onmessage = event => deliver(event.data);
    es.addEventListener("close", event => { es.close(); ended(JSON.parse(event.data)); });
    es.onerror = () => {
      es.close();
      if (closed || current !== es) return;
      current = null;
      probe();
    };
  }

  // Neither WebSocket nor EventSource lets a page read an HTTP refusal (400, 401, 403): one plain request does.
  function probe() {
    fetch(streamUrl(), { headers: { Accept: "text/event-stream" } }).then(async response => {
      if (response.ok) { response.body?.cancel(); retry(); return; }
      const body = await response.json().catch(() => ({ error: "http-" + response.status, message: response.statusText }));
      if (response.status >= 500) retry(); else fail(body);
    }, retry);
  }

  connect();
  return {
    close() { closed = true; clearTimeout(timer); if (current) current.close(); status("closed"); },
    lastIndex: () => last,
  };
}

function fromBase64(text) {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}
