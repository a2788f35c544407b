/** nfvm's library entry point. */
export * from './compiler/index.js';
export { compileTable, type CompileOptions, type CompiledTable } from './compiler/compile.js';
export { vmTable, type VmTableOptions } from './engine/vm-table.js';
export { referenceTable } from './engine/reference/index.js';
export { TraceKind, type TableEngine, type TraceEvent, type Count } from './engine/engine.js';
export { type EngineOptions } from './ext/types.js';
export { Packet, decodePacket, setDevice, resetMeta, LINKTYPE_ETHERNET, LINKTYPE_RAW, LINKTYPE_IPV4, LINKTYPE_IPV6 } from './vm/packet.js';
export { disasm } from './vm/disasm.js';
export { NF_ACCEPT, NF_DROP, NF_QUEUE, NF_STOLEN } from './core/netfilter.js';
export { nfvmArbitraries, type FastCheckApi, type ArbPacket, type ArbSnapshot } from './fuzz/arbitraries.js';
export { type GenRuleset } from './fuzz/gen.js';
export { type FuzzPacket, specText } from './fuzz/packet.js';
