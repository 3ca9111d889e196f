/**
 * Command-line and environment settings, parsed and validated in one place: each setting has a
 * flag, an optional environment name, a default, and a validator whose error names the setting,
 * the value and the fix. Commands call readSettings in main; nothing reads process.env elsewhere.
 */
import { INSTANCE_RE, instanceNames, type InstanceNames } from './keys.ts';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { load } from 'js-yaml';
import { isIPv4, parseCidr } from './ipv4.ts';
import { formatIp, parseIp } from './ip.ts';

export class ConfigError extends Error {}

export interface SettingSpec {
  readonly flag: string;
  readonly env?: readonly string[];
  readonly help: string;
  readonly default?: string;
  readonly required?: boolean;
  /** Boolean switch (no value). */
  readonly bool?: boolean;
}

export type Settings = Record<string, string | undefined>;

export function helpText(usage: string, description: string, specs: readonly SettingSpec[]): string {
  const lines = [`Usage: ${usage}`, '', description, '', 'Options:'];
  for (const s of specs) {
    const env = s.env && s.env.length > 0 ? ` [env ${s.env.join(', ')}]` : '';
    const def = s.default !== undefined ? ` (default ${s.default})` : s.required ? ' (required)' : '';
    lines.push(`  --${s.flag}${s.bool ? '' : ' VALUE'}`.padEnd(30) + `${s.help}${def}${env}`);
  }
  lines.push('  --help'.padEnd(30) + 'show this help');
  return lines.join('\n');
}

/** Keys a configuration file may never hold: credentials come only from a Secret. */
const SECRET_KEYS = /pass(word)?|secret|token|username|user$/i;

/**
 * Reads a YAML configuration file whose keys are the flag names (`overlay-network: ...`).
 * Unknown keys, non-scalar values and credentials are refused with the key named.
 */
export function loadConfigFile(path: string, specs: readonly SettingSpec[]): Settings {
  let raw: unknown;
  try {
    raw = load(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new ConfigError(`--config ${path}: ${err instanceof Error ? err.message.split('\n')[0] ?? '' : String(err)}`);
  }
  if (raw === undefined || raw === null) return {};
  if (typeof raw !== 'object' || Array.isArray(raw)) throw new ConfigError(`--config ${path}: expected a mapping of setting names to values`);
  const known = new Set(specs.map((s) => s.flag));
  const out: Settings = {};
  for (const [key, value] of Object.entries(raw as Record<string, unknown>)) {
    if (SECRET_KEYS.test(key)) throw new ConfigError(`--config ${path}: "${key}" looks like a credential; credentials come only from a Secret (--credentials-dir or the environment), never from a file of settings`);
    if (!known.has(key)) throw new ConfigError(`--config ${path}: unknown setting "${key}" (known: ${[...known].join(', ')})`);
    if (value === null || typeof value === 'object') throw new ConfigError(`--config ${path}: "${key}" must be a single value${Array.isArray(value) ? ' (write a list as a comma-separated string)' : ''}`);
    out[key] = typeof value === 'string' ? value : JSON.stringify(value);
  }
  return out;
}

/** Parses argv against specs; flags win over environment, environment over the file, the file over defaults. */
export function readSettings(argv: readonly string[], specs: readonly SettingSpec[], env: NodeJS.ProcessEnv, file: Settings = {}): { settings: Settings; help: boolean; positionals: string[] } {
  const options: Record<string, { type: 'string' | 'boolean' }> = { help: { type: 'boolean' } };
  for (const s of specs) options[s.flag] = { type: s.bool ? 'boolean' : 'string' };
  let parsed;
  try {
    parsed = parseArgs({ args: [...argv], options, allowPositionals: true, strict: true });
  } catch (err) {
    throw new ConfigError(err instanceof Error ? err.message : String(err));
  }
  const settings: Settings = {};
  for (const s of specs) {
    const v = parsed.values[s.flag];
    const fromFlag = typeof v === 'boolean' ? (v ? 'true' : undefined) : v;
    const fromEnv = (s.env ?? []).map((e) => env[e]).find((x) => x !== undefined && x !== '');
    settings[s.flag] = fromFlag ?? fromEnv ?? file[s.flag] ?? s.default;
  }
  const help = parsed.values.help === true;
  if (!help) {
    for (const s of specs) {
      if (s.required && settings[s.flag] === undefined) {
        throw new ConfigError(`--${s.flag} is required: ${s.help}${s.env ? ` (or set ${s.env.join(' / ')})` : ''}`);
      }
    }
  }
  return { settings, help, positionals: parsed.positionals };
}

/** Whether a setting was given (flag, environment or file) rather than left to its default. */
export function settingGiven(flag: string, specs: readonly SettingSpec[], argv: readonly string[], env: NodeJS.ProcessEnv, file: Settings = {}): boolean {
  const spec = specs.find((s) => s.flag === flag);
  if (argv.some((a) => a === `--${flag}` || a.startsWith(`--${flag}=`))) return true;
  if ((spec?.env ?? []).some((e) => env[e] !== undefined && env[e] !== '')) return true;
  return file[flag] !== undefined;
}

export function intSetting(settings: Settings, flag: string, min: number, max: number): number {
  const raw = settings[flag] ?? '';
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || n < min || n > max) throw new ConfigError(`--${flag}=${JSON.stringify(raw)} is invalid: expected a whole number from ${min} to ${max}`);
  return n;
}

