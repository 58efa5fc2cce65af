// `pscache token`: a fresh random token on stdout, or written to a file (mode 0600, or 0640 for a group) for sidecars.
import { execFileSync } from 'node:child_process';
import {
  closeSync,
  constants,
  fchmodSync,
  fchownSync,
  fsyncSync,
  linkSync,
  lstatSync,
  openSync,
  readFileSync,
  renameSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { nodeCrypto } from './builtins.ts';
import { checkToken, readTokenFile, TokenProblem } from './client/token-source.ts';
import { parseFlags, UsageError } from './flags.ts';

export interface TokenIo {
  stdout(text: string): void;
  stderr(text: string): void;
}

/** A failure the user can act on: exit 2 with one line naming the flag, file or group. */
class TokenError extends UsageError {}

interface TokenArgs {
  write?: string;
  group?: string;
  force: boolean;
  ifAbsent: boolean;
}

function parseArgs(args: string[]): TokenArgs {
  const flags = parseFlags(args, ['--write', '--group'], ['--force', '--if-absent']);
  const out: TokenArgs = {
    ...(flags['--write'] !== undefined ? { write: flags['--write'] } : {}),
    ...(flags['--group'] !== undefined ? { group: flags['--group'] } : {}),
    force: flags['--force'] !== undefined,
    ifAbsent: flags['--if-absent'] !== undefined,
  };
  if (out.write === undefined && (out.group !== undefined || out.force || out.ifAbsent)) {
    throw new TokenError('--group, --force and --if-absent need --write FILE');
  }
  if (out.force && out.ifAbsent)
    throw new TokenError('--force and --if-absent contradict each other: pick one');
  return out;
}

/** 32 random bytes, base64url: 43 characters, safe in a header, a file and a shell variable. */
function newToken(): string {
  return nodeCrypto().randomBytes(32).toString('base64url');
}

/** A group name or number to a gid: /etc/group first, then NSS (LDAP, SSSD) through getent. */
function groupId(group: string): number {
  if (/^\d+$/.test(group)) {
    const gid = Number(group);
    if (gid > 4294967294)
      throw new TokenError(`--group ${group} is invalid: a group id is at most 4294967294`);
    return gid;
  }
  // Names never start with '-' (getent would take it for an option) and never hold ':' or spaces.
  if (!/^[A-Za-z0-9_.][A-Za-z0-9_.$-]{0,255}$/.test(group)) {
    throw new TokenError(
      `--group ${JSON.stringify(group)} is invalid: must be a group name or a numeric group id`,
    );
  }
  const fromLine = (line: string): number | undefined => {
    const [name, , gid] = line.split(':');
    return name === group && gid !== undefined && /^\d+$/.test(gid) ? Number(gid) : undefined;
  };
  try {
    for (const line of readFileSync('/etc/group', 'utf8').split('\n')) {
      const gid = fromLine(line);
      if (gid !== undefined) return gid;
    }
  } catch {
    // no /etc/group: NSS may still know the group
  }
  try {
    const out = execFileSync('getent', ['group', group], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
      timeout: 5000,
    });
    const gid = fromLine(out.trim());
    if (gid !== undefined) return gid;
  } catch {
    // getent missing, or the group unknown to it
  }
  throw new TokenError(`--group ${JSON.stringify(group)}: no such group`);
}

const errCode = (e: unknown): string => (e as NodeJS.ErrnoException).code ?? 'error';

