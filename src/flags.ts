// Command-line flags, the same for every command: `--name value` or `--name=value`, and switches.

/** A mistake on the command line (or in what it names): exit 2 with one line saying what is wrong. */
export class UsageError extends Error {}

/**
 * `values` take a value, `switches` none (a present switch maps to ''). Anything else, a value missing or
 * empty, or a value given to a switch is a UsageError naming it and what is allowed.
 */
export function parseFlags(
  args: readonly string[],
  values: readonly string[],
  switches: readonly string[] = [],
): Record<string, string> {
  const flags: Record<string, string> = {};
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const eq = a.indexOf('=');
    const name = eq === -1 ? a : a.slice(0, eq);
    if (switches.includes(name)) {
      if (eq !== -1) throw new UsageError(`${name} takes no value`);
      flags[name] = '';
      continue;
    }
    if (!values.includes(name)) {
      const allowed = [...values, ...switches];
      throw new UsageError(`unknown argument ${JSON.stringify(a)}; allowed: ${allowed.join(', ') || 'none'}`);
    }
    const value = eq === -1 ? args[++i] : a.slice(eq + 1);
    if (value === undefined || value === '') throw new UsageError(`${name} needs a value`);
    flags[name] = value;
  }
  return flags;
}
