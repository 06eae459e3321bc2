/**
 * kube's ip and cidr libraries (k8s.io/apiserver pkg/cel/library/ip.go,
 * cidr.go), on Go's net/netip semantics (./netip.ts). kube refuses, where
 * netip would accept them, IPv4-mapped IPv6 addresses (`::ffff:1.2.3.4`) and,
 * for ip(), zones (`fe80::1%eth0`).
 */
import type { Environment } from '@marcbachmann/cel-js';
import * as netip from './netip.js';
import { KubeValue, registerKubeType } from './opaque.js';

/** cel-go's net.IP: a netip.Addr. */
export class IP extends KubeValue {
  constructor(readonly addr: netip.Addr) {
    super();
  }
  override equals(other: KubeValue): boolean {
    return other instanceof IP && netip.addrEqual(this.addr, other.addr);
  }
  override toString(): string {
    return netip.addrString(this.addr);
  }
}

/** cel-go's net.CIDR: a netip.Prefix, unmasked as written. */
export class CIDR extends KubeValue {
  constructor(readonly prefix: netip.Prefix) {
    super();
  }
  override equals(other: KubeValue): boolean {
    return other instanceof CIDR && netip.prefixEqual(this.prefix, other.prefix);
  }
  override toString(): string {
    return netip.prefixString(this.prefix);
  }
}

/** The receiver of `ip.isCanonical(string)`; `ip` is also the function ip(string). */
export class IpNamespace {}

/** kube's parseIPAddr: netip.ParseAddr, without a zone or an IPv4-mapped IPv6 address. */
function parseIP(raw: string): netip.Addr {
  let addr: netip.Addr;
  try {
    addr = netip.parseAddr(raw);
  } catch (err) {
    throw new Error(`IP Address ${JSON.stringify(raw)} parse error during conversion from string: ${(err as Error).message}`, { cause: err });
  }
  if (addr.zone !== '') throw new Error(`IP address ${JSON.stringify(raw)} with zone value is not allowed`);
  if (netip.is4In6(addr)) throw new Error(`IPv4-mapped IPv6 address ${JSON.stringify(raw)} is not allowed`);
  return addr;
}

/** kube's parseCIDR: netip.ParsePrefix, without an IPv4-mapped IPv6 address. */
function parseCIDR(raw: string): netip.Prefix {
  let prefix: netip.Prefix;
  try {
    prefix = netip.parsePrefix(raw);
  } catch (err) {
    throw new Error(`network address parse error during conversion from string: ${(err as Error).message}`, { cause: err });
  }
  if (netip.is4In6(prefix.addr)) throw new Error(`IPv4-mapped IPv6 address ${JSON.stringify(raw)} is not allowed`);
  return prefix;
}

const succeeds = (parse: () => unknown) => {
  try {
    parse();
    return true;
  } catch {
    return false;
  }
};

export function registerIP(env: Environment): void {
  registerKubeType(env, 'net.IP', IP);
  registerKubeType(env, 'net.CIDR', CIDR);
  env.registerType('IpNamespace', IpNamespace);
  env.registerConstant('ip', 'IpNamespace', new IpNamespace());

  env.registerFunction('ip(string): net.IP', (s: string) => new IP(parseIP(s)));
  env.registerFunction('isIP(string): bool', (s: string) => succeeds(() => parseIP(s)));
  env.registerFunction('IpNamespace.isCanonical(string): bool', (_: IpNamespace, s: string) => netip.addrString(parseIP(s)) === s);
  env.registerFunction('string(net.IP): string', (ip: IP) => ip.toString());
  env.registerFunction('net.IP.family(): int', (ip: IP) => (netip.is4(ip.addr) ? 4n : 6n));
  env.registerFunction('net.IP.isUnspecified(): bool', (ip: IP) => netip.isUnspecified(ip.addr));
  env.registerFunction('net.IP.isLoopback(): bool', (ip: IP) => netip.isLoopback(ip.addr));
  env.registerFunction('net.IP.isLinkLocalMulticast(): bool', (ip: IP) => netip.isLinkLocalMulticast(ip.addr));
  env.registerFunction('net.IP.isLinkLocalUnicast(): bool', (ip: IP) => netip.isLinkLocalUnicast(ip.addr));
  env.registerFunction('net.IP.isGlobalUnicast(): bool', (ip: IP) => netip.isGlobalUnicast(ip.addr));

  env.registerFunction('cidr(string): net.CIDR', (s: string) => new CIDR(parseCIDR(s)));
  env.registerFunction('isCIDR(string): bool', (s: string) => succeeds(() => parseCIDR(s)));
  env.registerFunction('string(net.CIDR): string', (cidr: CIDR) => cidr.toString());
  env.registerFunction('net.CIDR.containsIP(net.IP): bool', (cidr: CIDR, ip: IP) => netip.contains(cidr.prefix, ip.addr));
  env.registerFunction('net.CIDR.containsIP(string): bool', (cidr: CIDR, s: string) => netip.contains(cidr.prefix, parseIP(s)));
  // cidr.go: contained when they overlap and the other is no shorter.
  const containsCIDR = (cidr: CIDR, other: netip.Prefix) => netip.overlaps(cidr.prefix, other) && cidr.prefix.bits <= other.bits;
  env.registerFunction('net.CIDR.containsCIDR(net.CIDR): bool', (cidr: CIDR, other: CIDR) => containsCIDR(cidr, other.prefix));
  env.registerFunction('net.CIDR.containsCIDR(string): bool', (cidr: CIDR, s: string) => containsCIDR(cidr, parseCIDR(s)));
  env.registerFunction('net.CIDR.ip(): net.IP', (cidr: CIDR) => new IP(cidr.prefix.addr));
  env.registerFunction('net.CIDR.prefixLength(): int', (cidr: CIDR) => BigInt(cidr.prefix.bits));
  env.registerFunction('net.CIDR.masked(): net.CIDR', (cidr: CIDR) => new CIDR(netip.masked(cidr.prefix)));
}
