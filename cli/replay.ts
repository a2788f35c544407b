/**
 * `nfvm replay SNAPSHOT --pcap FILE --iface NAME`: every frame of the
 * capture in on interface NAME, in order, through the node; then the
 * ruleset with the counters the kernel would show, as `iptables-save -c`
 * prints it (counters start at zero, as after iptables-restore).
 */
import { parseArgs } from 'node:util';
import { NfvmError } from '../core/errors.js';
import { saveRuleset } from '../compiler/save.js';
import { captureCt } from '../hooks/node.js';
import { loadFrame, readCaptureFile } from '../hooks/input/capture.js';
import { Packet, resetMeta } from '../vm/packet.js';
import { CliUsageError, MODEL_OPTIONS, frameIface, loadModel } from './trace.js';

export const REPLAY_USAGE = `  nfvm replay SNAPSHOT --pcap FILE [--iface NAME] [--save iptables|ip6tables]
              [--engine vm|reference] [--backend legacy|nft] [--optimize=0|1]
      Feed every frame of the capture (pcap or pcapng) in on interface NAME
      (default: the pcapng interface of each frame), in order, and print the
      ruleset with its counters as \`iptables-save -c\` would on the node
      (--save ip6tables: the ip6tables ruleset, as \`ip6tables-save -c\`).
`;

export function cmdReplay(argv: string[]): string {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      pcap: { type: 'string' },
      iface: { type: 'string' },
      save: { type: 'string' },
      ...MODEL_OPTIONS,
    },
  });
  if (positionals.length !== 1) throw new CliUsageError('replay takes exactly one SNAPSHOT directory');
  if (values.pcap === undefined) throw new CliUsageError('replay needs --pcap FILE');
  const save = values.save ?? 'iptables';
  if (save !== 'iptables' && save !== 'ip6tables') throw new CliUsageError(`--save takes iptables or ip6tables, not "${save}"`);
  const model = loadModel(positionals[0]!, values);
  if (values.iface !== undefined && !model.node.links.has(values.iface)) {
    throw new CliUsageError(`no interface ${values.iface} in the snapshot (it has ${[...model.node.links.keys()].join(', ')})`);
  }
  const file = values.pcap;
  const pkt = new Packet();
  const progress = process.stderr.isTTY === true;
  let n = 0;
  let last = Date.now();
  for (const f of readCaptureFile(file)) {
    n++;
    const iif = frameIface(model, f, values.iface, file);
    if (!model.node.links.has(iif)) throw new NfvmError('value', `frame ${n} came in on ${iif}, which the snapshot does not have`, file, undefined, iif);
    resetMeta(pkt);
    if (!loadFrame(pkt, f)) continue;
    captureCt(model, pkt);
    model.receive(pkt, iif);
    if (progress && (n & 1023) === 0 && Date.now() - last > 200) {
      last = Date.now();
      process.stderr.write(`\rnfvm replay: ${n} frames`);
    }
  }
  if (progress && n >= 1024) process.stderr.write(`\rnfvm replay: ${n} frames\n`);
  if (save === 'ip6tables') {
    const rs6 = model.rulesetWithCounters('ip6');
    if (!rs6) throw new NfvmError('io', 'no ip6tables-save.txt in the snapshot', model.node.dir, undefined, undefined);
    return saveRuleset(rs6, { counters: true });
  }
  const rs = model.rulesetWithCounters();
  if (!rs) throw new NfvmError('io', 'no iptables-save.txt in the snapshot', model.node.dir, undefined, undefined);
  return saveRuleset(rs, { counters: true });
}
