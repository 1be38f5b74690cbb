// A webhook receiver for the outbound-webhooks tests and benchmark: every delivery is
// verified with `standardwebhooks`, the official Standard Webhooks library, so a sender
// that passes here signs the way the specification's own code checks (installed by
// tests/setup/tools-webhooks.sh; shared/testkit's WebhookReceiver starts it).
//
// Usage: node receiver.mjs [--receive-port N] [--control-port M] [--secrets LIST]
//                          [--exit-with-stdin]
//   ports default to RECEIVE_PORT / CONTROL_PORT, then 0 (a free port); secrets to
//   WEBHOOK_SECRETS; LIST is `whsec_...` secrets separated by commas or spaces.
//   --exit-with-stdin: exit when stdin ends (the test process that started it went away).
// Prints one JSON line on stdout when both ports listen on 127.0.0.1:
//   {"receive_port":N,"control_port":M}
//
// Receiving port, POST any path:
//   204  verified by one of the secrets (the same webhook-id again counts as a duplicate)
//   401  no secret verifies the signature headers (counted as rejected)
//   400  verified, but the body is not {"type": string, "timestamp": RFC 3339, ...}
//        (counted as malformed, and said on stderr)
//   the configured status, unverified and unrecorded, while POST /status set one
// Control port (keeps answering while the receiving port is down):
//   GET  /deliveries  {"verified":[{id,type,path,received_at_ms,latency_ms}],
//                      "duplicates":n,"rejected":n,"malformed":n,"attempts":n}
//   POST /secrets     {"secrets":["whsec_..."]} replaces the secrets
//   POST /down        closes the receiving listener and every open connection on it
//   POST /up          listens again on the same receiving port
//   POST /status      {"status":500} answers that on the receiving port; 0 = verify again
//   POST /reset       forgets every delivery and count (and the ids seen)

import { createServer } from "node:http";
import { parseArgs } from "node:util";
import { Webhook, WebhookVerificationError } from "standardwebhooks";

const MAX_BODY_BYTES = 16 * 1024 * 1024;

const { values: args } = parseArgs({
  options: {
    "receive-port": { type: "string", default: process.env.RECEIVE_PORT ?? "0" },
    "control-port": { type: "string", default: process.env.CONTROL_PORT ?? "0" },
    secrets: { type: "string", default: process.env.WEBHOOK_SECRETS ?? "" },
    "exit-with-stdin": { type: "boolean", default: false },
  },
});

function port(name) {
  const value = Number(args[name]);
  if (!Number.isInteger(value) || value < 0 || value > 65535) {
    console.error(`receiver.mjs: --${name} ${JSON.stringify(args[name])} is not a port`);
    process.exit(2);
  }
  return value;
}

// One Webhook per secret; the constructor rejects a secret that is not base64 or empty.
function verifiers(secrets) {
  return secrets.map((secret) => new Webhook(secret));
}

let secrets;
try {
  secrets = verifiers(args.secrets.split(/[\s,]+/).filter(Boolean));
} catch (err) {
  console.error(`receiver.mjs: a secret is invalid: ${err.message}`);
  process.exit(2);
}

