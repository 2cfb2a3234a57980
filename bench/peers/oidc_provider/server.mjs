// node-oidc-provider peer for the tokensmith benchmark.
// Env: PORT, WORKERS (1 = single process, >1 = node:cluster), TOKEN_MODE
// (es256 | rs256 | opaque), CLIENT_SECRET.
import cluster from 'node:cluster';
import { generateKeyPairSync } from 'node:crypto';
import Provider from 'oidc-provider';

const port = Number(process.env.PORT);
const workers = Number(process.env.WORKERS || '1');
const mode = process.env.TOKEN_MODE || 'es256';
const audience = 'https://api.bench.local';

function makeJwks() {
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
  return {
    keys: [
      { ...rsa.export({ format: 'jwk' }), kid: 'bench-rs256', use: 'sig', alg: 'RS256' },
      { ...ec.export({ format: 'jwk' }), kid: 'bench-es256', use: 'sig', alg: 'ES256' },
    ],
  };
}

function resourceIndicators() {
  if (mode === 'opaque') return { enabled: false };
  // ES256 is chosen explicitly; leaving `jwt.sign` unset keeps the default (RS256).
  const jwt = mode === 'es256' ? { sign: { alg: 'ES256' } } : undefined;
  return {
    enabled: true,
    defaultResource: () => audience,
    useGrantedResource: () => true,
    getResourceServerInfo: () => ({ scope: 'read write', accessTokenFormat: 'jwt', jwt }),
  };
}

function buildProvider(jwks) {
  const client = {
    client_id: 'bench-client',
    client_secret: process.env.CLIENT_SECRET,
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    token_endpoint_auth_method: 'client_secret_basic',
    scope: 'read write',
  };
  return new Provider(`http://127.0.0.1:${port}`, {
    clients: [client],
    jwks,
    scopes: ['read', 'write'],
    ttl: { ClientCredentials: 3600 },
    features: {
      clientCredentials: { enabled: true },
      introspection: { enabled: true },
      devInteractions: { enabled: false },
      resourceIndicators: resourceIndicators(),
    },
  });
}

function serve(jwks) {
  const provider = buildProvider(jwks);
  provider.listen(port, '127.0.0.1');
}

if (workers <= 1) {
  serve(makeJwks());
} else if (cluster.isPrimary) {
  const jwks = JSON.stringify(makeJwks());
  for (let i = 0; i < workers; i += 1) cluster.fork({ BENCH_JWKS: jwks });
  cluster.on('exit', (worker, code) => console.error(`worker ${worker.process.pid} exited ${code}`));
} else {
  serve(JSON.parse(process.env.BENCH_JWKS));
}
