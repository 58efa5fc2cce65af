// A checker for CloudWatch Embedded Metric Format lines, written from the specification ("Specification:
// Embedded metric format", Amazon CloudWatch User Guide), independent of the code that writes them.

const UNITS = new Set([
  'Seconds',
  'Microseconds',
  'Milliseconds',
  'Bytes',
  'Kilobytes',
  'Megabytes',
  'Gigabytes',
  'Terabytes',
  'Bits',
  'Kilobits',
  'Megabits',
  'Gigabits',
  'Terabits',
  'Percent',
  'Count',
  'Bytes/Second',
  'Kilobytes/Second',
  'Megabytes/Second',
  'Gigabytes/Second',
  'Terabytes/Second',
  'Bits/Second',
  'Kilobits/Second',
  'Megabits/Second',
  'Gigabits/Second',
  'Terabits/Second',
  'Count/Second',
  'None',
]);

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

function only(o: Record<string, unknown>, allowed: string[], where: string): void {
  for (const k of Object.keys(o)) {
    if (!allowed.includes(k))
      throw new Error(`${where} has a member the specification does not define: ${k}`);
  }
}

export interface EmfLine {
  namespace: string;
  dimensions: string[][];
  /** Metric name -> value, for every metric the line declares. */
  values: Record<string, number>;
  units: Record<string, string | undefined>;
  root: Record<string, unknown>;
}

/**
 * Parses one log line and checks it against the specification; throws naming the first rule broken.
 * The line must be one JSON object with nothing before or after it (the LogEvent message).
 */
export function checkEmfLine(line: string): EmfLine {
  let root: unknown;
  try {
    root = JSON.parse(line);
  } catch {
    throw new Error('not a JSON document');
  }
  // JSON.parse has refused anything before or after the one value; it must be an object.
  if (!isObject(root)) throw new Error('the root is not an object');
  const aws = root['_aws'];
  if (!isObject(aws)) throw new Error('_aws is missing or not an object');
  const ts = aws['Timestamp'];
  if (typeof ts !== 'number' || !Number.isInteger(ts) || ts < 0) {
    throw new Error('_aws.Timestamp must be epoch milliseconds');
  }
  const directives = aws['CloudWatchMetrics'];
  if (!Array.isArray(directives) || directives.length === 0) {
    throw new Error('_aws.CloudWatchMetrics must be a non-empty array');
  }
  if (directives.length !== 1) throw new Error('this checker expects one MetricDirective');
  const d = directives[0];
  if (!isObject(d)) throw new Error('a MetricDirective is not an object');
  only(d, ['Namespace', 'Dimensions', 'Metrics'], 'the MetricDirective');
  const ns = d['Namespace'];
  if (typeof ns !== 'string' || ns.length < 1 || ns.length > 255) {
    throw new Error('Namespace must be a string of 1 to 255 characters');
  }
  const dims = d['Dimensions'];
  if (!Array.isArray(dims)) throw new Error('Dimensions must be an array of DimensionSets');
  for (const set of dims) {
    if (!Array.isArray(set) || set.length > 30)
      throw new Error('a DimensionSet is an array of at most 30 keys');
    for (const key of set) {
      if (typeof key !== 'string') throw new Error('a dimension key must be a string');
      const v = root[key];
      if (typeof v !== 'string' || v.length < 1 || v.length > 1024) {
        throw new Error(
          `dimension ${key} must reference a root member holding a string of 1 to 1024 characters`,
        );
      }
    }
  }
  const metrics = d['Metrics'];
  if (!Array.isArray(metrics) || metrics.length > 100) {
    throw new Error('Metrics must be an array of at most 100 MetricDefinitions');
  }
  const values: Record<string, number> = {};
  const units: Record<string, string | undefined> = {};
  for (const m of metrics) {
    if (!isObject(m)) throw new Error('a MetricDefinition is not an object');
    only(m, ['Name', 'Unit', 'StorageResolution'], 'a MetricDefinition');
    const name = m['Name'];
    if (typeof name !== 'string' || name.length < 1 || name.length > 1024) {
      throw new Error('a MetricDefinition needs a Name of 1 to 1024 characters');
    }
    if (name in values) throw new Error(`metric ${name} is declared twice`);
    const unit = m['Unit'];
    if (unit !== undefined && (typeof unit !== 'string' || !UNITS.has(unit))) {
      throw new Error(`metric ${name} has an invalid Unit ${String(unit)}`);
    }
    const res = m['StorageResolution'];
    if (res !== undefined && res !== 1 && res !== 60)
      throw new Error(`metric ${name}: StorageResolution is 1 or 60`);
    const v = root[name];
    const numbers = Array.isArray(v) ? v : [v];
    if (
      numbers.length === 0 ||
      numbers.length > 100 ||
      !numbers.every((n) => typeof n === 'number' && Number.isFinite(n))
    ) {
      throw new Error(`metric ${name} must reference a root member holding a number (or up to 100)`);
    }
    values[name] = numbers.reduce((a: number, b: number) => a + b, 0);
    units[name] = unit as string | undefined;
  }
  return { namespace: ns, dimensions: dims as string[][], values, units, root };
}

/** Every EMF line in some output (lines holding `"_aws"`), each checked. */
export function emfLines(output: string): EmfLine[] {
  return output
    .split('\n')
    .filter((l) => l.includes('"_aws"'))
    .map(checkEmfLine);
}
