// The OpenID provider the identity tests talk to: oauth2-mock-server (installed by
// tests/setup/tools-oidc.sh into target/tools/oidc) on a free loopback port, made to
// behave like the company's provider where the tests depend on it:
//   - client credentials are checked (HTTP Basic, as RFC 6749 prefers): an unknown client
//     or a wrong secret gets 401 `invalid_client`;
//   - a client-credentials token names its client (`sub`, `azp`), carries the client's
//     `roles` and the suite's audience unless the request asks for another `aud`;
//   - each token has its own `jti`, so a test can tell a fresh token from a cached one;
//   - tokens are signed with the current key only; the JWKS lists every key so far.
//
// Test-only knobs (this provider exists for tests): a token request may carry `claims`, a
// JSON object merged into the payload last (expired, wrong issuer, any `roles`), and
// `expires_in` (seconds) for both the token's `exp` and the response.
//
// Usage: node provider.mjs --modules <node_modules dir> --audience <aud>
//                          --clients '{"care":{"secret":"s","roles":["svc:care"]}}'
// Prints one JSON line when listening: {"issuer": "...", "kid": "..."}. Then reads
// commands on stdin, one per line, and answers each with one JSON line:
//   rotate <alg>   a new signing key (e.g. ES256); the old one stays in the JWKS
//   stop           shuts down (so does the end of stdin: the test process went away)

import { createRequire } from "node:module";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { randomUUID } from "node:crypto";
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";

const { values: args } = parseArgs({
  options: {
    modules: { type: "string" },
    audience: { type: "string", default: "aftersales" },
    clients: { type: "string", default: "{}" },
    alg: { type: "string", default: "RS256" },
  },
});
if (!args.modules) {
  console.error("provider.mjs: --modules <node_modules dir> is required");
  process.exit(2);
}

// The package lives under target/tools, not beside this script: resolve it from there.
const require = createRequire(join(resolve(args.modules), "resolve-from-here.js"));
const { OAuth2Server } = await import(pathToFileURL(require.resolve("oauth2-mock-server")).href);

const clients = JSON.parse(args.clients);
const server = new OAuth2Server();
let current = await server.issuer.keys.generate(args.alg);

// The store hands out keys round-robin; a provider signs with its newest key.
const keys = server.issuer.keys;
const pick = keys.get.bind(keys);
keys.get = (kid) => pick(kid ?? current.kid);

function basicCredentials(req) {
  const header = req.headers.authorization ?? "";
  const [scheme, encoded] = header.split(" ");
  if (scheme?.toLowerCase() !== "basic" || !encoded) return undefined;
  const decoded = Buffer.from(encoded, "base64").toString("utf8");
  const colon = decoded.indexOf(":");
  if (colon < 0) return undefined;
  // RFC 6749 §2.3.1: both parts are form-urlencoded before Basic encoding.
  const unform = (s) => decodeURIComponent(s.replace(/\+/g, " "));
  return { id: unform(decoded.slice(0, colon)), secret: unform(decoded.slice(colon + 1)) };
}

function authenticatedClient(req) {
  const credentials = basicCredentials(req);
  if (!credentials) return undefined;
  const client = clients[credentials.id];
  if (!client || client.secret !== credentials.secret) return undefined;
  return { id: credentials.id, ...client };
}

server.service.on("beforeTokenSigning", (token, req) => {
  const body = req.body ?? {};
  const client = authenticatedClient(req);
  if (client) {
    token.payload.sub = client.id;
    token.payload.azp = client.id;
    token.payload.roles = client.roles ?? [];
  }
  token.payload.aud ??= args.audience;
  token.payload.jti = randomUUID();
  if (body.expires_in) {
    token.payload.exp = token.payload.iat + Number(body.expires_in);
  }
  if (body.claims) {
    Object.assign(token.payload, JSON.parse(body.claims));
  }
});

server.service.on("beforeResponse", (response, req) => {
  if (req.body?.grant_type === "client_credentials" && !authenticatedClient(req)) {
    response.statusCode = 401;
    response.body = { error: "invalid_client" };
    return;
  }
  if (req.body?.expires_in) {
    response.body.expires_in = Number(req.body.expires_in);
  }
});

await server.start(0, "127.0.0.1");
// The library names loopback `localhost`; the literal avoids an IPv6-first resolution.
server.issuer.url = `http://127.0.0.1:${server.address().port}`;
const say = (line) => process.stdout.write(`${JSON.stringify(line)}\n`);
say({ issuer: server.issuer.url, kid: current.kid });

const stop = async () => {
  await server.stop().catch(() => {});
  process.exit(0);
};
const commands = createInterface({ input: process.stdin });
commands.on("line", async (line) => {
  const [command, alg] = line.trim().split(/\s+/);
  try {
    if (command === "rotate") {
      current = await keys.generate(alg ?? args.alg);
      say({ rotated: current.kid });
    } else if (command === "stop") {
      await stop();
    } else {
      say({ error: `unknown command ${command}` });
    }
  } catch (err) {
    say({ error: String(err) });
  }
});
commands.on("close", stop);
