// A real OpenID Provider on loopback for tests/system/test_oidc_login.py:
// panva's certified `oidc-provider` (pinned in package.json) with one
// confidential client and its development login pages (any login name and
// password; the login name is the account ID).
//
//   OIDC_PORT=… OIDC_ISSUER=http://127.0.0.1:… OIDC_CLIENT_ID=… \
//   OIDC_CLIENT_SECRET=… OIDC_REDIRECT_URIS=uri1,uri2 node oidc_provider.mjs
//
// Prints "ready <issuer>" once it listens.
import Provider from 'oidc-provider';

const env = (name) => {
  const v = process.env[name];
  if (!v) {
    console.error(`${name} is required`);
    process.exit(2);
  }
  return v;
};

const port = Number(env('OIDC_PORT'));
const issuer = env('OIDC_ISSUER');

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: env('OIDC_CLIENT_ID'),
      client_secret: env('OIDC_CLIENT_SECRET'),
      redirect_uris: env('OIDC_REDIRECT_URIS').split(','),
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    },
  ],
  // Every login name is an account; its claims are derived from it.
  async findAccount(ctx, id) {
    return {
      accountId: id,
      async claims() {
        return { sub: id, email: `${id}@example.test`, email_verified: true, groups: ['engineers', `team-${id}`] };
      },
    };
  },
  claims: { openid: ['sub'], email: ['email', 'email_verified'], groups: ['groups'] },
  scopes: ['openid', 'email', 'groups', 'coffer.read'],
  // The scopes' claims in the ID token itself (Coffer reads no userinfo).
  conformIdTokenClaims: false,
  pkce: { required: () => true },
  features: { devInteractions: { enabled: true } },
  ttl: { IdToken: 600, AccessToken: 600, AuthorizationCode: 60, Interaction: 600, Session: 600, Grant: 600 },
  cookies: { keys: ['coffer-test-cookie-key'] },
});
provider.proxy = false;

const server = provider.listen(port, '127.0.0.1', () => {
  console.log(`ready ${issuer}`);
});
const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
