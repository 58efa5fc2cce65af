// Where the client finds the daemon and its token: the same variables, in the same order, as the daemon.
import { readFileSync } from 'node:fs';
import { UnauthorizedError } from './errors.ts';

/** Environment variables, as `process.env` holds them. */
export type Env = Record<string, string | undefined>;

export const TOKEN_VARIABLE = 'PARAMETERS_SECRETS_EXTENSION_TOKEN';
export const PORT_VARIABLE = 'PARAMETERS_SECRETS_EXTENSION_HTTP_PORT';
export const DEFAULT_PORT = 2773;

/** The token and the variable it came from (the name, for error messages; never the value). */
export interface ResolvedToken {
  token: string;
  source: string;
}

const HOW_TO_SET =
  `set ${TOKEN_VARIABLE} to the daemon's token (a value, or file:///path to read it from a file); ` +
  'inside Lambda AWS_SESSION_TOKEN is used, under SnapStart AWS_CONTAINER_AUTHORIZATION_TOKEN; ' +
  'or pass createClient({ token })';

/**
 * The daemon's own order (src/config.ts): PARAMETERS_SECRETS_EXTENSION_TOKEN (a value or file:// URL),
 * else AWS_SESSION_TOKEN, else AWS_CONTAINER_AUTHORIZATION_TOKEN. Read at each call, so a file the
 * platform rotates, or a variable set after import, is picked up.
 */
export function resolveToken(env: Env): ResolvedToken {
  const own = env[TOKEN_VARIABLE];
  if (own !== undefined && own !== '') {
    if (!own.startsWith('file://')) return { token: own, source: TOKEN_VARIABLE };
    let path: string;
    try {
      path = decodeURIComponent(new URL(own).pathname);
    } catch {
      throw missing(`${TOKEN_VARIABLE} is not a valid file URL (use file:///absolute/path)`);
    }
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (e) {
      // The path is not secret; the file's contents are.
      const code = (e as { code?: string }).code ?? 'error';
      throw missing(`the token file ${path} named by ${TOKEN_VARIABLE} could not be read (${code})`);
    }
    const token = text.replace(/\r?\n$/, '');
    if (token === '') throw missing(`the token file ${path} named by ${TOKEN_VARIABLE} is empty`);
    return { token, source: `${TOKEN_VARIABLE} (file ${path})` };
  }
  for (const name of ['AWS_SESSION_TOKEN', 'AWS_CONTAINER_AUTHORIZATION_TOKEN']) {
    const v = env[name];
    if (v !== undefined && v !== '') return { token: v, source: name };
  }
  throw missing('no token for pscache');
}

function missing(what: string): UnauthorizedError {
  return new UnauthorizedError(`${what}: ${HOW_TO_SET}`, { status: 401, type: 'MissingToken' });
}

/** The hint added to a 401 answer: which variable the token came from, and what to do. */
export function wrongTokenHint(source: string): string {
  return `the token sent came from ${source}; it must equal the token the daemon was started with (${HOW_TO_SET})`;
}

/** PARAMETERS_SECRETS_EXTENSION_HTTP_PORT as the daemon reads it: blank is unset, else 1..65535. */
export function resolvePort(env: Env): number {
  const raw = env[PORT_VARIABLE];
  if (raw === undefined || raw.trim() === '') return DEFAULT_PORT;
  const n = Number(raw.trim());
  if (!/^\d+$/.test(raw.trim()) || n < 1 || n > 65535) {
    throw new RangeError(
      `${PORT_VARIABLE}=${JSON.stringify(raw)} is invalid: must be a whole number from 1 to 65535`,
    );
  }
  return n;
}
