import { invalidItem } from '../errors.js';
import { isInteger, toN } from './number.js';

const RFC3339 =
  /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d{2}):(\d{2}))$/;

/** UTC with exactly nine fractional digits, e.g. `2026-01-16T10:20:30.123000000Z`. */
export function formatRfc3339Nano(date: Date): string {
  return date.toISOString().replace(/Z$/, '000000Z');
}

function daysInMonth(year: number, month: number): number {
  if (month === 2) {
    const leap = (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
    return leap ? 29 : 28;
  }
  return [4, 6, 9, 11].includes(month) ? 30 : 31;
}

/**
 * Parses any RFC 3339 timestamp (0–9 fractional digits, `Z` or ±hh:mm offset);
 * null for bad syntax or impossible dates/times. Sub-millisecond digits are truncated.
 */
export function parseRfc3339(s: string): { epochMs: number } | null {
  const m = RFC3339.exec(s);
  if (m === null) return null;
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number);
  const [fraction = '', zulu, sign, offHour = '0', offMinute = '0'] = m.slice(7);
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) return null;
  if (hour > 23 || minute > 59 || second > 59) return null;
  if (Number(offHour) > 23 || Number(offMinute) > 59) return null;

  // setUTCFullYear rather than Date.UTC, which maps years 0–99 to 1900–1999.
  const date = new Date(0);
  date.setUTCFullYear(year, month - 1, day);
  date.setUTCHours(hour, minute, second, Number(fraction.padEnd(3, '0').slice(0, 3)));
  let epochMs = date.getTime();
  if (zulu === undefined) {
    const offsetMs = (Number(offHour) * 60 + Number(offMinute)) * 60_000;
    epochMs -= sign === '-' ? -offsetMs : offsetMs;
  }
  return { epochMs };
}

/**
 * TTL input as integer epoch seconds (decimal string): an integer JSON number or
 * decimal string, or an RFC 3339 timestamp (floored to the second).
 */
export function toEpochSeconds(value: unknown, path: string): string {
  const expected = `${path}: expected integer epoch seconds or an RFC 3339 timestamp`;
  if (typeof value === 'string') {
    const parsed = parseRfc3339(value);
    if (parsed !== null) return toN(Math.floor(parsed.epochMs / 1000), path);
  }
  if (typeof value !== 'number' && typeof value !== 'string') throw invalidItem(expected, path);
  let n: string;
  try {
    n = toN(value, path);
  } catch {
    throw invalidItem(expected, path);
  }
  if (!isInteger(n)) throw invalidItem(expected, path);
  // Read back as a JSON number: past 2^53 it would come back rounded.
  if (!Number.isSafeInteger(Number(n))) throw invalidItem(`${expected} (at most ${Number.MAX_SAFE_INTEGER} in magnitude)`, path);
  return n;
}
