// A TypeScript Lambda handler that reads its configuration through pscache/client.
// Locally, against `npm start`: npx tsx examples/invoke.mjs examples/lambda-typescript/handler.ts
import { getParameter, getParameters, getSecret, NotFoundError } from 'pscache/client';

interface ApiCredentials {
  username: string;
  password: string;
}

/** An optional setting: a missing parameter means "use the default", any other failure is real. */
async function optional(name: string, fallback: string): Promise<string> {
  try {
    return await getParameter(name);
  } catch (e) {
    if (e instanceof NotFoundError) return fallback;
    throw e;
  }
}

// Read on every invocation, not once at module load: each read is a local cache hit (well under a
// millisecond), and a rotated secret or changed parameter is picked up when the daemon's TTL runs out.
export const handler = async (_event: unknown) => {
  const [settings, credentials, dbPassword, flags, region] = await Promise.all([
    getParameters(['/myapp/api-endpoint', '/myapp/db/host', '/myapp/db/port']),
    getSecret<ApiCredentials>('prod/api/credentials', { transform: 'json' }),
    getParameter('/myapp/db/password', { decrypt: true }),
    getParameter('/myapp/feature-flags'),
    optional('/myapp/region', 'us-east-1'),
  ]);
  // Use the values; never log or return secrets. What goes back here is safe to show.
  return {
    statusCode: 200,
    body: JSON.stringify({
      apiEndpoint: settings['/myapp/api-endpoint'],
      database: `${settings['/myapp/db/host']}:${settings['/myapp/db/port']}`,
      apiUser: credentials.username,
      dbPasswordLength: dbPassword.length,
      featureFlags: flags.split(','),
      region,
    }),
  };
};
