/**
 * Where webhooks may be sent. A webhook makes the node itself send a request to a URL an app
 * chose, from inside the node's network: without a rule, an app could aim it at the cloud's
 * metadata service or at an internal address, and read from the delivery status whether
 * something answers there. So:
 *
 * - never to an address no receiver has: unspecified, link-local (the metadata services live
 *   there), multicast, broadcast or reserved ranges, nor the cloud metadata addresses outside them,
 *   nor an IPv6 address that reaches one of those through NAT64, 6to4 or Teredo;
 * - with `LOCKSTEP_WEBHOOK_ALLOW` set, only to the host names (`hooks.example.com`,
 *   `*.example.com`) and address ranges (`10.20.0.0/16`, `2001:db8::/32`, `127.0.0.1`) it lists.
 *   A range listed there is allowed even where the first rule would refuse it.
 *
 * Checked when a subscription is made (an address in its URL, a host name against the list) and
 * again for every delivery, on the address the host name resolves to at that moment: a name that
 * resolves to a refused address is refused however it resolved before.
 */
import { lookup as dnsLookup } from 'node:dns';
import type { LookupFunction } from 'node:net';
import ipaddr from 'ipaddr.js';

type Address = ipaddr.IPv4 | ipaddr.IPv6;

const NEVER_RANGES = new Set(['unspecified', 'linkLocal', 'multicast', 'broadcast', 'reserved']);
/** Metadata services outside the link-local range: AWS's IPv6 address, Alibaba Cloud's. */
const METADATA_ADDRESSES = ['fd00:ec2::254', '100.100.100.200'].map((a) => ipaddr.parse(a).toNormalizedString());

export interface WebhookAllowList {
  hosts: string[];
  ranges: [Address, number][];
}

/** The entries of LOCKSTEP_WEBHOOK_ALLOW, comma-separated; throws naming an entry that is neither a host name nor an address range. */
export function parseWebhookAllowList(text: string): WebhookAllowList {
  const list: WebhookAllowList = { hosts: [], ranges: [] };
  for (const entry of text.split(',').map((e) => e.trim().toLowerCase()).filter((e) => e !== '')) {
    if (ipaddr.isValidCIDR(entry)) list.ranges.push(normalisedRange(ipaddr.parseCIDR(entry)));
    else if (ipaddr.isValid(entry)) {
      const address = ipaddr.process(entry);
      list.ranges.push([address, address.kind() === 'ipv4' ? 32 : 128]);
    } else if (/^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(entry)) list.hosts.push(entry);
    else throw new Error(`"${entry}" is neither a host name (hooks.example.com, *.example.com), an address nor an address range (10.0.0.0/8)`);
  }
  if (list.hosts.length + list.ranges.length === 0) throw new Error('lists no host name or address range (leave it unset to allow any address but those never allowed)');
  return list;
}

/** An IPv4-mapped IPv6 range (::ffff:10.0.0.0/104) is the IPv4 range it maps. */
function normalisedRange([address, bits]: [Address, number]): [Address, number] {
  if (address.kind() === 'ipv6' && (address as ipaddr.IPv6).isIPv4MappedAddress() && bits >= 96) return [(address as ipaddr.IPv6).toIPv4Address(), bits - 96];
  return [address, bits];
}

export class WebhookTargets {
  constructor(private readonly allow?: WebhookAllowList) {}

  /** Why a subscription may not send to `url`, or undefined. Host names are checked again, resolved, at each delivery. */
  urlProblem(url: string): string | undefined {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      return `"${url}" is not a URL`;
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') return `webhooks are sent over http or https, not ${parsed.protocol.slice(0, -1)}`;
    // Shown back with the webhook and stored in the clear; the signature is how a receiver knows the sender.
    if (parsed.username || parsed.password) return 'a webhook URL carries no credentials (user:password@); a receiver authenticates a delivery by its Lockstep-Signature';
    const host = hostOf(parsed);
    if (ipaddr.isValid(host)) return this.addressProblem(host, host);
    if (this.allow && !this.hostAllowed(host) && this.allow.ranges.length === 0) return `host ${host} is not in LOCKSTEP_WEBHOOK_ALLOW`;
    return undefined;
  }

