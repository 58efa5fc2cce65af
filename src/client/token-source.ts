// Token sources, one set of rules for the daemon (src/config.ts) and the client (env.ts): which variable
// holds the token, file: URLs and how token files are opened and read, and what a token must look like.
import { closeSync, constants, fstatSync, lstatSync, openSync, readSync, type Stats } from 'node:fs';

export const TOKEN_VARIABLE = 'PARAMETERS_SECRETS_EXTENSION_TOKEN';
/** The daemon's PARAMETERS_SECRETS_EXTENSION_TOKEN_VARIABLES (ssrf_env_variables), comma-separated. */
export const TOKEN_VARIABLES_VARIABLE = 'PARAMETERS_SECRETS_EXTENSION_TOKEN_VARIABLES';
/** Read in this order after PARAMETERS_SECRETS_EXTENSION_TOKEN, unless configured otherwise. */
export const DEFAULT_TOKEN_VARIABLES: readonly string[] = [
  'AWS_TOKEN',
  'AWS_SESSION_TOKEN',
  'AWS_CONTAINER_AUTHORIZATION_TOKEN',
];
/** Shorter tokens are refused: guessable, or a variable that was never meant to hold one. */
export const MIN_TOKEN_LENGTH = 16;
/** Longer tokens could never be sent: the daemon takes at most 16 KB of request headers. */
export const MAX_TOKEN_LENGTH = 16 * 1024;
/** A token file holds one token; anything larger is not one (and /dev/zero never ends). */
export const MAX_TOKEN_FILE_BYTES = 4096;
/** Reading a token file gives up after this long. */
export const TOKEN_FILE_DEADLINE_MS = 5000;

const VARIABLE_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;

/**
 * Variables that hold configuration anyone reading the task definition, the function's settings or the
 * process list may see, never a secret: a token read from one is known (or guessed) by all of them. A token
 * variables list naming one is refused, whether or not it would be reached (the one before it may be unset
 * only today). Compared in upper case (http_proxy is HTTP_PROXY). PARAMETERS_SECRETS_EXTENSION_TOKEN itself
 * is the token's own variable and stays allowed. examples/shell/pscache-get.sh holds the same list.
 */
export const NON_SECRET_VARIABLES: readonly string[] = [
  // pscache's own settings, the list itself first.
  TOKEN_VARIABLES_VARIABLE,
  // AWS configuration: Regions, profiles, key ids (not secret: they show in logs and CloudTrail), endpoints,
  // files and roles.
  'AWS_REGION',
  'AWS_DEFAULT_REGION',
  'AWS_ACCESS_KEY_ID',
  'AWS_PROFILE',
  'AWS_DEFAULT_PROFILE',
  'AWS_EXECUTION_ENV',
  'AWS_ROLE_ARN',
  'AWS_ROLE_SESSION_NAME',
  'AWS_WEB_IDENTITY_TOKEN_FILE',
  'AWS_CONTAINER_CREDENTIALS_FULL_URI',
  'AWS_CONTAINER_CREDENTIALS_RELATIVE_URI',
  'AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE',
  'AWS_CA_BUNDLE',
  'AWS_CONFIG_FILE',
  'AWS_SHARED_CREDENTIALS_FILE',
  'AWS_ENDPOINT_URL',
  'AWS_USE_FIPS_ENDPOINT',
  'AWS_USE_DUALSTACK_ENDPOINT',
  'AWS_STS_REGIONAL_ENDPOINTS',
  'AWS_NODEJS_CONNECTION_REUSE_ENABLED',
  // Lambda's and ECS's own.
  '_HANDLER',
  '_X_AMZN_TRACE_ID',
  'LAMBDA_TASK_ROOT',
  'LAMBDA_RUNTIME_DIR',
  'ECS_CONTAINER_METADATA_URI',
  'ECS_CONTAINER_METADATA_URI_V4',
  // The process's surroundings.
  'HOME',
  'PATH',
  'PWD',
  'OLDPWD',
  'USER',
  'LOGNAME',
  'SHELL',
  'HOSTNAME',
  'TERM',
  'LANG',
  'LANGUAGE',
  'TZ',
  'TMPDIR',
  'NODE_OPTIONS',
  'NODE_ENV',
  'NODE_PATH',
  'HTTP_PROXY',
  'HTTPS_PROXY',
  'NO_PROXY',
];
/** Families of configuration variables, refused as NON_SECRET_VARIABLES are. */
export const NON_SECRET_PREFIXES: readonly string[] = [
  'PARAMETERS_SECRETS_EXTENSION_',
  'AWS_LAMBDA_',
  'AWS_ENDPOINT_URL_',
  'AWS_XRAY_',
  'KUBERNETES_',
  'LC_',
];

