// CloudWatch Embedded Metric Format: the reporter on an injected clock (a line at an INVOKE only once the
// interval has passed, one at SHUTDOWN, counts since the last line), each line checked against the EMF
// specification by an independent checker; the settings that shape it.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { ItemCache } from '../src/cache/index.ts';
import { loadConfig } from '../src/config.ts';
import { EmfReporter } from '../src/lambda/emf.ts';
import { Metrics } from '../src/metrics.ts';
import { checkEmfLine } from './helpers/emf.ts';

/** Just what the reporter reads of a cache: its counters. */
function fakeCache() {
  const stats = { hits: 0, misses: 0, stale: 0, loads: 0, errors: 0, evictions: 0 };
  return { cache: { stats } as unknown as ItemCache, stats };
}

function reporter(intervalMs: number) {
  const metrics = new Metrics();
  const { cache, stats } = fakeCache();
  const lines: string[] = [];
  let t = 1_700_000_000_000;
  const emf = new EmfReporter(metrics, cache, {
    namespace: 'pscache',
    dimensions: [['FunctionName', 'orders']],
    intervalMs,
    write: (l) => lines.push(l),
    now: () => t,
  });
  return {
    metrics,
    stats,
    lines,
    emf,
    advance: (ms: number) => {
      t += ms;
    },
  };
}

describe('EmfReporter', () => {
  test('at most one line per interval at INVOKEs, each with the counts since the line before', () => {
    const r = reporter(60_000);
    const read = (status: number, seconds: number) => r.metrics.request('secretsmanager', status, seconds);
    read(200, 0.002);
    r.stats.misses++;
    r.metrics.observer({
      service: 'secretsmanager',
      operation: 'GetSecretValue',
      outcome: 'ok',
      ms: 2,
      attempt: 1,
    });
    r.advance(59_999);
    assert.equal(r.emf.tick(), false, 'before the interval');
    r.advance(1);
    assert.equal(r.emf.tick(), true);
    assert.equal(r.emf.tick(), false, 'a second INVOKE at the same moment writes nothing');
    // Between lines: hits, a stale answer, throttling, an error; /ping and /metrics are not reads.
    for (let i = 0; i < 3; i++) {
      read(200, 0.0001 * (i + 1));
      r.stats.hits++;
    }
    read(200, 0.001);
    r.stats.stale++;
    r.metrics.observer({
      service: 'ssm',
      operation: 'GetParameter',
      outcome: 'throttled',
      ms: 3,
      attempt: 1,
    });
    r.metrics.observer({
      service: 'ssm',
      operation: 'GetParameter',
      outcome: 'throttled',
      ms: 3,
      attempt: 2,
    });
    read(429, 0.004);
    r.metrics.request('ping', 200, 0.00001);
    r.metrics.request('metrics', 200, 0.00001);
    r.emf.flush();
    assert.equal(r.lines.length, 2);
    const [first, second] = r.lines.map((l) => checkEmfLine(l.trimEnd()));
    assert.deepEqual(first!.values, {
      Reads: 1,
      Hits: 0,
      Misses: 1,
      UpstreamCalls: 1,
      StaleServed: 0,
      Throttled: 0,
      Errors: 0,
      ReadLatencyAvg: 2,
      ReadLatencyMax: 2,
    });
    assert.deepEqual(second!.values, {
      Reads: 5,
      Hits: 3,
      Misses: 0,
      UpstreamCalls: 2,
      StaleServed: 1,
      Throttled: 2,
      Errors: 1,
      ReadLatencyAvg: 1.12,
      ReadLatencyMax: 4,
    });
    assert.equal(second!.units['ReadLatencyAvg'], 'Milliseconds');
    assert.equal(second!.units['Hits'], 'Count');
    assert.deepEqual(second!.dimensions, [['FunctionName']]);
    assert.equal(second!.root['FunctionName'], 'orders');
    assert.ok(
      r.lines.every((l) => l.endsWith('}\n') && !l.slice(0, -1).includes('\n')),
      'one line each',
    );
  });

  test('no reads since the last line: the counts are 0 and no latency is reported', () => {
    const r = reporter(0);
    r.advance(10 * 60_000);
    assert.equal(r.emf.tick(), false, 'interval 0: only at SHUTDOWN');
    r.emf.flush();
    const line = checkEmfLine(r.lines[0]!.trimEnd());
    assert.equal(line.values['Reads'], 0);
    assert.ok(!('ReadLatencyAvg' in line.values) && !('ReadLatencyAvg' in line.root));
    assert.equal((line.root['_aws'] as { Timestamp: number }).Timestamp, 1_700_000_600_000);
  });

  test('the checker refuses what the specification forbids', () => {
    const good = JSON.stringify({
      _aws: {
        Timestamp: 1,
        CloudWatchMetrics: [{ Namespace: 'n', Dimensions: [['D']], Metrics: [{ Name: 'M', Unit: 'Count' }] }],
      },
      D: 'x',
      M: 1,
    });
    assert.doesNotThrow(() => checkEmfLine(good));
    type Directive = Record<string, unknown> & { Namespace: string; Metrics: Array<Record<string, unknown>> };
    type Doc = { _aws: { Timestamp?: number; CloudWatchMetrics: Directive[] }; D?: unknown; M?: unknown };
    const broken = (patch: (doc: Doc) => void) => {
      const doc = JSON.parse(good) as Doc;
      patch(doc);
      return () => checkEmfLine(JSON.stringify(doc));
    };
    assert.throws(
      broken((d) => delete d.M),
      /reference a root member holding a number/,
    );
    assert.throws(
      broken((d) => (d.D = 3)),
      /dimension D must reference/,
    );
    assert.throws(
      broken((d) => (d._aws.CloudWatchMetrics[0]!.Metrics[0]!['Unit'] = 'Things')),
      /invalid Unit/,
    );
    assert.throws(
      broken((d) => delete d._aws.Timestamp),
      /Timestamp/,
    );
    assert.throws(
      broken((d) => (d._aws.CloudWatchMetrics[0]!.Namespace = '')),
      /Namespace/,
    );
    assert.throws(
      broken((d) => (d._aws.CloudWatchMetrics[0]!['Extra'] = 1)),
      /does not define: Extra/,
    );
    assert.throws(() => checkEmfLine(`${good} trailing`), /not a JSON document/);
  });
});

