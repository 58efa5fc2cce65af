// Log lines that fit Lambda: `[pscache] LEVEL message key=value`, or one JSON object per line.
// Callers pass names and numbers only: never secret values or the token.
export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'none';
export type LogFormat = 'text' | 'json';

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, none: 100 };

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
        `${JSON.stringify({ timestamp: new Date().toISOString(), level: lvl.toUpperCase(), logger: 'pscache', message, ...fields })}\n`,
      );
      return;
    }
    let line = `[pscache] ${lvl.toUpperCase()} ${message}`;
    if (fields) {
      for (const [k, v] of Object.entries(fields)) {
        if (v === undefined) continue;
        const s = String(v);
        line += ` ${k}=${/[\s"=]/.test(s) || s === '' ? JSON.stringify(s) : s}`;
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
