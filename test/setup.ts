import fc from 'fast-check';

import { runs } from './helpers/runs.js';

// Seeded property tests: FC_SEED replays a run; NFVM_PROPERTY_SCALE scales every run count (test/helpers/runs.ts).
const seed = process.env.FC_SEED ? Number(process.env.FC_SEED) : 0x6e66766d;
fc.configureGlobal({ seed, numRuns: runs(100) });
