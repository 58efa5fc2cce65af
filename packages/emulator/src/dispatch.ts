// The AWS side: service and operation of a request, its checks in order, the handler, the answer.
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { accessDenied, type Caller, type Handler, type OpContext, principalArn } from './context.ts';
import type { Core } from './core.ts';
import { AwsError, Input } from './errors.ts';
import { type FaultTarget, sendFault } from './faults.ts';
import { alive, isLoopbackHost, LOOPBACK_ONLY, MAX_BODY, parseQuery, readBody, send } from './http.ts';
import { SECRETS_OPERATIONS, secretsRequestNames } from './secretsmanager.ts';
import { credentialScope } from './sigv4.ts';
import { SSM_OPERATIONS, ssmRequestNames } from './ssm.ts';
import { REGION } from './state.ts';
import {
  parseQueryBody,
  QUERY_CONTENT_TYPE,
  STS_FAULT_BODIES,
  STS_OPERATIONS,
  sendQueryError,
  sendQueryResult,
  stsRequestNames,
} from './sts.ts';
import type { CallRecord } from './types.ts';

const AMZ_JSON = 'application/x-amz-json-1.1';

/** `host` (with or without a port) is one of `names`. */
function isNamedHost(names: string[] | undefined, host: string | undefined): boolean {
  if (!names || host === undefined) return false;
  const name = host
    .trim()
    .toLowerCase()
    .replace(/:\d{1,5}$/, '');
  return names.some((n) => n.toLowerCase() === name);
}

type SendError = (res: ServerResponse, err: AwsError, requestId: string) => void;

interface Service extends FaultTarget {
  /** The signing name its SigV4 scope must carry. */
  signingName: 'ssm' | 'secretsmanager' | 'sts';
  ops: Record<string, Handler>;
  /** Names a request is about, for fault rules. */
  names(input: Input): string[];
  /** How the service spells the text of an error. */
  messageKey: 'message' | 'Message';
  sendResult(res: ServerResponse, op: string, doc: unknown, requestId: string): void;
}

function sendJsonResult(res: ServerResponse, _op: string, doc: unknown, requestId: string): void {
  send(res, 200, JSON.stringify(doc), { 'content-type': AMZ_JSON, 'x-amzn-RequestId': requestId });
}

const sendJsonError: SendError = (res, err, requestId) =>
  send(res, err.status, JSON.stringify(err.body()), {
    'content-type': AMZ_JSON,
    'x-amzn-RequestId': requestId,
  });

const SSM: Service = {
  signingName: 'ssm',
  ops: SSM_OPERATIONS,
  names: ssmRequestNames,
  messageKey: 'message',
  sendResult: sendJsonResult,
  sendError: sendJsonError,
  internalError: () => new AwsError('InternalServerError', undefined, 500),
  bodies: {
    contentType: AMZ_JSON,
    sample: JSON.stringify({
      Parameter: { Name: '/fault', Type: 'String', Value: 'x'.repeat(512), Version: 1 },
    }),
    truncated: '{"Parameter":',
    head: '{"Parameter":{"Name":"/huge","Type":"String","Value":"',
    tail: '","Version":1}}',
    endlessHead: '{"Parameter":{"Value":"',
  },
};

const SECRETS: Service = {
  signingName: 'secretsmanager',
  ops: SECRETS_OPERATIONS,
  names: secretsRequestNames,
  messageKey: 'Message',
  sendResult: sendJsonResult,
  sendError: sendJsonError,
  internalError: () =>
    new AwsError('InternalServiceError', 'An error occurred on the server side.', 500, 'Message'),
  bodies: {
    contentType: AMZ_JSON,
    sample: JSON.stringify({
      ARN: 'fault',
      Name: 'fault',
      SecretString: 'x'.repeat(512),
      VersionStages: ['AWSCURRENT'],
    }),
    truncated: '{"ARN":',
    head: '{"Name":"huge","SecretString":"',
    tail: '","VersionStages":["AWSCURRENT"]}',
    endlessHead: '{"SecretString":"',
  },
};

const STS: Service = {
  signingName: 'sts',
  ops: STS_OPERATIONS,
  names: stsRequestNames,
  messageKey: 'message',
  sendResult: sendQueryResult,
  sendError: sendQueryError,
  internalError: () => new AwsError('InternalFailure', 'An internal error occurred.', 500),
  bodies: STS_FAULT_BODIES,
};

/** X-Amz-Target prefix -> service (AWS JSON 1.1). STS speaks the Query protocol instead. */
const JSON_SERVICES: Record<string, Service> = { AmazonSSM: SSM, secretsmanager: SECRETS };

/** Who signed: a role session's minted key is attributed to the role. */
function callerOf(core: Core, accessKeyId: string | undefined): Caller {
  const session = accessKeyId === undefined ? undefined : core.sts.session(accessKeyId);
  if (session) return { principal: session.roleArn, arn: session.assumedRoleArn, session };
  return { principal: accessKeyId ?? null, arn: principalArn(core.accountId) };
}

/**
 * Answers one AWS call. `url` is the request target, `path` the part before `?`. Checks, in order:
 * loopback Host (403), POST (405), body size (413), known service (UnknownOperation), fault rules,
 * SigV4, known operation, rate limit, denied operation, request shape; the handler then applies the
 * resource deny lists (narrowed by the role's allow list for a role session).
 */
