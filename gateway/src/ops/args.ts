// Option parsing shared by the operations commands: `--name VALUE` options, flags, one positional FILE.
export interface ParsedArgs { options: Record<string, string>; flags: Set<string>; positional: string[] }

export class UsageError extends Error {}

export function parseArgs(args: string[], valued: string[], flags: string[] = []): ParsedArgs {
  const out: ParsedArgs = { options: {}, flags: new Set(), positional: [] };
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (valued.includes(a)) {
      const v = args[++i];
      if (v === undefined || v.startsWith('--')) throw new UsageError(`${a} needs a value`);
      out.options[a] = v;
    } else if (flags.includes(a)) {
      out.flags.add(a);
    } else if (a.startsWith('-')) {
      throw new UsageError(`unknown option ${a}`);
    } else {
      out.positional.push(a);
    }
  }
  return out;
}
