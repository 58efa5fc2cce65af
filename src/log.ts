// Log lines that fit Lambda: `[pscache] LEVEL message key=value`, or one JSON object per line.
// Callers pass names and numbers only: never secret values or the token.
export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'none';
export type LogFormat = 'text' | 'json';

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, none: 100 };

/**
 * Characters a log reader may take for the end of a line, or a terminal may act on: C0 controls, DEL, C1
 * controls (U+0085 is NEL), and the Unicode line and paragraph separators. A name holding one could
 * otherwise forge what looks like a line of its own.
 */
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are exactly what is escaped
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;
const CONTROLS = new RegExp(CONTROL.source, 'g');
/** What JSON.stringify leaves raw of those: it escapes only C0, `"` and `\`. */
const JSON_LEAVES = /[\u007f-\u009f\u2028\u2029]/g;
/** A text-format value is quoted when it holds any of these, or a control character, or is empty. */
const NEEDS_QUOTES = /[\s"=\\]/;

const uEscape = (c: string) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;

/** JSON.stringify, with every control character and separator escaped as \uXXXX. */
const jsonLine = (value: unknown): string => JSON.stringify(value).replace(JSON_LEAVES, uEscape);

/** A text-format value: bare when that is unambiguous, else a JSON string literal (parse it back with JSON.parse). */
function textValue(s: string): string {
  return s === '' || NEEDS_QUOTES.test(s) || CONTROL.test(s) ? jsonLine(s) : s;
}

export type Fields = Record<string, string | number | boolean | undefined>;

export interface Logger {
  readonly level: LogLevel;
  enabled(level: Exclude<LogLevel, 'none'>): boolean;
  debug(message: string, fields?: Fields): void;
  info(message: string, fields?: Fields): void;
  warn(message: string, fields?: Fields): void;
  error(message: string, fields?: Fields): void;
}

export function createLogger(
  level: LogLevel,
  format: LogFormat,
  write: (line: string) => void = (line) => process.stderr.write(line),
): Logger {
  const min = RANK[level];
  const emit = (lvl: Exclude<LogLevel, 'none'>, message: string, fields?: Fields) => {
    if (RANK[lvl] < min) return;
    if (format === 'json') {
      write(
        `${jsonLine({ timestamp: new Date().toISOString(), level: lvl.toUpperCase(), logger: 'pscache', message, ...fields })}\n`,
      );
      return;
    }
    let line = `[pscache] ${lvl.toUpperCase()} ${message.replace(CONTROLS, uEscape)}`;
    if (fields) {
      for (const [k, v] of Object.entries(fields)) {
        if (v === undefined) continue;
        line += ` ${k}=${textValue(String(v))}`;
      }
    }
    write(`${line}\n`);
  };
  return {
    level,
    enabled: (lvl) => RANK[lvl] >= min,
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
  };
}

/** A logger that drops everything (library use, tests of pure functions). */
export const silentLogger: Logger = createLogger('none', 'text', () => {});