export async function dispatch(
  core: Core,
  req: IncomingMessage,
  res: ServerResponse,
  url: string,
  path: string,
): Promise<void> {
  const started = performance.now();
  const requestId = randomUUID();
  const target = String(req.headers['x-amz-target'] ?? '');
  const query =
    target === '' &&
    String(req.headers['content-type'] ?? '')
      .toLowerCase()
      .startsWith(QUERY_CONTENT_TYPE);
  const sendError = query ? sendQueryError : sendJsonError;
  const line = (op: string, status: number | string, note = '') =>
    core.opts.log?.(`${op} ${status} ${(performance.now() - started).toFixed(1)}ms${note}`);

  // Before anything else: a name other than loopback is a page in a browser (DNS rebinding), not a client.
  if (!isLoopbackHost(req.headers.host) && !isNamedHost(core.opts.hostNames, req.headers.host)) {
    req.resume();
    line(target || '-', 403, ' (Host refused)');
    return sendError(
      res,
      new AwsError('AccessDeniedException', `Request refused: ${LOOPBACK_ONLY}`, 403),
      requestId,
    );
  }
  if (req.method !== 'POST') {
    req.resume();
    res.setHeader('allow', 'POST');
    const err = new AwsError(
      'UnknownOperationException',
      `Method ${req.method} is not allowed; use POST`,
      405,
    );
    return sendError(res, err, requestId);
  }
  const body = await readBody(req, MAX_BODY);
  if (body === 'aborted' || core.closed) return;

  let service: Service | undefined;
  let op: string;
  let input: Input | AwsError = new AwsError(
    'SerializationException',
    `Request body exceeds ${MAX_BODY} bytes`,
  );
  if (query) {
    service = STS;
    const parsed = body === 'too-large' ? undefined : parseQueryBody(body);
    op = parsed?.action ?? '';
    if (parsed) input = parsed.input;
  } else {
    const dot = target.indexOf('.');
    const prefix = dot > 0 ? target.slice(0, dot) : '';
    service = Object.hasOwn(JSON_SERVICES, prefix) ? JSON_SERVICES[prefix] : undefined;
    op = dot > 0 ? target.slice(dot + 1) : '';
    if (body !== 'too-large') {
      try {
        input = Input.parse(body);
      } catch (err) {
        input = err as AwsError;
      }
    }
  }
  const handler = service && Object.hasOwn(service.ops, op) ? service.ops[op] : undefined;
  const operation = handler ? op : query ? op || '(no Action)' : target || '(no X-Amz-Target)';
  core.count(operation);
  const scope = credentialScope(req.headers);
  const caller = callerOf(core, scope?.accessKeyId);
  const record: CallRecord = { operation, principal: caller.principal, signingRegion: scope?.region ?? null };
  core.record(record);
  const fail = (err: AwsError, note = '') => {
    record.error = err.type;
    line(operation, err.type, note);
    (service?.sendError ?? sendError)(res, err, requestId);
  };

  if (body === 'too-large') {
    res.setHeader('connection', 'close');
    return fail(new AwsError('SerializationException', `Request body exceeds ${MAX_BODY} bytes`, 413));
  }
  if (!service) {
    return fail(
      new AwsError(
        'UnknownOperationException',
        target ? `Unknown target: ${target}` : 'Missing X-Amz-Target header',
      ),
    );
  }

  // Faults come first: they stand for the network and the service front door misbehaving.
  const fault = handler
    ? core.faults.match(op, input instanceof Input ? service.names(input) : [])
    : undefined;
  if (fault) {
    await core.sleep(fault.latencyMs);
    if (core.closed || !alive(res)) return;
    if (fault.error) {
      record.error = `fault:${fault.error}`;
      line(op, fault.error, ' (fault)');
      return sendFault(fault.error, service, req, res, requestId, () => core.closed);
    }
  }

  const now = core.clock();
  if (core.verifier.enabled) {
    const authError = await core.verifier.verify(
      { method: 'POST', path, query: parseQuery(url), headers: req.headers, body },
      service.signingName,
      now,
    );
    if (authError) return fail(authError);
  }
  if (!handler) {
    return fail(
      new AwsError(
        'UnknownOperationException',
        query ? `Could not find operation ${op} for version 2011-06-15` : `Unknown operation: ${target}`,
      ),
    );
  }
  if (!core.limiter.allow(op, now))
    return fail(new AwsError('ThrottlingException', 'Rate exceeded'), ' (rate limit)');
  const region = scope && REGION.test(scope.region) ? scope.region : core.region;
  const ctx: OpContext = {
    state: core.regions.get(region),
    kms: core.kms,
    deny: core.roleAccess.policy(core.denyList, caller.session?.roleArn),
    caller,
    sts: core.sts,
    now,
    op,
  };
  if (core.denyList.deniesOperation(op)) {
    return fail(accessDenied(ctx, `${service.signingName}:${op}`, undefined, service.messageKey));
  }
  if (input instanceof AwsError) return fail(input);
  let out: unknown;
  try {
    out = handler(input, ctx);
  } catch (err) {
    if (err instanceof AwsError) return fail(err);
    core.opts.log?.(`emulator: ${op} failed: ${(err as Error)?.stack ?? String(err)}`);
    return fail(service.internalError());
  }
  line(op, 200);
  service.sendResult(res, op, out, requestId);
}
