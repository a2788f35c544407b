/**
 * nfvm's VM core: nftables-style bytecode in typed arrays.
 *
 *   layout.ts    kernel constants, register/verdict numbering, metadata record layout
 *   opcodes.ts   the opcode table (Op, OP_INFO)
 *   expr/*.ts    one file per expression kind: layout, emit, validate, disasm, eval
 *   builder.ts   the emitter the compiler uses
 *   validate.ts  the load-time verifier
 *   interp.ts    nftDoChain(): the interpreter
 *   jit/         the execution tier: JavaScript generated per chain from the verified bytecode
 *   interp-slow.ts  nftDoChainSlow(): the slow interpreter (one eval per expression): traces, the oracle
 *   disasm.ts    `nft --debug=netlink` text
 *   packet.ts    packet buffer, metadata record, decodePacket()
 *   set.ts       set objects for lookup
 */
export * from './layout.js';
export { Op, OP_INFO, OP_MAX, opOf, opSize, type OpInfo, type OperandKind, Rec } from './opcodes.js';
export * from './program.js';
export * from './packet.js';
export * from './ct-env.js';
export { NftSet, cmpBytes } from './set.js';
export { ProgramBuilder, resetState, type ChainOptions, type FinishOptions, type SourcePos } from './builder.js';
export { validate } from './validate.js';
export { nftDoChain, Vm, type VmTier } from './interp.js';
export { jitCode, jitDoChain, jitMode, type JitCode, type JitMode } from './jit/index.js';
export { nftDoChainSlow } from './interp-slow.js';
export { disasm, disasmChain, disasmRuleAt } from './disasm.js';
export * from './expr/index.js';
