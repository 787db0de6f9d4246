// OpenID provider harness for the Rust integration tests (a real `oidc-provider` v9 OP).
//
// This file owns: the test OP's configuration (issuer on 127.0.0.1, signing keys, the
// static clients and test users with their `tenant` / `roles` / `groups` claims), the
// JWT access tokens for the `client_credentials` grant (audience = --audience), the
// headless `GET /interaction/:uid` handler that logs in `login_hint` and grants consent
// without a person, the one-line JSON "ready" handshake on stdout, and the process
// lifetime (exits on stdin EOF, SIGTERM or SIGINT). It owns nothing in the appliance.
//
// Usage:
//   node provider.mjs [--port N] [--keys FILE] [--audience AUD] [--redirect-uri URI]...
//                     [--token-ttl SECONDS] [--default-user USER] [--ignore-stdin] [--verbose]
//   node provider.mjs --gen-keys > keys.json      # fresh private JWKS (RS256 + ES256)
//
// stdout carries exactly one line, once listening:
//   {"issuer":"http://127.0.0.1:PORT","jwks_uri":"...","token_endpoint":"...","port":PORT}
// Everything else (oidc-provider notices included) goes to stderr.

import * as crypto from 'node:crypto';
import * as http from 'node:http';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

const USAGE = `usage: node provider.mjs [--port N] [--keys FILE] [--audience AUD]
                        [--redirect-uri URI]... [--token-ttl SECONDS]
                        [--default-user USER] [--ignore-stdin] [--verbose]
       node provider.mjs --gen-keys > keys.json`;

