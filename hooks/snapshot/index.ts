/** Node snapshots: reading (read.ts), capturing (capture.ts), the Node model (node.ts). */
export { readSnapshot, buildNode, backendOf, SNAPSHOT_FILES } from './read.js';
export { captureSnapshot, CaptureError, CAPTURE_COMMANDS, type CaptureReport, type Runner } from './capture.js';
export { Node, type Address, type Link, type RulesetText } from './node.js';
export { type Backend } from '../../core/netfilter.js';
export { Sysctls, parseSysctl } from './sysctl.js';
export { parseJson } from './json.js';
