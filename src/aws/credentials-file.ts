// credentials_file_path, as the Workload Credentials Provider defines it: a standard AWS credentials file
// (IAM Roles Anywhere and other tools write one), read at start and looked at every 5 minutes; re-read when
// its modification time changed; a missing or malformed file keeps the credentials read before; a mode
// wider than 0600 is warned about. Temporary credentials only: the provider refuses long-term keys.
import { readFileSync, statSync } from 'node:fs';
import { type Clock, systemClock, type Timer } from '../clock.ts';
import type { Logger } from '../log.ts';
import { AwsCallError, type AwsCredentials } from './types.ts';

/** How often the file is looked at, as in the provider. */
export const CHECK_INTERVAL_MS = 5 * 60_000;
/** A credentials file is a few hundred bytes; a far larger one is not what we were pointed at. */
const MAX_FILE_BYTES = 1024 * 1024;

export interface FileCredentialsOptions {
  path: string;
  /** The section to read: AWS_PROFILE, else `default`. */
  profile?: string | undefined;
  log: Logger;
  clock?: Clock;
}

/** Why a file gave no credentials. Never holds a key, a secret or a token: only names and line numbers. */
class Unusable extends Error {}

/**
 * The `[profile]` section of a credentials file (INI: `[section]`, `key = value`, `#` and `;` comments,
 * indented lines belong to the key above) -> its keys. Throws Unusable naming the line of anything else.
 */
export function parseCredentialsFile(text: string, profile: string): AwsCredentials {
  const sections = new Map<string, Map<string, string>>();
  let current: Map<string, string> | undefined;
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  lines.forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) return;
    if (/^\s/.test(raw) && current) return; // a sub-property of the key above (config-file style)
    const section = /^\[\s*([^\]]+?)\s*\]$/.exec(line);
    if (section) {
      const name = section[1]!.replace(/^profile\s+/, '');
      current = sections.get(name) ?? new Map();
      sections.set(name, current);
      return;
    }
    const eq = line.indexOf('=');
    if (eq <= 0 || !current) {
      throw new Unusable(`line ${i + 1} is neither [section] nor key = value`);
    }
    current.set(line.slice(0, eq).trim().toLowerCase(), line.slice(eq + 1).trim());
  });
  const keys = sections.get(profile);
  if (!keys) throw new Unusable(`it has no [${profile}] section`);
  const accessKeyId = keys.get('aws_access_key_id');
  const secretAccessKey = keys.get('aws_secret_access_key');
  const sessionToken = keys.get('aws_session_token');
  if (!accessKeyId || !secretAccessKey) {
    throw new Unusable(`[${profile}] lacks aws_access_key_id or aws_secret_access_key`);
  }
  if (!sessionToken) {
    throw new Unusable(
      `[${profile}] holds long-term keys (no aws_session_token): only temporary credentials are accepted, as the Workload Credentials Provider requires`,
    );
  }
  return { accessKeyId, secretAccessKey, sessionToken };
}

/** Modification time in ms (null when the file is missing or cannot be looked at) and permission bits. */
function look(path: string): { mtime: number | null; mode: number } {
  try {
    const st = statSync(path);
    return { mtime: st.mtimeMs, mode: st.mode & 0o777 };
  } catch {
    return { mtime: null, mode: 0 };
  }
}

/** A CredentialSource (src/aws/credentials.ts, which makes it: importing the interface back would be a cycle). */
export class FileCredentials {
  readonly name = 'credentials file';
  private current: AwsCredentials | undefined;
  /** The modification time of the file the current credentials came from. */
  private loadedMtime: number | null | undefined;
  /** Why the file last gave nothing, for the error callers get until it does. */
  private problem = 'it has not been read yet';
  /** The too-wide mode last warned about (a chmod changes no mtime, so each look checks it). */
  private warnedMode: number | undefined;
  private timer: Timer | undefined;
  private readonly clock: Clock;
  private readonly profile: string;

  constructor(private readonly opts: FileCredentialsOptions) {
    this.clock = opts.clock ?? systemClock;
    this.profile = opts.profile ?? 'default';
    this.load('start');
    this.schedule();
  }

  get(): Promise<AwsCredentials> {
    if (this.current) return Promise.resolve(this.current);
    return Promise.reject(
      new AwsCallError(
        'CredentialsProviderError',
        `could not load AWS credentials from the credentials file ${this.opts.path}: ${this.problem}; it is read again when it changes (looked at every ${CHECK_INTERVAL_MS / 60_000} minutes)`,
        'aws',
      ),
    );
  }

  held(): boolean {
    return this.current !== undefined;
  }

  /** The service called the credentials expired: look at the file now rather than at the next check. */
  invalidate(): boolean {
    return this.check();
  }

  /** Stops looking at the file (shutdown). */
  stop(): void {
    this.timer?.cancel();
    this.timer = undefined;
  }

  private schedule(): void {
    this.timer = this.clock.setTimeout(() => {
      this.check();
      this.schedule();
    }, CHECK_INTERVAL_MS);
  }

  /** Reads the file again if it changed since the credentials in use were read. True when it was read. */
  private check(): boolean {
    const { mtime, mode } = look(this.opts.path);
    if (this.current && mtime === this.loadedMtime) {
      this.checkMode(mode);
      return false;
    }
    return this.load('reload');
  }

  /** Warns once per mode that lets others read the file; quiet again once it is restricted. */
  private checkMode(mode: number): void {
    if ((mode & 0o077) === 0) {
      this.warnedMode = undefined;
      return;
    }
    if (mode === this.warnedMode) return;
    this.warnedMode = mode;
    this.opts.log.warn('the credentials file can be read by others: restrict it to its owner (chmod 600)', {
      path: this.opts.path,
      mode: `0${mode.toString(8)}`,
    });
  }

  private load(when: 'start' | 'reload'): boolean {
    const { path, log } = this.opts;
    let mode = 0;
    let mtime: number;
    try {
      const st = statSync(path);
      if (!st.isFile()) throw new Unusable('it is not a regular file');
      if (st.size > MAX_FILE_BYTES) throw new Unusable(`it is larger than ${MAX_FILE_BYTES} bytes`);
      mode = st.mode & 0o777;
      mtime = st.mtimeMs;
      this.current = parseCredentialsFile(readFileSync(path, 'utf8'), this.profile);
    } catch (e) {
      const why =
        e instanceof Unusable
          ? e.message
          : `it could not be read (${(e as NodeJS.ErrnoException).code ?? 'error'})`;
      this.problem = why;
      const fields = { path, problem: why, next_check_s: CHECK_INTERVAL_MS / 1000 };
      if (this.current) log.warn('credentials file not usable; keeping the credentials read before', fields);
      // At start the daemon's one credentials WARN (src/health.ts) carries this problem and the fix; a
      // second line here would say it twice.
      else if (when === 'start') log.debug('no credentials from the credentials file yet', fields);
      else log.warn('no credentials from the credentials file yet; reads fail until it is usable', fields);
      return false;
    }
    this.loadedMtime = mtime;
    this.problem = '';
    log.info(
      when === 'start' ? 'credentials read from the credentials file' : 'credentials file read again',
      {
        path,
      },
    );
    // Said at each read of the file, as before: a rewrite that keeps a wide mode is warned again.
    this.warnedMode = undefined;
    this.checkMode(mode);
    return true;
  }
}
