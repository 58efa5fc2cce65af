// `--config FILE`: a TOML file in the AWS Workload Credentials Provider's schema (nested or older flat form)
// plus a [pscache] table -> the file values loadConfig validates. Only the shape is checked here: unknown
// keys and mixed forms. The TOML parser is loaded only when a file is given (dist/toml.cjs in the bundle).
import { readFile } from 'node:fs/promises';
import {
  ConfigError,
  type ConfigFile,
  type FileValue,
  inPscacheTable,
  SETTING_LIST,
  SETTINGS,
  type Setting,
  type SettingId,
} from './settings.ts';

/** Nested keys (full paths) and flat keys (at the root) -> the setting they give. */
const NESTED = new Map<string, SettingId>();
const FLAT = new Map<string, SettingId>();
/** [pscache] keys: the variables of settings the provider's schema has no key for. */
const OWN = new Map<string, SettingId>();
for (const [id, s] of SETTING_LIST) {
  if (s.toml !== undefined) NESTED.set(s.toml, id);
  if (s.flat !== undefined) FLAT.set(s.flat, id);
  if (inPscacheTable(s)) OWN.set(s.env, id);
}

/** Tables whose contents pscache accepts without acting on them. */
const IGNORED: Record<string, string> = {
  'capabilities.acm': 'pscache has no Certificate Management capability',
};

type Table = Record<string, unknown>;
const isTable = (v: unknown): v is Table =>
  typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date);

/** Reads and checks a --config file. Throws ConfigError naming the file, and the key where there is one. */
export async function readConfigFile(path: string): Promise<ConfigFile> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? 'error';
    throw new ConfigError('--config', path, `the file could not be read (${code})`);
  }
  // require in the bundle (dist/toml.cjs beside it): a dynamic import() is lost when the bundle is compiled
  // from a V8 code cache (bin/pscache.cjs); import() under tsx (ES modules).
  const { parse, TomlError }: typeof import('smol-toml') =
    typeof require === 'function' ? require('smol-toml') : await import('smol-toml');
  let doc: Table;
  try {
    doc = parse(text, { unsafeKeyBehaviour: 'throw' });
  } catch (e) {
    if (!(e instanceof TomlError)) throw e;
    const what = e.message.split('\n')[0]!.replace(/^Invalid TOML document: /, '');
    throw new ConfigError(
      '--config',
      path,
      '',
      true,
      `${path}:${e.line}:${e.column}: not valid TOML: ${what}`,
    );
  }
  return configFromToml(doc, path);
}

/** Walks a parsed document against the schema. Exported for tests. */
function configFromToml(doc: Table, path: string): ConfigFile {
  const values = new Map<SettingId, FileValue>();
  const notes: string[] = [];
  const fail = (key: string, problem: string) => ConfigError.inFile(path, key, problem);
  // The provider refuses flat keys once [logging] or [capabilities] is there; so does pscache.
  const nested = 'logging' in doc || 'capabilities' in doc;
  const keys = nested ? NESTED : FLAT;

  const walk = (table: Table, prefix: string) => {
    for (const [name, value] of Object.entries(table)) {
      const key = prefix === '' ? name : `${prefix}.${name}`;
      const id = keys.get(key);
      if (id !== undefined) {
        values.set(id, { key, value });
        continue;
      }
      if (IGNORED[key] !== undefined) {
        notes.push(`${path}: [${key}] is ignored: ${IGNORED[key]}`);
        continue;
      }
      if (key === 'pscache') {
        if (!isTable(value)) throw fail(key, 'must be a table of PARAMETERS_SECRETS_EXTENSION_... = value');
        for (const [variable, v] of Object.entries(value)) {
          const own = OWN.get(variable);
          if (own === undefined) throw fail(`pscache.${variable}`, unknownOwn(variable));
          values.set(own, { key: `pscache.${variable}`, value: v });
        }
        continue;
      }
      if (nested && FLAT.has(key)) {
        const full = (SETTINGS[FLAT.get(key)!] as Setting<unknown>).toml;
        throw fail(
          key,
          `is a flat key, which cannot be combined with [logging] or [capabilities]; use ${full}`,
        );
      }
      const children = childrenOf(keys, key);
      if (children.length > 0) {
        if (!isTable(value)) throw fail(key, `must be a table of ${children.join(', ')}`);
        walk(value, key);
        continue;
      }
      const siblings = childrenOf(keys, prefix).concat(prefix === '' ? ['pscache'] : []);
      throw fail(
        key,
        `is not a known key; allowed${prefix === '' ? ' at the top' : ` under [${prefix}]`}: ${siblings.join(', ')}`,
      );
    }
  };
  walk(doc, '');
  if (values.get('logToFile')?.value === true) {
    notes.push(`${path}: ${values.get('logToFile')!.key} is ignored: pscache logs to stderr`);
  }
  return { path, values, notes };
}

/** The next segment of every known key under `prefix` (or at the top), plus the tables that are ignored. */
function childrenOf(keys: Map<string, SettingId>, prefix: string): string[] {
  const out = new Set<string>();
  const all = [...keys.keys(), ...Object.keys(IGNORED)];
  for (const k of all) {
    if (prefix === '') out.add(k.split('.')[0]!);
    else if (k.startsWith(`${prefix}.`)) out.add(k.slice(prefix.length + 1).split('.')[0]!);
  }
  return [...out];
}

function unknownOwn(variable: string): string {
  const mapped = SETTING_LIST.find(([, s]) => s.env === variable);
  if (mapped?.[1].toml !== undefined) return `is set in this file as ${mapped[1].toml}`;
  if (mapped?.[1].secret)
    return 'is not read from a file: set it in the environment (a value or file:///path)';
  if (mapped) return 'is not read from a file: set it in the environment';
  return `is not a pscache setting; allowed in [pscache]: ${[...OWN.keys()].join(', ')}`;
}
