/**
 * How many cases a property or a generated kernel test runs: its base
 * count (the weight it had when it was written) times NFVM_PROPERTY_SCALE
 * (default 1). Under CI (env CI set) the scale is at least 1, so CI never
 * runs fewer cases than the bases; locally `NFVM_PROPERTY_SCALE=0.1` gives
 * a quick pass and `=10` a long one. FC_SEED (test/setup.ts) replays a run.
 */
const raw = process.env.NFVM_PROPERTY_SCALE;
const parsed = raw === undefined || raw === '' ? 1 : Number(raw);
if (!Number.isFinite(parsed) || parsed <= 0) throw new Error(`NFVM_PROPERTY_SCALE must be a positive number, not "${raw}"`);
/** The scale in force. */
export const PROPERTY_SCALE = process.env.CI ? Math.max(1, parsed) : parsed;

/** `base` cases scaled by NFVM_PROPERTY_SCALE, at least 1. */
export function runs(base: number): number {
  return Math.max(1, Math.round(base * PROPERTY_SCALE));
}

/** A test's timeout for `ms` at scale 1, longer in proportion at a larger scale (never shorter). */
export function scaled(ms: number): number {
  return Math.round(ms * Math.max(1, PROPERTY_SCALE));
}
