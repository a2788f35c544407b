/**
 * The kernel's expected cost per first packet of kube-proxy's modes, from
 * a model calibrated on this machine's kernel:
 *
 *   cost(mode) = rules walked x per-rule cost
 *
 * The per-rule costs are the slopes bench/kernel.ts measures in a network
 * namespace (x_tables for iptables mode, nf_tables for the nftables mode's
 * rules and map lookups, each counted as one rule). "Rules walked" is
 * kube.ts's count for the packet (in iptables mode the Service's position
 * in KUBE-SERVICES dominates). What the model leaves out, and so what it
 * underestimates by a constant: conntrack's lookup and insertion, NAT
 * setup, routing and the rest of the stack (the same in every mode).
 *
 * Calibration (`node dist/bench.mjs kernel-model`) needs root, ip, cc and
 * the iptables/nft loaders; it writes bench/results/kernel-model.json, which
 * `--kernel-model` reads; without it and without root the model says why.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { benchKernel } from './kernel.js';

const FILE = 'bench/results/kernel-model.json';

export interface KernelModel {
  xtNsPerRule: number;
  nftNsPerRule: number;
  calibrated: string;
  describe: string;
  predict(mode: string, rulesWalked: number): number;
}

interface Calibration {
  xtNsPerRule: number;
  nftNsPerRule: number;
  calibrated: string;
}

/** Measures the per-rule costs (bench/kernel.ts) and stores them; the reason when it cannot. */
export function calibrate(): Calibration | string {
  const rows = benchKernel();
  if (typeof rows === 'string') return rows;
  const xt = rows.find((r) => r.backend.startsWith('x_tables'))!;
  const nft = rows.find((r) => r.backend === 'nf_tables (nft)')!;
  const c = { xtNsPerRule: xt['ns/rule median'], nftNsPerRule: nft['ns/rule median'], calibrated: new Date().toISOString() };
  mkdirSync('bench/results', { recursive: true });
  writeFileSync(FILE, JSON.stringify(c, null, 2) + '\n');
  return c;
}

export function kernelModel(): KernelModel | string {
  let c: Calibration | string;
  if (existsSync(FILE)) c = JSON.parse(readFileSync(FILE, 'utf8')) as Calibration;
  else c = calibrate();
  if (typeof c === 'string') return `not calibrated (${c}); run node dist/bench.mjs kernel-model as root`;
  const cal = c;
  return {
    ...cal,
    describe: `rules walked x ${cal.xtNsPerRule} ns (x_tables) or ${cal.nftNsPerRule} ns (nf_tables) per rule, calibrated ${cal.calibrated} (bench/kernel-model.ts); conntrack, NAT and the stack not included`,
    predict: (mode: string, walked: number): number => Math.round(walked * (mode === 'nftables' || mode === 'ipvs' ? cal.nftNsPerRule : cal.xtNsPerRule)),
  };
}
