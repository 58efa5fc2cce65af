// The control API (/__emulator/*): plain JSON, for a loopback Host and the control token only.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Core } from './core.ts';
import { parseFaultRules } from './faults.ts';
import {
  type Body,
  isLoopbackHost,
  LOOPBACK_ONLY,
  MAX_BODY,
  readBody,
  sameSecret,
  sendJson,
} from './http.ts';
import { stringArray } from './policy.ts';
import { validateStore } from './store.ts';
import type { ContainerCredentialsOptions, EmulatorCredential, RateLimitOptions } from './types.ts';

export const CONTROL_TOKEN_HEADER = 'x-emulator-control-token';

/** Route -> methods. */
const ROUTES: Record<string, string[]> = {
  '/__emulator/health': ['GET'],
  '/__emulator/calls': ['GET'],
  '/__emulator/call-log': ['GET'],
  '/__emulator/calls/reset': ['POST'],
  '/__emulator/faults': ['PUT', 'DELETE'],
  '/__emulator/deny': ['PUT', 'DELETE'],
  '/__emulator/roles': ['PUT', 'DELETE'],
  '/__emulator/credentials': ['PUT'],
  '/__emulator/ratelimit': ['PUT', 'DELETE'],
  '/__emulator/seed': ['POST'],
  '/__emulator/container-credentials': ['GET', 'PUT'],
};

/** Why a control token is unusable, or undefined when it is fine. */
export function controlTokenProblem(token: string): string | undefined {
  return /^[\x21-\x7e]{16,512}$/.test(token)
    ? undefined
    : `must be 16 to 512 visible ASCII characters without spaces (got ${token.length} characters)`;
}

