/**
 * core/addr.ts: the one address and MAC text parser/printer. inet_aton cases
 * follow glibc's inet_aton_end()/__inet_aton_exact() (resolv/inet_addr.c).
 */
import { describe, expect, it } from 'vitest';
import { formatIPv6, formatMac, inetAton, parseIPv4, parseIPv6, parseMac } from '../../core/addr.js';

const q = (a: Uint8Array | undefined) => (a ? [...a].join('.') : undefined);

describe('core/addr', () => {
  it('parses dotted decimal, with fewer parts only when asked (xtables numeric_to_ipaddr)', () => {
    expect(q(parseIPv4('10.1.2.3'))).toBe('10.1.2.3');
    expect(parseIPv4('10.1')).toBeUndefined();
    expect(q(parseIPv4('10.1', 1))).toBe('10.1.0.0');
    expect(parseIPv4('256.1.1.1')).toBeUndefined();
    expect(parseIPv4('1.2.3.4.5', 1)).toBeUndefined();
    expect(parseIPv4('0x1.2.3.4')).toBeUndefined();
  });

  it('takes inet_aton forms: C bases, a last part that fills the rest', () => {
    expect(q(inetAton('1.2.3'))).toBe('1.2.0.3');
    expect(q(inetAton('1'))).toBe('0.0.0.1');
    expect(q(inetAton('0x7f.1'))).toBe('127.0.0.1');
    expect(q(inetAton('010.0.0.1'))).toBe('8.0.0.1');
    expect(q(inetAton('0x.1'))).toBe('0.0.0.1'); // only the last part needs a digit after its prefix
    expect(inetAton('1.0x')).toBeUndefined();
    expect(inetAton('08.1')).toBeUndefined();
    expect(inetAton('1.2.3.4.5')).toBeUndefined();
    expect(inetAton('1.256.1')).toBeUndefined();
    expect(inetAton('1.2.65536')).toBeUndefined();
    expect(inetAton('4294967296')).toBeUndefined();
    expect(inetAton('1.2.3.4 ')).toBeUndefined();
    expect(inetAton('')).toBeUndefined();
  });

  it('parses and prints IPv6 as glibc inet_ntop does', () => {
    expect(formatIPv6(parseIPv6('2001:db8:0:0:1::1')!)).toBe('2001:db8::1:0:0:1');
    expect(formatIPv6(parseIPv6('::ffff:10.0.0.2')!)).toBe('::ffff:10.0.0.2');
    expect(formatIPv6(parseIPv6('::2')!)).toBe('::2');
    expect(formatIPv6(parseIPv6('::1.2.3.4')!)).toBe('::1.2.3.4');
    expect(formatIPv6(parseIPv6('1:0:1:0:1:0:1:0')!)).toBe('1:0:1:0:1:0:1:0');
    expect(parseIPv6('1::2::3')).toBeUndefined();
    expect(parseIPv6('::1.2.3')).toBeUndefined();
  });

  it('parses and prints MAC addresses', () => {
    expect(formatMac(parseMac('02:00:0A:00:00:01')!)).toBe('02:00:0a:00:00:01');
    expect(formatMac(parseMac('02-00-0a-00-00-01')!)).toBe('02:00:0a:00:00:01');
    expect(parseMac('2:0:a:0:0:1')).toBeUndefined();
    expect(parseMac('02:00:0a:00:00')).toBeUndefined();
    expect(parseMac('0.0.0.0')).toBeUndefined();
  });
});
