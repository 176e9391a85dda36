/** Durations in definitions: seconds, or a number with a unit (s, m, h, d). Chain time is in seconds. */
import type { Duration } from '../model/definition';

const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };
export const DURATION_PATTERN = /^([0-9]{1,9})([smhd])$/;

/** Seconds in a duration, or undefined when it is not one. */
export function durationSeconds(duration: Duration): number | undefined {
  if (typeof duration === 'number') return Number.isInteger(duration) && duration >= 0 ? duration : undefined;
  const match = DURATION_PATTERN.exec(duration);
  if (!match) return undefined;
  return Number(match[1]) * UNIT_SECONDS[match[2]!]!;
}
