// `pscache get parameter NAME` / `pscache get secret ID`: the client for shell scripts, with exit codes a
// script can branch on: 0 found, 2 not found, 3 denied, 4 daemon unreachable, 1 anything else.

import type { Env } from './env.ts';
import {
  AccessDeniedError,
  ExtensionUnavailableError,
  NotFoundError,
  PscacheError,
  UnauthorizedError,
} from './errors.ts';
import { Transport } from './http.ts';
import { parameterRequest, parameterValue, secretAnswerValue, secretRequest } from './requests.ts';

export { GET_USAGE } from './get-usage.ts';

export const EXIT = { found: 0, other: 1, notFound: 2, denied: 3, unreachable: 4 } as const;

export interface Output {
  stdout: (data: string | Uint8Array) => void;
  stderr: (data: string) => void;
}

class UsageError extends Error {}

interface GetArgs {
  kind: 'parameter' | 'secret';
  id: string;
  json: boolean;
  decrypt: boolean;
  version: string | undefined;
  label: string | undefined;
  stage: string | undefined;
  port: number | undefined;
}

const VALUE_FLAGS = ['--version', '--label', '--stage', '--port'] as const;
const BOOLEAN_FLAGS = ['--json', '--decrypt'] as const;

function parseArgs(args: string[]): GetArgs {
  const positional: string[] = [];
  const values = new Map<string, string>();
  const booleans = new Set<string>();
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--') {
      positional.push(...args.slice(i + 1));
      break;
    }
    if (!a.startsWith('--')) {
      positional.push(a);
      continue;
    }
    const eq = a.indexOf('=');
    const flag = eq === -1 ? a : a.slice(0, eq);
    if ((BOOLEAN_FLAGS as readonly string[]).includes(flag) && eq === -1) {
      booleans.add(flag);
    } else if ((VALUE_FLAGS as readonly string[]).includes(flag)) {
      const v = eq === -1 ? args[++i] : a.slice(eq + 1);
      if (v === undefined || v === '') throw new UsageError(`${flag} needs a value`);
      if (values.has(flag)) throw new UsageError(`${flag} is given more than once`);
      values.set(flag, v);
    } else {
      throw new UsageError(
        `unknown argument ${JSON.stringify(a)}; allowed: ${[...BOOLEAN_FLAGS, ...VALUE_FLAGS].join(', ')}`,
      );
    }
  }
  const [kind, id, ...extra] = positional;
  if (kind !== 'parameter' && kind !== 'secret') {
    throw new UsageError(`say what to get: pscache get parameter NAME, or pscache get secret ID`);
  }
  if (id === undefined || id === '')
    throw new UsageError(`pscache get ${kind} needs a ${kind === 'parameter' ? 'NAME' : 'ID'}`);
  if (extra.length > 0) throw new UsageError(`one ${kind} at a time; unexpected ${JSON.stringify(extra[0])}`);
  if (kind === 'parameter' && values.has('--stage'))
    throw new UsageError('--stage is for secrets; parameters take --label');
  if (kind === 'secret' && (values.has('--label') || booleans.has('--decrypt'))) {
    throw new UsageError('--label and --decrypt are for parameters; secrets take --stage and --version');
  }
  if (values.has('--version') && values.has('--label'))
    throw new UsageError('give either --version or --label, not both');
  const port = values.get('--port');
  if (port !== undefined && (!/^\d+$/.test(port) || Number(port) < 1 || Number(port) > 65535)) {
    throw new UsageError(`--port ${JSON.stringify(port)} is invalid: must be a whole number from 1 to 65535`);
  }
  if (kind === 'parameter' && values.has('--version') && !/^[1-9]\d*$/.test(values.get('--version')!)) {
    throw new UsageError(
      `--version ${JSON.stringify(values.get('--version'))} is invalid: a parameter version is a whole number from 1`,
    );
  }
  return {
    kind,
    id,
    json: booleans.has('--json'),
    decrypt: booleans.has('--decrypt'),
    version: values.get('--version'),
    label: values.get('--label'),
    stage: values.get('--stage'),
    port: port === undefined ? undefined : Number(port),
  };
}

/** Runs the command; never throws. */
export async function runGet(args: string[], env: Env, out: Output): Promise<number> {
  let a: GetArgs;
  try {
    a = parseArgs(args);
  } catch (e) {
    out.stderr(`pscache get: ${(e as Error).message}\n`);
    return EXIT.other;
  }
  let transport: Transport | undefined;
  try {
    transport = new Transport({
      port: a.port,
      token: undefined,
      timeoutMs: 1000,
      retries: 2,
      retryBaseMs: 100,
      retryMaxDelayMs: 1000,
      env,
    });
    const r =
      a.kind === 'parameter'
        ? parameterRequest(a.id, {
            ...(a.version !== undefined ? { version: a.version } : {}),
            ...(a.label !== undefined ? { label: a.label } : {}),
            decrypt: a.decrypt,
          })
        : secretRequest(a.id, {
            ...(a.version !== undefined ? { versionId: a.version } : {}),
            ...(a.stage !== undefined ? { versionStage: a.stage } : {}),
          });
    const answer = await transport.get(r.path, r.query, a.id);
    if (a.json) {
      out.stdout(`${answer.body}\n`);
      return EXIT.found;
    }
    const value =
      a.kind === 'parameter'
        ? parameterValue(answer, undefined, a.id)
        : secretAnswerValue(answer, undefined, a.id);
    // Binary secrets go out byte for byte (`pscache get secret tls/key > key.der`).
    out.stdout(typeof value === 'string' ? `${value}\n` : (value as Uint8Array));
    return EXIT.found;
  } catch (e) {
    out.stderr(`pscache get: ${describe(e)}\n`);
    return exitCode(e);
  } finally {
    transport?.close();
  }
}

function describe(e: unknown): string {
  if (e instanceof PscacheError) {
    const how = e.status === 0 ? 'no answer' : `HTTP ${e.status}`;
    return `${e.name} (${how}, ${e.__type}): ${e.message}`;
  }
  return e instanceof Error ? e.message : String(e);
}

export function exitCode(e: unknown): number {
  if (e instanceof NotFoundError) return EXIT.notFound;
  if (e instanceof AccessDeniedError || e instanceof UnauthorizedError) return EXIT.denied;
  if (e instanceof ExtensionUnavailableError) return EXIT.unreachable;
  return EXIT.other;
}