describe('EMF settings', () => {
  const env = { AWS_REGION: 'us-east-1', AWS_LAMBDA_FUNCTION_NAME: 'orders' };
  const error = (extra: Record<string, string>) => {
    try {
      loadConfig({ ...env, ...extra });
      return 'accepted';
    } catch (e) {
      return (e as Error).message;
    }
  };

  test('defaults: on, every 60 s, namespace pscache, dimension FunctionName', () => {
    const c = loadConfig(env).emf;
    assert.deepEqual(c, {
      enabled: true,
      intervalMs: 60_000,
      namespace: 'pscache',
      dimensions: [['FunctionName', 'orders']],
    });
  });

  test('namespace, dimensions, interval and off are settable; bad values name the variable', () => {
    const c = loadConfig({
      ...env,
      PARAMETERS_SECRETS_EXTENSION_EMF: 'false',
      PARAMETERS_SECRETS_EXTENSION_EMF_INTERVAL_SECS: '0',
      PARAMETERS_SECRETS_EXTENSION_EMF_NAMESPACE: 'Team/Payments',
      PARAMETERS_SECRETS_EXTENSION_EMF_DIMENSIONS: 'Service=orders, Stage=prod',
    }).emf;
    assert.deepEqual(c, {
      enabled: false,
      intervalMs: 0,
      namespace: 'Team/Payments',
      dimensions: [
        ['Service', 'orders'],
        ['Stage', 'prod'],
      ],
    });
    assert.match(
      error({ PARAMETERS_SECRETS_EXTENSION_EMF_NAMESPACE: 'AWS/Lambda' }),
      /^PARAMETERS_SECRETS_EXTENSION_EMF_NAMESPACE="AWS\/Lambda" is invalid/,
    );
    assert.match(
      error({ PARAMETERS_SECRETS_EXTENSION_EMF_DIMENSIONS: 'Hits=3' }),
      /Hits is a name the EMF line uses itself/,
    );
    assert.match(
      error({ PARAMETERS_SECRETS_EXTENSION_EMF_DIMENSIONS: 'Stage' }),
      /entry "Stage" must be Name=value/,
    );
    assert.match(error({ PARAMETERS_SECRETS_EXTENSION_EMF_DIMENSIONS: 'A=1,A=2' }), /A is given twice/);
    assert.match(
      error({ PARAMETERS_SECRETS_EXTENSION_EMF_INTERVAL_SECS: '-1' }),
      /INTERVAL_SECS="-1" is invalid/,
    );
  });
});