/** Why `name` may not hold the token (it holds public configuration), or undefined when it may. */
export function nonSecretVariable(name: string): string | undefined {
  const upper = name.toUpperCase();
  if (upper === TOKEN_VARIABLE) return undefined;
  if (!NON_SECRET_VARIABLES.includes(upper) && !NON_SECRET_PREFIXES.some((p) => upper.startsWith(p))) {
    return undefined;
  }
  return `${name} holds configuration, not a secret: a token read from it would be known to anyone who can read the configuration; name only variables that hold a secret`;
}

/**
 * A token source that cannot be used: `VARIABLE=value is invalid: why`, the value shown only when it is a
 * file URL (a token is never shown).
 */
export class TokenSourceError extends Error {
  constructor(
    readonly variable: string,
    message: string,
  ) {
    super(message);
    this.name = 'TokenSourceError';
  }
}

/** Why a token file, or a token, cannot be used: completes "... is invalid: ". Never holds the token. */
export class TokenProblem extends Error {
  override name = 'TokenProblem';
}

export interface TokenFound {
  token: string;
  /** The variable it came from. */
  variable: string;
  /** The file it was read from, when the variable held a file: URL. */
  file?: string;
  /** Worth a warning (a file others can write, or another user's); never the token. */
  warnings: string[];
}

/** Unset, empty and all-blank values count as unset (`VAR=` in a shell or a console). */
const isSet = (v: string | undefined): v is string => v !== undefined && v.trim() !== '';

/**
 * Who reads the token: the daemon, whose token file should be its own user's or root's (whoever owns it
 * chooses the token), or a client, whose token file is normally the daemon's (pscache token --write as
 * pscache's user): a client is warned only about a file others may write.
 */
export type TokenReader = 'daemon' | 'client';

/**
 * The token: the first set variable of PARAMETERS_SECRETS_EXTENSION_TOKEN then `variables`, each a value
 * or a file: URL. Undefined when none is set; throws TokenSourceError for one that is set but unusable
 * (never falls through to the next: the operator meant that one).
 */
export function findToken(
  env: Record<string, string | undefined>,
  variables: readonly string[],
  reader: TokenReader,
): TokenFound | undefined {
  for (const variable of [TOKEN_VARIABLE, ...variables]) {
    const value = env[variable];
    if (!isSet(value)) continue;
    const file = isFileUrl(value);
    try {
      if (!file) {
        checkToken(value, undefined);
        return { token: value, variable, warnings: [] };
      }
      const path = tokenFilePath(value);
      const { token, warnings } = readTokenFile(path, reader);
      checkToken(token, path);
      return { token, variable, file: path, warnings };
    } catch (e) {
      if (!(e instanceof TokenProblem)) throw e;
      const shown = file
        ? JSON.stringify(value.length > 300 ? `${value.slice(0, 300)}...` : value)
        : '(hidden)';
      throw new TokenSourceError(variable, `${variable}=${shown} is invalid: ${e.message}`);
    }
  }
  return undefined;
}

/** PARAMETERS_SECRETS_EXTENSION_TOKEN_VARIABLES as a list of names, else the default list. */
export function tokenVariables(env: Record<string, string | undefined>): string[] {
  const raw = env[TOKEN_VARIABLES_VARIABLE];
  if (!isSet(raw)) return [...DEFAULT_TOKEN_VARIABLES];
  const names = raw
    .split(',')
    .map((n) => n.trim())
    .filter((n) => n !== '');
  const bad = names.find((n) => !VARIABLE_NAME.test(n));
  if (names.length === 0 || bad !== undefined) {
    throw new TokenSourceError(
      TOKEN_VARIABLES_VARIABLE,
      `${TOKEN_VARIABLES_VARIABLE}=${JSON.stringify(raw)} is invalid: must be a non-empty comma-separated list of variable names`,
    );
  }
  for (const n of names) {
    const why = nonSecretVariable(n);
    if (why !== undefined) {
      throw new TokenSourceError(
        TOKEN_VARIABLES_VARIABLE,
        `${TOKEN_VARIABLES_VARIABLE}=${JSON.stringify(raw)} is invalid: ${why}`,
      );
    }
  }
  return names;
}

