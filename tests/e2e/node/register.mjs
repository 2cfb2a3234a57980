// Dynamic client registration (RFC 7591) with oauth4webapi against a tokensmith issuer:
// discover, register with an initial access token, get a client_credentials token with the
// registered credentials. Usage: node register.mjs ISSUER INITIAL_ACCESS_TOKEN
import * as oauth from 'oauth4webapi'

const [issuerUrl, initialAccessToken] = process.argv.slice(2)
const issuer = new URL(issuerUrl)
const insecure = { [oauth.allowInsecureRequests]: true } // loopback http in the test only

const as = await oauth.processDiscoveryResponse(
  issuer,
  await oauth.discoveryRequest(issuer, { ...insecure, algorithm: 'oauth2' }),
)
const registered = await oauth.processDynamicClientRegistrationResponse(
  await oauth.dynamicClientRegistrationRequest(
    as,
    {
      client_name: 'oauth4webapi client',
      grant_types: ['client_credentials'],
      response_types: [],
      token_endpoint_auth_method: 'client_secret_basic',
      scope: 'read',
    },
    { ...insecure, initialAccessToken },
  ),
)
const client = { client_id: registered.client_id }
const response = await oauth.clientCredentialsGrantRequest(
  as,
  client,
  oauth.ClientSecretBasic(registered.client_secret),
  new URLSearchParams({ scope: 'read' }),
  insecure,
)
const tokens = await oauth.processClientCredentialsResponse(as, client, response)
console.log(
  JSON.stringify({
    client_id: registered.client_id,
    registration_client_uri: registered.registration_client_uri,
    registration_access_token: registered.registration_access_token,
    token_type: tokens.token_type,
    scope: tokens.scope,
  }),
)