function readJson(body: Body): { ok: true; value: unknown } | { ok: false; error: string } {
  if (body === 'too-large') return { ok: false, error: `body larger than ${MAX_BODY} bytes` };
  if (body === 'aborted') return { ok: false, error: 'request aborted' };
  try {
    return { ok: true, value: body.length === 0 ? null : JSON.parse(body.toString('utf8')) };
  } catch {
    return { ok: false, error: 'body is not valid JSON' };
  }
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === 'object' && !Array.isArray(v);

export function parseCredentials(v: unknown): EmulatorCredential[] | undefined {
  if (v === null || v === undefined) return undefined;
  if (!Array.isArray(v)) throw new Error('credentials must be an array (or null to turn verification off)');
  return v.map((c, i) => {
    if (!isObject(c)) throw new Error(`credentials[${i}] must be an object`);
    if (typeof c['accessKeyId'] !== 'string' || typeof c['secretAccessKey'] !== 'string') {
      throw new Error(`credentials[${i}] needs string accessKeyId and secretAccessKey`);
    }
    const cred: EmulatorCredential = { accessKeyId: c['accessKeyId'], secretAccessKey: c['secretAccessKey'] };
    if (typeof c['sessionToken'] === 'string') cred.sessionToken = c['sessionToken'];
    if (typeof c['expiresAt'] === 'number') cred.expiresAt = c['expiresAt'];
    return cred;
  });
}

export function parseContainerCredentials(v: unknown): ContainerCredentialsOptions | undefined {
  if (v === null || v === undefined) return undefined;
  if (!isObject(v) || typeof v['authToken'] !== 'string' || !v['authToken']) {
    throw new Error('container credentials need a non-empty string authToken');
  }
  const ttl = v['ttlSeconds'];
  if (typeof ttl !== 'number' || !(ttl > 0)) throw new Error('container credentials need ttlSeconds > 0');
  return { authToken: v['authToken'], ttlSeconds: ttl };
}

/** Runs one control route; returns the status and document to answer. */
function run(core: Core, route: string, method: string, value: unknown): [number, unknown] {
  switch (`${method} ${route}`) {
    case 'GET /__emulator/health':
      return [200, { status: 'ok', region: core.region, accountId: core.accountId }];
    case 'GET /__emulator/calls':
      return [200, core.calls()];
    case 'GET /__emulator/call-log':
      return [200, core.callLog()];
    case 'POST /__emulator/calls/reset':
      core.resetCalls();
      break;
    case 'PUT /__emulator/faults':
      core.setFaults(parseFaultRules(value));
      break;
    case 'DELETE /__emulator/faults':
      core.clearFaults();
      break;
    case 'PUT /__emulator/deny': {
      const o = value ?? {};
      if (!isObject(o)) throw new Error('deny takes {"resources":[...],"operations":[...],"roles":[...]}');
      const lists = (['resources', 'operations', 'roles'] as const).map((k) => stringArray(o[k], k));
      // PUT replaces the three lists (the per-role allow lists stay).
      core.denyList.clear();
      core.sts.clearDeny();
      core.deny(lists[0]!);
      core.denyOperations(lists[1]!);
      core.denyRoles(lists[2]!);
      break;
    }
    case 'DELETE /__emulator/deny':
      core.clearDeny();
      break;
    case 'PUT /__emulator/roles': {
      if (!isObject(value)) throw new Error('roles takes {"<role ARN>": ["<resource>", ...], ...}');
      const entries = Object.entries(value).map(([arn, list]) => [arn, stringArray(list, arn)] as const);
      core.roleAccess.clear();
      for (const [arn, list] of entries) core.allowRole(arn, list);
      break;
    }
    case 'DELETE /__emulator/roles':
      core.roleAccess.clear();
      break;
    case 'PUT /__emulator/credentials':
      core.setCredentials(parseCredentials(value));
      break;
    case 'PUT /__emulator/ratelimit':
      if (value !== null && !isObject(value))
        throw new Error('ratelimit takes {"ssmTps":N,"secretsTps":N} or null');
      core.setRateLimit((value ?? undefined) as RateLimitOptions | undefined);
      break;
    case 'DELETE /__emulator/ratelimit':
      core.setRateLimit(undefined);
      break;
    case 'POST /__emulator/seed':
      return [200, core.seed(validateStore(value ?? {}, 'seed'))];
    case 'PUT /__emulator/container-credentials':
      core.setContainerCredentials(parseContainerCredentials(value));
      break;
  }
  return [204, null];
}

/** Answers a request for a path under /__emulator. */
export async function control(
  core: Core,
  req: IncomingMessage,
  res: ServerResponse,
  path: string,
): Promise<void> {
  const route = path.replace(/\/+$/, '');
  const method = req.method ?? 'GET';
  const refuse = (status: number, error: string) => {
    req.resume();
    sendJson(res, status, { error });
  };
  if (!isLoopbackHost(req.headers.host)) return refuse(403, `control API refused: ${LOOPBACK_ONLY}`);
  // Called by the daemon under test with its own Authorization token, never with the control token.
  if (route === '/__emulator/container-credentials' && method === 'GET') {
    req.resume();
    const [status, doc] = core.mintContainerCredentials(req.headers.authorization);
    return sendJson(res, status, doc);
  }
  if (!sameSecret(req.headers[CONTROL_TOKEN_HEADER], core.controlToken)) {
    return refuse(
      401,
      'missing or wrong X-Emulator-Control-Token header (pscache emulator prints the token)',
    );
  }
  const body = await readBody(req, MAX_BODY);
  if (body === 'aborted') return;
  const allowed = Object.hasOwn(ROUTES, route) ? ROUTES[route] : undefined;
  if (!allowed) return sendJson(res, 404, { error: `no such route: ${path}` });
  if (!allowed.includes(method)) {
    res.setHeader('allow', allowed.join(', '));
    return sendJson(res, 405, { error: `${method} not allowed on ${route}; use ${allowed.join(' or ')}` });
  }
  const json =
    method === 'PUT' || route === '/__emulator/seed' ? readJson(body) : { ok: true as const, value: null };
  if (!json.ok) return sendJson(res, 400, { error: json.error });
  try {
    const [status, doc] = run(core, route, method, json.value);
    sendJson(res, status, doc);
  } catch (err) {
    sendJson(res, 400, { error: (err as Error).message });
  }
}
