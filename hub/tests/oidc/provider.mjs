// A real OpenID provider (the npm package oidc-provider) on 127.0.0.1, for
// hephd's authentication tests. It issues RS256 JWT access tokens for the
// resource `urn:heph` with the audience `heph`, serves discovery, the JWKS,
// the device authorization grant (RFC 8628) with refresh tokens, and client
// credentials.
//
//   node provider.mjs            # PORT=0 (any free port) unless PORT is set
//
// Environment: PORT, AUDIENCE (default heph), ACCESS_TTL (seconds, default
// 600; the client "short" always gets SHORT_TTL, default 3).
//
// It prints one JSON line on stdout once it listens:
//   {"issuer": URL, "kid": KID, "private_pem": PEM, "public_pem": PEM, "other_private_pem": PEM}
// The signing key is made at start; the tests use the private key to forge
// tokens that are wrong in one way only (issuer, audience, times).
//
// Clients:
//   heph-cli   public; device code and refresh token (what `heph auth login` uses)
//   heph-ci    secret "ci-secret"; client credentials (sub = heph-ci)
//   stranger   secret "stranger-secret"; client credentials (another identity)
//   short      secret "short-secret"; client credentials, tokens live SHORT_TTL s
//   heph-web   public; authorization code with PKCE and refresh token, for
//              the browser app; its redirect URIs come from WEB_REDIRECT_URIS
//              (comma-separated; the client exists only when it is set)
//
// With devInteractions, the user's side of a device login is plain HTML
// forms: POST /device (user code) -> confirm -> login with any name.

import { generateKeyPairSync } from 'node:crypto';
import Provider from 'oidc-provider';

const port = Number(process.env.PORT || 0);
const audience = process.env.AUDIENCE || 'heph';
const accessTtl = Number(process.env.ACCESS_TTL || 600);
const shortTtl = Number(process.env.SHORT_TTL || 3);
const kid = 'heph-test-key';

const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
// A key the provider does not publish: tokens signed with it have an unknown kid.
const other = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
const jwk = { ...privateKey.export({ format: 'jwk' }), kid, alg: 'RS256', use: 'sig' };

const clients = [
  {
    client_id: 'heph-cli',
    token_endpoint_auth_method: 'none',
    grant_types: ['urn:ietf:params:oauth:grant-type:device_code', 'refresh_token'],
    response_types: [],
    redirect_uris: [],
  },
  ...[['heph-ci', 'ci-secret'], ['stranger', 'stranger-secret'], ['short', 'short-secret']].map(([id, secret]) => ({
    client_id: id,
    client_secret: secret,
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
  })),
  ...(process.env.WEB_REDIRECT_URIS
    ? [
        {
          client_id: 'heph-web',
          application_type: 'web',
          token_endpoint_auth_method: 'none',
          grant_types: ['authorization_code', 'refresh_token'],
          response_types: ['code'],
          redirect_uris: process.env.WEB_REDIRECT_URIS.split(','),
        },
      ]
    : []),
];

// The server starts first so the issuer can carry the real port.
import { createServer } from 'node:http';

const server = createServer();
await new Promise((resolve) => server.listen(port, '127.0.0.1', resolve));
const issuer = `http://127.0.0.1:${server.address().port}`;

const provider = new Provider(issuer, {
  clients,
  jwks: { keys: [jwk] },
  scopes: ['openid', 'offline_access', 'sync'],
  features: {
    devInteractions: { enabled: true },
    deviceFlow: { enabled: true },
    clientCredentials: { enabled: true },
    revocation: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => 'urn:heph',
      useGrantedResource: () => true,
      getResourceServerInfo: (_ctx, _resource, client) => ({
        scope: 'sync',
        audience,
        accessTokenTTL: client.clientId === 'short' ? shortTtl : accessTtl,
        accessTokenFormat: 'jwt',
        jwt: { sign: { alg: 'RS256' } },
      }),
    },
  },
  // Every login is granted what heph asks for: no consent page.
  loadExistingGrant: async (ctx) => {
    const grantId = ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) return ctx.oidc.provider.Grant.find(grantId);
    const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
    grant.addOIDCScope('openid offline_access');
    grant.addResourceScope('urn:heph', 'sync');
    await grant.save();
    return grant;
  },
  issueRefreshToken: async (_ctx, client, code) =>
    client.grantTypeAllowed('refresh_token') && code.scopes.has('offline_access'),
  ttl: { DeviceCode: 600, RefreshToken: 86400, Grant: 86400, Session: 86400, Interaction: 600 },
});
// Plain http on loopback, for tests only.
provider.proxy = false;
server.on('request', provider.callback());

process.stdout.write(
  `${JSON.stringify({
    issuer,
    kid,
    private_pem: privateKey.export({ type: 'pkcs8', format: 'pem' }),
    public_pem: publicKey.export({ type: 'spki', format: 'pem' }),
    other_private_pem: other.export({ type: 'pkcs8', format: 'pem' }),
  })}\n`,
);

// The test reads only that line and may close the pipe: anything else goes
// to stderr, and a closed stdout is not an error.
process.stdout.on('error', () => {});
console.log = console.info = (...args) => process.stderr.write(`${args.join(' ')}\n`);

// Ends with its parent (the test closes stdin).
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
