import { it } from 'vitest';
import { readFileSync } from 'node:fs';
import { parseRestore } from '../compiler/parse/restore.js';
import { saveRuleset } from '../compiler/save.js';
it('probe', () => {
  console.log(saveRuleset(parseRestore(readFileSync('/tmp/dk/p.txt', 'utf8')), { comments: false }));
});
