/** The compiler front end: parse, check and print iptables rulesets. */
export { parseRestore, type ParseOptions } from './parse/restore.js';
export { parseCommand, type Command } from './parse/rule.js';
export { splitArgs } from './parse/argv.js';
export { saveString } from '../ext/save.js';
export { saveRuleset, saveRule, saveTable, ruleSpec, type SaveOptions } from './save.js';
export { checkTable, reachability } from './check.js';
export { NfvmError, type SourcePos } from '../core/errors.js';
export * from '../core/ast.js';
export { parseEbtRestore, applyEbtCommands, emptyEbtRuleset, type EbtParseOptions } from './ebt/restore.js';
export { saveEbtRuleset, saveEbtTable, saveEbtRule, ebtRuleSpec, type EbtSaveOptions } from './ebt/save.js';
export * from '../core/ebt-ast.js';
