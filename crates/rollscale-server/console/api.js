// The console's only way to the service: the public REST API under /v1, with a bearer token.
//
// Signing in makes a short-lived token from the AccessKey in the page (the format of
// rollscale_client::token: `rs2.<id>.<session start>.<expiry>.<hex HMAC-SHA256 of the rest,
// keyed with the secret>`, times in Unix milliseconds), then trades it at POST /v1/tokens for
// the session's token. The secret is dropped at once; only the session token and the AccessKey
// id are kept, in sessionStorage.

const SESSION = "rollscale.session";

/// An error the API answered with: its code and message, shown as they are.
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
  toString() {
    return `${this.code}: ${this.message}`;
  }
}

function hex(bytes) {
  return Array.from(new Uint8Array(bytes), (b) => b.toString(16).padStart(2, "0")).join("");
}

async function makeToken(accessKeyId, secret, ttlSeconds) {
  const now = Date.now();
  const payload = `rs2.${accessKeyId}.${now}.${now + ttlSeconds * 1000}`;
  const key = await crypto.subtle.importKey(
    "raw", new TextEncoder().encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const mac = await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(payload));
  return `${payload}.${hex(mac)}`;
}

export function session() {
  try {
    return JSON.parse(sessionStorage.getItem(SESSION) || "null");
  } catch {
    return null;
  }
}

export function signOut() {
  sessionStorage.removeItem(SESSION);
}

/// Signs in: the session, or an ApiError (a wrong secret is the server's InvalidToken).
export async function signIn(accessKeyId, secret) {
  if (!globalThis.crypto?.subtle) {
    throw new ApiError(0, "InsecureContext", "this browser offers no WebCrypto here: open the console over https or on 127.0.0.1");
  }
  const probe = await makeToken(accessKeyId, secret, 60);
  const answer = await send("POST", "/v1/tokens?ttl=43200", undefined, probe);
  const current = { accessKeyId, userName: answer.user_name, token: answer.token, expiresAt: answer.expires_at };
  sessionStorage.setItem(SESSION, JSON.stringify(current));
  return current;
}

async function send(method, path, body, token) {
  const headers = { Authorization: `Bearer ${token}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (error) {
    throw new ApiError(0, "NetworkError", `the service did not answer (${error.message})`);
  }
  const text = await response.text();
  let value = null;
  try {
    value = text ? JSON.parse(text) : null;
  } catch {
    value = null;
  }
  if (!response.ok) {
    throw new ApiError(response.status, value?.Code ?? String(response.status), value?.Message ?? text);
  }
  return value;
}

/// A call of the REST API with the session's token.
export async function api(method, path, body) {
  const current = session();
  if (!current) throw new ApiError(401, "NotSignedIn", "sign in first");
  return send(method, path, body, current.token);
}

export const get = (path) => api("GET", path);
export const post = (path, body) => api("POST", path, body);
export const patch = (path, body) => api("PATCH", path, body);
export const put = (path, body) => api("PUT", path, body);
export const remove = (path) => api("DELETE", path);

/// Follows a rolling update's Server-Sent Events stream (fetch, as EventSource sends no
/// Authorization header): `onProgress(view)` at each change, `onEnd()` once finished. Reconnects
/// after a dropped connection until `stop()` is called.
export function follow(id, onProgress, onEnd, onError) {
  const controller = new AbortController();
  let stopped = false;
  async function run() {
    while (!stopped) {
      try {
        const current = session();
        const response = await fetch(`/v1/rolling-updates/${encodeURIComponent(id)}/events`, {
          headers: { Authorization: `Bearer ${current?.token}`, Accept: "text/event-stream" },
          signal: controller.signal,
        });
        if (!response.ok) {
          const value = await response.json().catch(() => ({}));
          onError(new ApiError(response.status, value.Code ?? String(response.status), value.Message ?? ""));
          return;
        }
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value;
          let cut;
          while ((cut = buffer.indexOf("\n\n")) >= 0) {
            const block = buffer.slice(0, cut);
            buffer = buffer.slice(cut + 2);
            let event = "message";
            const data = [];
            for (const line of block.split("\n")) {
              if (line.startsWith("event:")) event = line.slice(6).trim();
              else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
            }
            if (event === "progress") onProgress(JSON.parse(data.join("\n")));
            else if (event === "end") {
              stopped = true;
              onEnd();
              return;
            } else if (event === "error") onError(new ApiError(0, "StreamError", data.join("\n")));
          }
        }
      } catch (error) {
        if (stopped || error.name === "AbortError") return;
      }
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  }
  run();
  return {
    stop() {
      stopped = true;
      controller.abort();
    },
  };
}
