import { invalidItem } from '../errors.js';

/** DynamoDB N limits: 38 significant digits, magnitude in [1E-130, 9.99…E+125] (or zero). */
export const MAX_SIGNIFICANT_DIGITS = 38;
const MIN_EXPONENT = -130;
const MAX_EXPONENT = 125;
/**
 * Plain-decimal output is refused beyond this length so that inputs like "1e999999999"
 * cannot make us build enormous strings; every valid DynamoDB number is far shorter.
 */
const MAX_PLAIN_LENGTH = 1000;

const DECIMAL = /^(-)?(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?$/;

/** A decimal as sign, significant digits (no leading/trailing zeros) and power of ten. */
interface Decimal {
  negative: boolean;
  digits: string;
  exponent: number;
}

function parseDecimal(s: string): Decimal | null {
  const m = DECIMAL.exec(s);
  if (m === null) return null;
  const [, sign, int, frac = '', exp = '0'] = m;
  let digits = (int + frac).replace(/^0+/, '');
  let exponent = Number(exp) - frac.length;
  const trimmed = digits.replace(/0+$/, '');
  exponent += digits.length - trimmed.length;
  digits = trimmed;
  if (digits === '') return { negative: false, digits: '', exponent: 0 };
  return { negative: sign === '-', digits, exponent };
}

function formatPlain(d: Decimal): string | null {
  if (d.digits === '') return '0';
  const { digits, exponent } = d;
  if (Math.abs(exponent) + digits.length > MAX_PLAIN_LENGTH) return null;
  let body: string;
  if (exponent >= 0) {
    body = digits + '0'.repeat(exponent);
  } else if (-exponent < digits.length) {
    body = `${digits.slice(0, exponent)}.${digits.slice(exponent)}`;
  } else {
    body = `0.${'0'.repeat(-exponent - digits.length)}${digits}`;
  }
  return d.negative ? `-${body}` : body;
}

/** Why a parsed decimal is outside DynamoDB's N range, or null if it fits. */
function limitViolation(d: Decimal): string | null {
  if (d.digits === '') return null;
  if (d.digits.length > MAX_SIGNIFICANT_DIGITS) {
    return `more than ${MAX_SIGNIFICANT_DIGITS} significant digits`;
  }
  // Exponent of the leading digit in scientific notation.
  const leading = d.exponent + d.digits.length - 1;
  if (leading > MAX_EXPONENT) return 'magnitude above 9.9999999999999999999999999999999999999E+125';
  if (leading < MIN_EXPONENT) return 'non-zero magnitude below 1E-130';
  return null;
}

/**
 * Canonical plain decimal (no exponent, no leading zeros, no trailing fractional zeros,
 * `-0` → `0`), or null when `s` is not a JSON-style number (or absurdly long in plain form).
 */
export function normalizeDecimal(s: string): string | null {
  const d = parseDecimal(s);
  return d === null ? null : formatPlain(d);
}

/** A JSON number or decimal string as a canonical DynamoDB N string; invalidItem otherwise. */
/**
 * A JSON number literal that a double cannot hold, kept as its exact decimal text so that numbers
 * nested in M/L/json values are stored as N without rounding (see http/json-body.ts).
 */
export class ExactNumber {
  readonly decimal: string;
  constructor(decimal: string) {
    this.decimal = decimal;
  }
  toJSON(): string {
    return this.decimal;
  }
}

export function toN(value: unknown, path: string): string {
  let text: string;
  if (value instanceof ExactNumber) {
    text = value.decimal;
  } else if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw invalidItem(`${path}: expected a finite number`, path);
    text = String(value);
    // Without an exponent, a double's shortest form is already canonical (no leading or trailing zeros, -0 is
    // "0") and inside DynamoDB's range: 1e-7 < |value| < 1e21, at most 17 significant digits.
    if (!text.includes('e')) return text;
  } else if (typeof value === 'string') {
    text = value;
  } else {
    throw invalidItem(`${path}: expected a number or decimal string`, path);
  }
  const d = parseDecimal(text);
  if (d === null) throw invalidItem(`${path}: expected a number or decimal string`, path);
  const violation = limitViolation(d);
  if (violation !== null) throw invalidItem(`${path}: number out of DynamoDB range (${violation})`, path);
  const plain = formatPlain(d);
  if (plain === null) throw invalidItem(`${path}: number out of DynamoDB range`, path);
  return plain;
}

/**
 * A stored N as a JS number when the double round-trips to the same decimal,
 * otherwise as its canonical decimal string (never silently rounded).
 */
export function fromN(n: string): number | string {
  // When n is already how JS writes its double ("42", "-7", "12.5"), the answer below is that double: no parsing.
  // (Then normalizeDecimal(n) is the canonical, Number(canonical) is the same double, and it round-trips to n.)
  const quick = Number(n);
  if (Number.isFinite(quick) && String(quick) === n) return quick;
  const canonical = normalizeDecimal(n);
  if (canonical === null) return n;
  const num = Number(canonical);
  if (Number.isFinite(num) && normalizeDecimal(String(num)) === canonical) return num;
  return canonical;
}

/** True when `n` is a decimal string with an integral value (e.g. "10", "1e3", "2.0"). */
export function isInteger(n: string): boolean {
  const d = parseDecimal(n);
  return d !== null && d.exponent >= 0;
}

/** Significant digits of a decimal string (0 for zero or non-numbers); used for size estimates. */
export function significantDigits(n: string): number {
  return parseDecimal(n)?.digits.length ?? 0;
}