  /** Why a delivery to `host` may not go to `address`, one of its addresses, or undefined. */
  addressProblem(address: string, host: string): string | undefined {
    const parsed = ipaddr.process(address);
    const inRange = this.allow?.ranges.some(([range, bits]) => range.kind() === parsed.kind() && parsed.match(range, bits)) ?? false;
    if (inRange) return undefined;
    const named = host === address ? `${address}` : `${host} (${address})`;
    // An IPv4 address reached through NAT64, 6to4 or Teredo is that address.
    const embedded = embeddedIPv4(parsed);
    const own = neverReached(parsed);
    const through = own === undefined && embedded ? neverReached(embedded.ipv4) : undefined;
    const why = own ?? through;
    if (why) {
      const via = through ? ` (through ${embedded!.through}: ${embedded!.ipv4.toString()})` : '';
      return `${named}${via} is ${why}, which webhooks never go to (a range listed in LOCKSTEP_WEBHOOK_ALLOW would allow it)`;
    }
    if (this.allow && !(host !== address && this.hostAllowed(host))) return `${named} is not in LOCKSTEP_WEBHOOK_ALLOW`;
    return undefined;
  }

  /**
   * A DNS lookup for the delivery's connection that keeps only the addresses `host` may be sent
   * to, and fails naming why when none is left: the address checked is the address connected to.
   */
  lookupFor(host: string): LookupFunction {
    return (hostname, options, callback) => {
      dnsLookup(hostname, { ...options, all: true }, (error, addresses) => {
        if (error) return callback(error, '');
        const problems = addresses.map((a) => this.addressProblem(a.address, host));
        const usable = addresses.filter((_, i) => problems[i] === undefined);
        if (usable.length === 0) return callback(new Error(`refused: ${problems.find((p) => p !== undefined) ?? `${host} has no address`}`), '');
        if (options.all) return callback(null, usable);
        callback(null, usable[0]!.address, usable[0]!.family);
      });
    };
  }

  private hostAllowed(host: string): boolean {
    return (this.allow?.hosts ?? []).some((pattern) => (pattern.startsWith('*.') ? host.endsWith(pattern.slice(1)) : host === pattern));
  }
}

/** What makes `address` one no webhook goes to ("a link-local address"), or undefined. */
function neverReached(address: Address): string | undefined {
  const kind = address.range();
  if (NEVER_RANGES.has(kind)) return `${describeRange(kind)} address`;
  if (METADATA_ADDRESSES.includes(address.toNormalizedString())) return 'a cloud metadata service';
  return undefined;
}

/** The IPv4 address an IPv6 address reaches through NAT64 (64:ff9b::/96), 6to4 (2002::/16) or Teredo (2001::/32), with the mechanism's name. */
function embeddedIPv4(address: Address): { ipv4: ipaddr.IPv4; through: string } | undefined {
  if (address.kind() !== 'ipv6') return undefined;
  const parts = (address as ipaddr.IPv6).parts;
  const octets = (high: number, low: number) => new ipaddr.IPv4([high >> 8, high & 0xff, low >> 8, low & 0xff]);
  if (parts[0] === 0x64 && parts[1] === 0xff9b && parts.slice(2, 6).every((p) => p === 0)) return { ipv4: octets(parts[6]!, parts[7]!), through: 'NAT64' };
  if (parts[0] === 0x2002) return { ipv4: octets(parts[1]!, parts[2]!), through: '6to4' };
  // Teredo carries its client's address in the last 32 bits, each bit inverted.
  if (parts[0] === 0x2001 && parts[1] === 0) return { ipv4: octets(parts[6]! ^ 0xffff, parts[7]! ^ 0xffff), through: 'Teredo' };
  return undefined;
}

/** The URL's host as a name or a bare address (no IPv6 brackets), lower case. */
export function hostOf(url: URL): string {
  return url.hostname.replace(/^\[(.*)\]$/, '$1').toLowerCase();
}

/** The range's name with its article: "a link-local", "an unspecified". */
function describeRange(kind: string): string {
  const name = kind === 'linkLocal' ? 'link-local' : kind;
  return `${/^[aeiou]/.test(name) ? 'an' : 'a'} ${name}`;
}
