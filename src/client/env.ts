// Where the client finds the daemon and its token: the same variables, in the same order and by the same
// rules as the daemon (token-source.ts).
import { UnauthorizedError } from './errors.ts';
import {
  findToken,
  TOKEN_VARIABLE,
  type TokenFound,
  TokenSourceError,
  tokenVariables,
} from './token-source.ts';

/** Environment variables, as `process.env` holds them. */
export type Env = Record<string, string | undefined>;

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

/** Warnings already given, so a client reading a token file at every call warns once. */
const warned = new Set<string>();

/**
 * The daemon's own order and rules (src/client/token-source.ts, which the daemon uses too):
 * PARAMETERS_SECRETS_EXTENSION_TOKEN, then the variables of PARAMETERS_SECRETS_EXTENSION_TOKEN_VARIABLES
 * (default AWS_TOKEN, AWS_SESSION_TOKEN, AWS_CONTAINER_AUTHORIZATION_TOKEN), each a value or a file: URL.
 * Read at each call, so a file the platform rotates, or a variable set after import, is picked up.
 */
export function resolveToken(env: Env): ResolvedToken {
  let found: TokenFound | undefined;
  try {
    found = findToken(env, tokenVariables(env), 'client');
  } catch (e) {
    if (!(e instanceof TokenSourceError)) throw e;
    throw new UnauthorizedError(`${e.message} (nothing was sent)`, {
      status: 401,
      type: 'InvalidTokenSource',
    });
  }
  if (found === undefined) throw missing('no token for pscache');
  for (const w of found.warnings) {
    if (warned.has(w)) continue;
    warned.add(w);
    process.emitWarning(w, { type: 'PscacheWarning' });
  }
  return {
    token: found.token,
    source: found.file === undefined ? found.variable : `${found.variable} (file ${found.file})`,
  };
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