let args;
try {
  ({ values: args } = parseArgs({
    options: {
      port: { type: 'string', default: '0' },
      keys: { type: 'string' },
      audience: { type: 'string', default: 'maestro' },
      'redirect-uri': { type: 'string', multiple: true },
      'token-ttl': { type: 'string', default: '600' },
      'default-user': { type: 'string', default: 'alice@acme' },
      'ignore-stdin': { type: 'boolean', default: false },
      'gen-keys': { type: 'boolean', default: false },
      verbose: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
    strict: true,
    allowPositionals: false,
  }));
} catch (e) {
  console.error(`${e.message}\n${USAGE}`);
  process.exit(2);
}
if (args.help) {
  console.error(USAGE);
  process.exit(0);
}

// ---------------------------------------------------------------------------------------
// Keys
// ---------------------------------------------------------------------------------------

// RFC 7638 JWK thumbprint, used as the kid of generated keys.
function thumbprint(jwk) {
  const members = jwk.kty === 'RSA'
    ? { e: jwk.e, kty: jwk.kty, n: jwk.n }
    : { crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y };
  return crypto.createHash('sha256').update(JSON.stringify(members)).digest('base64url');
}

function generateJwks() {
  const rsa = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' });
  const ec = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' });
  return {
    keys: [
      { kid: thumbprint(rsa), use: 'sig', alg: 'RS256', ...rsa },
      { kid: thumbprint(ec), use: 'sig', alg: 'ES256', ...ec },
    ],
  };
}

if (args['gen-keys']) {
  process.stdout.write(`${JSON.stringify(generateJwks(), null, 2)}\n`);
  process.exit(0);
}

let jwks;
if (args.keys) {
  try {
    jwks = JSON.parse(readFileSync(args.keys, 'utf8'));
  } catch (e) {
    console.error(`cannot read --keys ${args.keys}: ${e.message}`);
    process.exit(2);
  }
  if (!Array.isArray(jwks?.keys) || jwks.keys.length === 0) {
    console.error(`--keys ${args.keys}: expected a private JWKS {"keys":[...]}`);
    process.exit(2);
  }
} else {
  jwks = generateJwks();
}

if (!jwks.keys.some((k) => k.kty === 'RSA')) {
  console.error(`warning: --keys ${args.keys} has no RSA key; ID tokens and RS256 access tokens will fail`);
}

// oidc-provider prints its NOTICEs with console.info (stdout); stdout is reserved for the
// ready line, so route every console method to stderr before the library is loaded.
for (const m of ['log', 'info', 'debug']) {
  // eslint-disable-next-line no-console
  console[m] = console.error;
}
// Two start-up warnings are expected here (Node 20 is not the library's preferred LTS; the
// in-memory adapter is intended); keep them out of test output unless --verbose.
const EXPECTED_WARNINGS = /Unsupported runtime|in-memory adapter/;
const { warn } = console;
console.warn = (...a) => {
  if (args.verbose || !EXPECTED_WARNINGS.test(String(a[0]))) warn(...a);
};
const { default: Provider, interactionPolicy } = await import('oidc-provider');

const port = Number(args.port);
const tokenTtl = Number(args['token-ttl']);
if (!Number.isInteger(port) || port < 0 || port > 65535
    || !Number.isInteger(tokenTtl) || tokenTtl <= 0) {
  console.error(`--port must be 0..65535 and --token-ttl a positive integer\n${USAGE}`);
  process.exit(2);
}

// ---------------------------------------------------------------------------------------
// Audience / resource indicator
// ---------------------------------------------------------------------------------------

const AUDIENCE = args.audience;
// RFC 8707 resource indicators must be absolute URIs, so a bare audience such as
// "maestro" is requested as "urn:maestro"; an audience that already is an absolute URI
// is its own resource indicator.
const RESOURCE = URL.parse(AUDIENCE) ? AUDIENCE : `urn:${AUDIENCE}`;

// ---------------------------------------------------------------------------------------
// Clients and users
// ---------------------------------------------------------------------------------------

// Machine clients (client_credentials). secret = `${client_id}-secret`. alg = JWT AT alg.
const MACHINE_CLIENTS = {
  'acme-operator': { tenant: 'acme', roles: ['operator'] },
  'acme-operator-es256': { tenant: 'acme', roles: ['operator'], alg: 'ES256' },
  'acme-viewer': { tenant: 'acme', roles: ['viewer'] },
  'globex-operator': { tenant: 'globex', roles: ['operator'] },
  auditor: { tenant: 'acme', roles: ['auditor'] },
  'root-admin': { roles: ['admin'] }, // no tenant claim at all
};

// Interactive users (login_hint). Any other `name@tenant` logs in with that tenant and no
// roles; a hint without "@" logs in with no tenant claim and no roles.
const USERS = {
  'alice@acme': { roles: ['operator'] },
  'carol@acme': { roles: ['viewer'] },
  'audra@acme': { roles: ['auditor'] },
  'bob@globex': { roles: ['viewer'] },
  'gus@globex': { roles: ['operator'] },
  root: { roles: ['admin'] },
};

function userClaims(accountId) {
  const at = accountId.lastIndexOf('@');
  const tenant = at > 0 ? accountId.slice(at + 1) : undefined;
  const local = at > 0 ? accountId.slice(0, at) : accountId;
  const roles = [...(USERS[accountId]?.roles ?? [])];
  return {
    sub: accountId,
    name: local.charAt(0).toUpperCase() + local.slice(1),
    preferred_username: accountId,
    ...(tenant ? { tenant } : {}),
    roles,
    groups: [...roles],
  };
}

const redirectUris = args['redirect-uri']?.length
  ? args['redirect-uri']
  : ['http://127.0.0.1:8080/auth/callback'];
const isLoopbackHttp = (u) => {
  const p = URL.parse(u);
  return p?.protocol === 'http:' && ['127.0.0.1', '[::1]', 'localhost'].includes(p.hostname);
};
// "native" lets loopback redirect URIs match on any port (RFC 8252 7.3), so a console
// started on a random port still matches http://127.0.0.1:8080/auth/callback's path.
const consoleAppType = redirectUris.every(isLoopbackHttp) ? 'native' : 'web';
const postLogoutRedirectUris = [...new Set(redirectUris.map((u) => `${new URL(u).origin}/`))];

const consoleBase = {
  application_type: consoleAppType,
  grant_types: ['authorization_code', 'refresh_token'],
  response_types: ['code'],
  redirect_uris: redirectUris,
  post_logout_redirect_uris: postLogoutRedirectUris,
  id_token_signed_response_alg: 'RS256',
};

const clients = [
  ...Object.keys(MACHINE_CLIENTS).map((id) => ({
    client_id: id,
    client_secret: `${id}-secret`,
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    token_endpoint_auth_method: 'client_secret_basic',
  })),
  { ...consoleBase, client_id: 'maestro-console', token_endpoint_auth_method: 'none' },
  {
    ...consoleBase,
    client_id: 'maestro-console-confidential',
    client_secret: 'maestro-console-confidential-secret',
    token_endpoint_auth_method: 'client_secret_basic',
  },
];

// ---------------------------------------------------------------------------------------
// Provider
// ---------------------------------------------------------------------------------------

function log(...a) {
  if (args.verbose) console.error('[oidc]', ...a);
}

const server = http.createServer();
// A fixed port may still be held for a moment by a previous instance that is exiting
// (key-rotation restarts), so retry EADDRINUSE for up to 10 s.
for (const deadline = Date.now() + 10_000; ;) {
  try {
    await new Promise((resolve, reject) => {
      const onError = (e) => { server.off('listening', onListening); reject(e); };
      const onListening = () => { server.off('error', onError); resolve(); };
      server.once('error', onError);
      server.once('listening', onListening);
      server.listen(port, '127.0.0.1');
    });
    break;
  } catch (e) {
    if (e.code !== 'EADDRINUSE' || port === 0 || Date.now() > deadline) {
      console.error(`cannot listen on 127.0.0.1:${port}: ${e.message}`);
      process.exit(1);
    }
    await new Promise((r) => { setTimeout(r, 100); });
  }
}
const actualPort = server.address().port;
const issuer = `http://127.0.0.1:${actualPort}`;

// Login is requested again when login_hint names someone other than the SSO session's
// user, so a reused cookie jar never silently yields the previous user's tokens.
const policy = interactionPolicy.base();
policy.get('login').checks.push(new interactionPolicy.Check(
  'login_hint_mismatch',
  'login_hint names another End-User than the current session',
  ({ oidc }) => {
    const hint = oidc.params.login_hint;
    return Boolean(hint && oidc.session.accountId && oidc.session.accountId !== hint);
  },
));

const configuration = {
  jwks,
  interactions: {
    policy,
    url: (_ctx, interaction) => `/interaction/${interaction.uid}`,
  },
  clients,
  cookies: { keys: ['maestro-oidc-harness-cookie-key'] },
  claims: {
    openid: ['sub', 'tenant', 'roles', 'groups'],
    profile: ['name', 'preferred_username', 'tenant', 'roles', 'groups'],
  },
  // Put scope-requested claims into the ID token too (not only at userinfo).
  conformIdTokenClaims: false,
  pkce: { required: () => true },
  clientBasedCORS: () => true,
  findAccount: async (_ctx, sub) => ({
    accountId: sub,
    claims: async () => userClaims(sub),
  }),
  extraTokenClaims: async (_ctx, token) => {
    if (token.kind === 'ClientCredentials') {
      const c = MACHINE_CLIENTS[token.clientId];
      if (!c) return undefined;
      return { ...(c.tenant ? { tenant: c.tenant } : {}), roles: [...c.roles] };
    }
    if (token.accountId) {
      const { tenant, roles } = userClaims(token.accountId);
      return { ...(tenant ? { tenant } : {}), roles };
    }
    return undefined;
  },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    revocation: { enabled: true },
    resourceIndicators: {
      enabled: true,
      // client_credentials without `resource` gets the Maestro audience; auth-code
      // flows keep the library default (no resource => opaque userinfo token).
      defaultResource: async (ctx, _client, oneOf) => {
        if (oneOf) return oneOf;
        if (ctx.oidc?.route === 'token' && ctx.oidc.params?.grant_type === 'client_credentials') {
          return RESOURCE;
        }
        return undefined;
      },
      useGrantedResource: async () => false,
      // RESOURCE => aud = --audience. Any other absolute URI is accepted too and becomes
      // the token's aud verbatim (handy for wrong-audience tests).
      getResourceServerInfo: async (_ctx, resourceIndicator, client) => ({
        scope: '',
        audience: resourceIndicator === RESOURCE ? AUDIENCE : resourceIndicator,
        accessTokenFormat: 'jwt',
        accessTokenTTL: tokenTtl,
        jwt: { sign: { alg: MACHINE_CLIENTS[client?.clientId]?.alg ?? 'RS256' } },
      }),
    },
  },
  ttl: {
    AccessToken: tokenTtl,
    ClientCredentials: tokenTtl,
    AuthorizationCode: 60,
    IdToken: 3600,
    Interaction: 600,
    Session: 3600,
    Grant: 3600,
    RefreshToken: 86400,
  },
};

