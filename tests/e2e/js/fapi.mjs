// Drives tokensmith with oauth4webapi (an independent client library): private_key_jwt
// client authentication (RFC 7523), DPoP (RFC 9449) and PAR (RFC 9126).
//
//   node fapi.mjs cc CONFIG            client_credentials, introspection, revocation
//   node fapi.mjs par CONFIG           push the authorization request; print where to go
//   node fapi.mjs code CONFIG URL      redeem the code in the callback URL, then refresh
//
// CONFIG is a JSON file: issuer, client_id, kid, client_jwk and dpop_jwk (private JWKs,
// ES256), redirect_uri, scope; `par` writes code_verifier and state back into it.
// Every answer is one JSON object on stdout; a failure exits 1 with its error there.
import { readFileSync, writeFileSync } from "node:fs";
import * as oauth from "oauth4webapi";

const [mode, configPath, callback] = process.argv.slice(2);
const config = JSON.parse(readFileSync(configPath, "utf8"));
const insecure = { [oauth.allowInsecureRequests]: true }; // the test server is on loopback http

async function importPair(jwk) {
  const alg = { name: "ECDSA", namedCurve: "P-256" };
  const { d, ...pub } = jwk;
  return {
    privateKey: await crypto.subtle.importKey("jwk", jwk, alg, false, ["sign"]),
    publicKey: await crypto.subtle.importKey("jwk", pub, alg, true, ["verify"]),
  };
}

// A request that the server answers with use_dpop_nonce is sent once more with its nonce.
async function withNonce(send, process) {
  try {
    return await process(await send());
  } catch (err) {
    if (!oauth.isDPoPNonceError(err)) throw err;
    return await process(await send());
  }
}

async function main() {
  const issuer = new URL(config.issuer);
  const as = await oauth.processDiscoveryResponse(
    issuer,
    await oauth.discoveryRequest(issuer, { algorithm: "oauth2", ...insecure }),
  );
  const client = { client_id: config.client_id };
  const clientKey = (await importPair(config.client_jwk)).privateKey;
  const auth = oauth.PrivateKeyJwt({ key: clientKey, kid: config.kid });
  const DPoP = oauth.DPoP(client, await importPair(config.dpop_jwk));
  const options = { DPoP, ...insecure };
  const out = { metadata: as };
  if (mode === "cc") {
    const tokens = await withNonce(
      () => oauth.clientCredentialsGrantRequest(as, client, auth, { scope: config.scope }, options),
      (r) => oauth.processClientCredentialsResponse(as, client, r),
    );
    out.tokens = tokens;
    const seen = await oauth.introspectionRequest(as, client, auth, tokens.access_token, insecure);
    out.introspection = await oauth.processIntrospectionResponse(as, client, seen);
    const revoked = await oauth.revocationRequest(as, client, auth, tokens.access_token, insecure);
    await oauth.processRevocationResponse(revoked);
    const after = await oauth.introspectionRequest(as, client, auth, tokens.access_token, insecure);
    out.after_revocation = await oauth.processIntrospectionResponse(as, client, after);
  } else if (mode === "par") {
    const verifier = oauth.generateRandomCodeVerifier();
    const state = oauth.generateRandomState();
    const params = {
      response_type: "code",
      redirect_uri: config.redirect_uri,
      scope: config.scope,
      state,
      code_challenge: await oauth.calculatePKCECodeChallenge(verifier),
      code_challenge_method: "S256",
    };
    const pushed = await withNonce(
      () => oauth.pushedAuthorizationRequest(as, client, auth, params, options),
      (r) => oauth.processPushedAuthorizationResponse(as, client, r),
    );
    const url = new URL(as.authorization_endpoint);
    url.searchParams.set("client_id", client.client_id);
    url.searchParams.set("request_uri", pushed.request_uri);
    writeFileSync(configPath, JSON.stringify({ ...config, code_verifier: verifier, state }));
    out.pushed = pushed;
    out.authorization_url = url.href;
  } else if (mode === "code") {
    const params = oauth.validateAuthResponse(as, client, new URL(callback), config.state);
    const tokens = await withNonce(
      () =>
        oauth.authorizationCodeGrantRequest(
          as, client, auth, params, config.redirect_uri, config.code_verifier, options,
        ),
      (r) => oauth.processAuthorizationCodeResponse(as, client, r),
    );
    out.tokens = tokens;
    out.refreshed = await withNonce(
      () => oauth.refreshTokenGrantRequest(as, client, auth, tokens.refresh_token, options),
      (r) => oauth.processRefreshTokenResponse(as, client, r),
    );
  } else {
    throw new Error(`unknown mode ${mode}`);
  }
  process.stdout.write(JSON.stringify(out) + "\n");
}

main().catch((err) => {
  const cause = err.cause && typeof err.cause === "object" ? err.cause : undefined;
  process.stdout.write(JSON.stringify({ error: String(err), code: err.code, cause }) + "\n");
  process.exit(1);
});
