import fc from 'fast-check';

// Seeded property tests: FC_SEED replays a run, FC_NUM_RUNS scales it.
const seed = process.env.FC_SEED ? Number(process.env.FC_SEED) : 0x6e66766d;
fc.configureGlobal({ seed, numRuns: Number(process.env.FC_NUM_RUNS ?? 100) });