export function optionalInt(settings: Settings, flag: string, min: number, max: number): number | undefined {
  return settings[flag] === undefined ? undefined : intSetting(settings, flag, min, max);
}

export function durationMsSetting(settings: Settings, flag: string): number {
  const raw = settings[flag] ?? '';
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(raw);
  if (!m) throw new ConfigError(`--${flag}=${JSON.stringify(raw)} is invalid: expected a duration such as 500ms, 15s or 5m`);
  const n = Number(m[1]);
  return Math.round(m[2] === 'ms' ? n : m[2] === 'm' ? n * 60_000 : n * 1000);
}

/** An IPv4 or IPv6 address (IPv6 in canonical text). */
export function ipSetting(settings: Settings, flag: string): string {
  const raw = (settings[flag] ?? '').trim();
  if (isIPv4(raw)) return raw;
  try {
    const a = parseIp(raw);
    if (a.family === 6) return formatIp(a);
  } catch {
    // named below
  }
  throw new ConfigError(`--${flag}=${JSON.stringify(settings[flag] ?? '')} is not an IPv4 or IPv6 address`);
}

export function cidrSetting(settings: Settings, flag: string): string {
  const raw = settings[flag] ?? '';
  try {
    parseCidr(raw);
  } catch (err) {
    throw new ConfigError(`--${flag}=${JSON.stringify(raw)} is invalid: ${err instanceof Error ? err.message : String(err)}`);
  }
  return raw;
}

export function choiceSetting<T extends string>(settings: Settings, flag: string, choices: readonly T[]): T {
  const raw = settings[flag] ?? '';
  const found = choices.find((c) => c === raw);
  if (found === undefined) throw new ConfigError(`--${flag}=${JSON.stringify(raw)} is invalid: expected one of ${choices.join(', ')}`);
  return found;
}

/** The instance setting every command takes (several instances per cluster: shared/keys.ts). */
export const INSTANCE_SPEC: SettingSpec = {
  flag: 'instance', env: ['CHORUS_INSTANCE'],
  help: 'instance name, for several instances in one cluster (one per device): 1 to 4 characters, a lower-case letter then letters or digits; prefixes the Lease, ConfigMaps, annotation and label keys, nftables table and VXLAN device; default: none (the names without a prefix)',
};

/** The names of the instance the settings choose. */
export function instanceNamesFrom(settings: Settings): InstanceNames {
  const instance = settings.instance ?? '';
  if (instance !== '' && !INSTANCE_RE.test(instance)) throw new ConfigError(`--instance ${JSON.stringify(instance)} must be 1 to 4 characters: a lower-case letter, then lower-case letters or digits (it becomes part of the VXLAN device name, at most 15 characters)`);
  return instanceNames(instance);
}