let status = 0;
let verified = [];
let seen = new Set();
let duplicates = 0;
let rejected = 0;
let malformed = 0;
let attempts = 0;

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on("data", (chunk) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        reject(Object.assign(new Error("body too large"), { status: 413 }));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

function answer(res, code, body) {
  if (body === undefined) {
    res.writeHead(code).end();
    return;
  }
  const text = JSON.stringify(body);
  res.writeHead(code, { "content-type": "application/json" }).end(text);
}

// The verified, parsed payload, `null` when no secret verifies the headers, or a thrown
// error when a secret verifies them but the body is not JSON.
function verify(raw, headers) {
  for (const webhook of secrets) {
    try {
      return webhook.verify(raw, headers);
    } catch (err) {
      if (!(err instanceof WebhookVerificationError)) throw err;
    }
  }
  return null;
}

async function receive(req, res) {
  attempts += 1;
  if (req.method !== "POST") {
    answer(res, 405);
    return;
  }
  const raw = await readBody(req);
  if (status !== 0) {
    answer(res, status);
    return;
  }
  let payload;
  try {
    payload = verify(raw, req.headers);
  } catch (err) {
    payload = err;
  }
  if (payload === null) {
    rejected += 1;
    answer(res, 401);
    return;
  }
  const sentAt = Date.parse(payload?.timestamp);
  if (payload instanceof Error || typeof payload?.type !== "string" || Number.isNaN(sentAt)) {
    malformed += 1;
    const why = payload instanceof Error ? payload.message : "no string type or RFC 3339 timestamp";
    console.error(`receiver.mjs: ${req.headers["webhook-id"]} verified but malformed: ${why}`);
    answer(res, 400, { error: `malformed body: ${why}` });
    return;
  }
  const id = req.headers["webhook-id"];
  if (seen.has(id)) {
    duplicates += 1;
  } else {
    seen.add(id);
    const now = Date.now();
    verified.push({
      id,
      type: payload.type,
      path: req.url,
      received_at_ms: now,
      latency_ms: now - sentAt,
    });
  }
  answer(res, 204);
}

function handler(route) {
  return (req, res) => {
    route(req, res).catch((err) => {
      if (!res.headersSent) answer(res, err.status ?? 500, { error: err.message });
    });
  };
}

function listen(server, port) {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => {
      server.off("error", reject);
      resolve(server.address().port);
    });
  });
}

let receiving = createServer(handler(receive));
const receivePort = await listen(receiving, port("receive-port"));

async function down() {
  if (!receiving) return;
  const server = receiving;
  receiving = null;
  await new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

// The port was ours a moment ago; another process may hold it briefly (an outgoing
// connection's local port), so binding is retried for a few seconds.
async function up() {
  if (receiving) return;
  const server = createServer(handler(receive));
  for (let tries = 0; ; tries += 1) {
    try {
      await listen(server, receivePort);
      receiving = server;
      return;
    } catch (err) {
      if (err.code !== "EADDRINUSE" || tries >= 50) throw err;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

async function json(req) {
  const text = (await readBody(req)).toString("utf8");
  try {
    return JSON.parse(text);
  } catch (err) {
    throw Object.assign(new Error(`body is not JSON: ${err.message}`), { status: 400 });
  }
}

function invalid(message) {
  return Object.assign(new Error(message), { status: 400 });
}

async function control(req, res) {
  const route = `${req.method} ${req.url}`;
  switch (route) {
    case "GET /deliveries":
      answer(res, 200, { verified, duplicates, rejected, malformed, attempts });
      return;
    case "POST /secrets": {
      const body = await json(req);
      if (!Array.isArray(body?.secrets) || body.secrets.some((s) => typeof s !== "string")) {
        throw invalid('expected {"secrets": ["whsec_..."]}');
      }
      try {
        secrets = verifiers(body.secrets);
      } catch (err) {
        throw invalid(`a secret is invalid: ${err.message}`);
      }
      answer(res, 204);
      return;
    }
    case "POST /down":
      await down();
      answer(res, 204);
      return;
    case "POST /up":
      await up();
      answer(res, 204);
      return;
    case "POST /status": {
      const body = await json(req);
      const code = body?.status;
      if (!Number.isInteger(code) || (code !== 0 && (code < 100 || code > 599))) {
        throw invalid('expected {"status": 0 or an HTTP status code}');
      }
      status = code;
      answer(res, 204);
      return;
    }
    case "POST /reset":
      verified = [];
      seen = new Set();
      duplicates = rejected = malformed = attempts = 0;
      answer(res, 204);
      return;
    default:
      answer(res, 404, { error: `no route ${route}` });
  }
}

const controlPort = await listen(createServer(handler(control)), port("control-port"));
process.stdout.write(`${JSON.stringify({ receive_port: receivePort, control_port: controlPort })}\n`);

if (args["exit-with-stdin"]) {
  process.stdin.on("end", () => process.exit(0));
  process.stdin.resume();
}