let provider;
try {
  provider = new Provider(issuer, configuration);
} catch (e) {
  console.error(`provider configuration failed: ${e.message}`);
  process.exit(1);
}

for (const ev of ['server_error', 'grant.error', 'authorization.error', 'end_session.error']) {
  provider.on(ev, (_ctx, err) => {
    // grant/authorization errors are ordinary OAuth errors for negative tests; log them
    // only when verbose, but always log genuine server errors.
    if (ev === 'server_error' || args.verbose) console.error(`[oidc] ${ev}: ${err?.stack ?? err}`);
  });
}

const OIDC_SCOPES = new Set(['openid', 'offline_access', 'profile']);

// Headless interaction: log in login_hint (or --default-user) and grant consent.
provider.use(async (ctx, next) => {
  if (ctx.method !== 'GET' || !/^\/interaction\/[^/]+\/?$/.test(ctx.path)) return next();
  ctx.set('cache-control', 'no-store');

  const details = await provider.interactionDetails(ctx.req, ctx.res);
  const { prompt, params } = details;
  const result = {};
  let accountId = details.session?.accountId;

  if (prompt.name === 'login') {
    accountId = params.login_hint || args['default-user'];
    result.login = { accountId };
    if (details.session?.accountId && details.session.accountId !== accountId) {
      // Switching user: end the old SSO session here instead of letting the library
      // answer with its logout-confirmation form (which needs a browser to submit).
      const old = await provider.Session.findByUid(details.session.uid);
      if (old) await old.destroy();
      delete details.session;
      await details.persist();
    }
  }

  if (prompt.name === 'login' || prompt.name === 'consent') {
    const grant = prompt.name === 'consent' && details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId, clientId: params.client_id });
    const requested = String(params.scope ?? '').split(' ').filter(Boolean);
    if (prompt.name === 'consent') {
      const d = prompt.details;
      if (d.missingOIDCScope) grant.addOIDCScope(d.missingOIDCScope.join(' '));
      if (d.missingOIDCClaims) grant.addOIDCClaims(d.missingOIDCClaims);
      for (const [indicator, scopes] of Object.entries(d.missingResourceScopes ?? {})) {
        grant.addResourceScope(indicator, scopes.join(' '));
      }
    }
    // Grant everything requested up front so login + consent take one round trip.
    grant.addOIDCScope(requested.filter((s) => OIDC_SCOPES.has(s)).join(' '));
    const resources = [params.resource ?? []].flat().filter(Boolean);
    for (const r of resources) {
      grant.addResourceScope(r, requested.filter((s) => !OIDC_SCOPES.has(s)).join(' '));
    }
    result.consent = { grantId: await grant.save() };
  } else {
    result.error = 'access_denied';
    result.error_description = `harness cannot satisfy prompt ${prompt.name}`;
  }

  log(`interaction ${details.uid} prompt=${prompt.name} account=${accountId}`);
  const returnTo = await provider.interactionResult(ctx.req, ctx.res, result, {
    mergeWithLastSubmission: false,
  });
  ctx.status = 303;
  ctx.redirect(returnTo);
  return undefined;
});

if (args.verbose) {
  provider.use(async (ctx, next) => {
    await next();
    log(`${ctx.method} ${ctx.url} -> ${ctx.status}`);
  });
}

server.on('request', provider.callback());

// ---------------------------------------------------------------------------------------
// Ready line and lifetime
// ---------------------------------------------------------------------------------------

function shutdown(why) {
  log(`exiting: ${why}`);
  process.exit(0);
}
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
if (!args['ignore-stdin']) {
  // The test keeps our stdin pipe open; when it drops the child (or dies) we see EOF.
  process.stdin.on('end', () => shutdown('stdin closed'));
  process.stdin.on('close', () => shutdown('stdin closed'));
  process.stdin.on('error', () => shutdown('stdin error'));
  process.stdin.on('data', () => {});
  process.stdin.resume();
}

process.stdout.write(`${JSON.stringify({
  issuer,
  jwks_uri: `${issuer}/jwks`,
  token_endpoint: `${issuer}/token`,
  port: actualPort,
})}\n`);