/** Whether anything is at `path`, a dangling symbolic link included. */
function present(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Why --if-absent must not keep what is at `path`, or undefined when it may: a regular file (not a link)
 * with no other name (one hard link), this user's or root's, that others may neither read nor write and
 * its group may not write (nor read, unless it is the --group asked for), holding a token the daemon
 * accepts. Whoever can write it chooses the token, whoever can read it (or reach another name of it) knows
 * it. Checked on the open file itself, so a swap after the check cannot slip another file in.
 */
function notKeepable(path: string, gid: number | undefined): string | undefined {
  let stats: ReturnType<typeof readTokenFile>['stats'];
  try {
    const read = readTokenFile(path);
    stats = read.stats;
    checkToken(read.token, path);
  } catch (e) {
    if (e instanceof TokenProblem) return e.message;
    throw e;
  }
  const me = process.getuid?.();
  if (me !== undefined && stats.uid !== me && stats.uid !== 0) {
    return `it belongs to uid ${stats.uid}, neither you (uid ${me}) nor root: that user knows the token`;
  }
  const mode = `mode ${(stats.mode & 0o777).toString(8).padStart(4, '0')}`;
  if ((stats.mode & 0o022) !== 0) {
    return `group or others may write it (${mode}): they could choose the token`;
  }
  if ((stats.mode & 0o004) !== 0) {
    return `others may read it (${mode}): every user of the host knows the token`;
  }
  if ((stats.mode & 0o040) !== 0 && (gid === undefined || stats.gid !== gid)) {
    return gid === undefined
      ? `its group may read it (${mode}) and no --group was asked for: the members of group ${stats.gid} know the token`
      : `its group (${stats.gid}) may read it (${mode}), not the --group asked for: that group's members know the token`;
  }
  if (stats.nlink > 1) {
    return `it has ${stats.nlink} hard links: whoever may read it under another name (or planted the link) knows the token`;
  }
  return undefined;
}

/**
 * Writes the token so that no reader ever sees a partial file or a file with looser permissions: a
 * temporary file in the same directory (O_EXCL, mode 0600), its group set, mode 0640 when it has one,
 * then moved into place: link(2) when the file must not exist (fails atomically if it does), rename(2)
 * with --force.
 */
function writeTokenFile(args: TokenArgs & { write: string }, io: TokenIo): number {
  const path = resolve(args.write);
  const dir = dirname(path);
  const gid = args.group === undefined ? undefined : groupId(args.group);
  const kept = () => {
    const why = notKeepable(path, gid);
    if (why !== undefined) {
      throw new TokenError(
        `${path} exists and is not kept (--if-absent): ${why}; remove it, or pass --force to replace it`,
      );
    }
    io.stderr(`pscache: ${path} already exists; kept it (--if-absent)\n`);
    io.stdout(`PARAMETERS_SECRETS_EXTENSION_TOKEN=${pathToFileURL(path).href}\n`);
    return 0;
  };
  const exists = () =>
    new TokenError(`${path} already exists; pass --force to replace it (or --if-absent to keep it)`);
  if (!args.force && present(path)) {
    if (args.ifAbsent) return kept();
    throw exists();
  }
  // Only the owner may read it, unless a group is named: a setgid directory's group gets nothing.
  const mode = gid === undefined ? 0o600 : 0o640;
  const tmp = join(dir, `.${basename(path)}.${nodeCrypto().randomBytes(6).toString('hex')}.tmp`);
  let fd: number;
  try {
    fd = openSync(
      tmp,
      constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
      0o600,
    );
  } catch (e) {
    throw new TokenError(`cannot create the token file in ${dir} (${errCode(e)})`);
  }
  try {
    try {
      writeSync(fd, newToken());
      if (gid !== undefined) {
        try {
          fchownSync(fd, -1, gid);
        } catch (e) {
          throw new TokenError(
            `--group ${args.group}: cannot give ${path} to that group (${errCode(e)}); run as root or as a member of it`,
          );
        }
      }
      fchmodSync(fd, mode);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    if (args.force) {
      renameSync(tmp, path);
    } else {
      try {
        linkSync(tmp, path);
      } catch (e) {
        if (errCode(e) === 'EEXIST') {
          if (args.ifAbsent) return kept();
          throw exists();
        }
        // A file system without hard links: the existence check above has to do.
        if (!['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS'].includes(errCode(e))) throw e;
        if (present(path)) throw exists();
        renameSync(tmp, path);
      }
    }
  } catch (e) {
    if (e instanceof TokenError) throw e;
    throw new TokenError(`cannot write ${path} (${errCode(e)})`);
  } finally {
    try {
      unlinkSync(tmp);
    } catch {
      // already renamed into place
    }
  }
  const group = args.group === undefined ? '' : `, group ${args.group}`;
  io.stderr(`pscache: wrote a new token to ${path} (mode 0${mode.toString(8)}${group})\n`);
  io.stdout(`PARAMETERS_SECRETS_EXTENSION_TOKEN=${pathToFileURL(path).href}\n`);
  return 0;
}

/** Returns the exit code: 0 done, 2 bad arguments or a file or group problem (named on stderr). */
export function runToken(args: string[], io: TokenIo): number {
  try {
    const parsed = parseArgs(args);
    if (parsed.write === undefined) {
      io.stdout(`${newToken()}\n`);
      return 0;
    }
    return writeTokenFile({ ...parsed, write: parsed.write }, io);
  } catch (e) {
    if (e instanceof UsageError) {
      io.stderr(`pscache: ${e.message}\n`);
      return 2;
    }
    throw e;
  }
}