/** Any value starting with `file:`, in any case, is a file URL: never a literal token. */
export const isFileUrl = (value: string): boolean => /^file:/i.test(value);

const FILE_URL_FORM =
  'a file URL names an absolute path on this host: file:///path, file:/path or file://localhost/path';

/**
 * The path a file: URL names. Only what cannot be misread is taken: no host but `localhost`, no query or
 * fragment (a URL parser would drop them silently: `file://etc/passwd` is `/passwd` to it), an absolute
 * path, percent-escapes decoded once and strictly.
 */
export function tokenFilePath(value: string): string {
  const fail = (why: string) => new TokenProblem(why);
  let rest = value.slice('file:'.length);
  if (/[?#]/.test(rest)) throw fail(`a token file URL takes no query or fragment (? or #); ${FILE_URL_FORM}`);
  if (rest.startsWith('//')) {
    const slash = rest.indexOf('/', 2);
    const host = rest.slice(2, slash === -1 ? undefined : slash);
    if (host !== '' && host.toLowerCase() !== 'localhost') {
      throw fail(`the host ${JSON.stringify(host)} is not this one; ${FILE_URL_FORM}`);
    }
    rest = slash === -1 ? '' : rest.slice(slash);
  }
  if (!rest.startsWith('/')) throw fail(`no absolute path; ${FILE_URL_FORM}`);
  let path: string;
  try {
    path = decodeURIComponent(rest);
  } catch {
    throw fail('the path has a malformed percent-escape');
  }
  if (path.includes('\u0000')) throw fail('the path holds a NUL character');
  return path;
}

const errCode = (e: unknown): string => (e as NodeJS.ErrnoException).code ?? 'error';

function kindOf(st: Stats): string {
  if (st.isFIFO()) return 'a FIFO';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isDirectory()) return 'a directory';
  if (st.isSocket()) return 'a socket';
  return 'not a regular file';
}

/** How readTokenFile opens and reads a file: token files by default. */
export interface TokenFileRules {
  /**
   * Follow a symbolic link at the file's own name. Never for token files; only for files a platform names
   * and lays out itself (AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE: EKS mounts it as a link into ..data).
   */
  followLinks?: boolean;
  /** Largest file read; default MAX_TOKEN_FILE_BYTES. */
  maxBytes?: number;
  /** What the file is, for messages; default `the token file`. */
  what?: string;
}

/**
 * Reads a token file: opened with O_NOFOLLOW (a symbolic link is refused, not followed) and O_NONBLOCK (a
 * FIFO cannot hold the open), then only a regular file of at most MAX_TOKEN_FILE_BYTES is read, within
 * TOKEN_FILE_DEADLINE_MS. One trailing newline is dropped. Warns about a file others may write, or (for
 * the daemon) that its group may write or that belongs to another user than this one or root: whoever can
 * write it chooses the token.
 */
export function readTokenFile(
  path: string,
  reader: TokenReader = 'daemon',
  rules: TokenFileRules = {},
): { token: string; warnings: string[]; stats: Stats } {
  const named = `${rules.what ?? 'the token file'} ${path}`;
  const maxBytes = rules.maxBytes ?? MAX_TOKEN_FILE_BYTES;
  let fd: number;
  try {
    fd = openSync(
      path,
      constants.O_RDONLY |
        (rules.followLinks ? 0 : constants.O_NOFOLLOW) |
        constants.O_NONBLOCK |
        (constants.O_NOCTTY ?? 0),
    );
  } catch (e) {
    if (errCode(e) === 'ELOOP') {
      throw new TokenProblem(
        `${named} is a symbolic link: token files are opened without following links, so name the file itself`,
      );
    }
    throw new TokenProblem(`${named} could not be opened (${errCode(e)})`);
  }
  const warnings: string[] = [];
  let text: string;
  let st: Stats;
  try {
    st = fstatSync(fd);
    if (!st.isFile()) throw new TokenProblem(`${named} is ${kindOf(st)}: it must be a regular file`);
    const tooLarge = () =>
      new TokenProblem(`${named} is larger than ${maxBytes} bytes: it must hold one token`);
    if (st.size > maxBytes) throw tooLarge();
    const buf = Buffer.alloc(maxBytes + 1);
    const deadline = Date.now() + TOKEN_FILE_DEADLINE_MS;
    let n = 0;
    while (n < buf.length) {
      let got: number;
      try {
        got = readSync(fd, buf, n, buf.length - n, n);
      } catch (e) {
        throw new TokenProblem(`${named} could not be read (${errCode(e)})`);
      }
      if (got === 0) break;
      n += got;
      if (Date.now() > deadline) {
        throw new TokenProblem(`${named} could not be read within ${TOKEN_FILE_DEADLINE_MS / 1000} s`);
      }
    }
    if (n > maxBytes) throw tooLarge();
    text = buf.toString('utf8', 0, n);
    buf.fill(0);
    const mode = (st.mode & 0o777).toString(8).padStart(4, '0');
    if ((st.mode & 0o002) !== 0) {
      warnings.push(
        `${named} is writable by others (mode ${mode}): anyone on the host can choose the token; chmod o-w it`,
      );
    } else if (reader === 'daemon' && (st.mode & 0o020) !== 0) {
      warnings.push(
        `${named} is writable by its group (mode ${mode}): every member of group ${st.gid} can choose the token; chmod g-w it`,
      );
    }
    const me = process.getuid?.();
    if (reader === 'daemon' && me !== undefined && st.uid !== 0 && st.uid !== me) {
      warnings.push(
        `${named} belongs to uid ${st.uid}, neither root nor this process's user (uid ${me}): that user chooses the token`,
      );
    }
  } finally {
    closeSync(fd);
  }
  const token = text.replace(/\r?\n$/, '');
  if (token === '') throw new TokenProblem(`${named} is empty`);
  return { token, warnings, stats: st };
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are exactly what is refused
const CONTROL = /[\u0000-\u001f\u007f]/;
/** Characters no header can carry as pscache reads headers (Latin-1, a byte a character); U+FFFD included. */
const BEYOND_LATIN1 = /[\u0100-\uffff]/;

/**
 * What a token must be, wherever it came from: 16 characters or more, no control characters, nothing
 * beyond Latin-1 (Node reads each header byte as one Latin-1 character: a token with the euro sign never
 * matches, and Node's own client refuses to send it), and no whitespace at either end (HTTP drops it from
 * a header value, so no request could carry such a token),
 * and not a path to something on this host (a token variable naming HOME or PWD by mistake would make a
 * token anyone can guess).
 */
export function checkToken(token: string, file: string | undefined): void {
  const where = file === undefined ? 'the token' : `the token in ${file}`;
  if (token.length < MIN_TOKEN_LENGTH) {
    throw new TokenProblem(
      `${where} is too short (${token.length} characters): a token must have at least ${MIN_TOKEN_LENGTH}, or it can be guessed; make one with \`pscache token\``,
    );
  }
  if (token.length > MAX_TOKEN_LENGTH) {
    throw new TokenProblem(
      `${where} is too long (${token.length} characters): no request could carry it (pscache takes at most ${MAX_TOKEN_LENGTH} bytes of headers)`,
    );
  }
  if (CONTROL.test(token)) {
    throw new TokenProblem(
      `${where} holds control characters (a line break?): no HTTP header can carry them`,
    );
  }
  if (BEYOND_LATIN1.test(token)) {
    throw new TokenProblem(
      `${where} holds characters beyond Latin-1 (U+0100 and up, such as the euro sign): a request header carries bytes, each read as one Latin-1 character, so no request could match; use ASCII (\`pscache token\` makes such a token)`,
    );
  }
  if (/^\s|\s$/.test(token)) {
    throw new TokenProblem(
      `${where} begins or ends with whitespace: HTTP drops it from a header, so no request could match`,
    );
  }
  if (file === undefined && looksLikePath(token)) {
    throw new TokenProblem(
      `it holds a path to something on this host, not a token (a variable such as HOME or PWD in the token variables?): set it to the token, or to file:///path to read the token from a file`,
    );
  }
}

/** A value starting with `/` whose first `:`-separated part names an existing file or directory. */
function looksLikePath(token: string): boolean {
  if (!token.startsWith('/')) return false;
  const first = token.split(':', 1)[0]!;
  try {
    lstatSync(first);
    return true;
  } catch {
    return false;
  }
}
