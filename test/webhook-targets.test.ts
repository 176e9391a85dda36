/**
 * Where webhooks may go (a unit test of the policy; test/webhooks.test.ts delivers through it):
 * never to addresses no receiver has, the cloud metadata services among them, and with
 * LOCKSTEP_WEBHOOK_ALLOW only to what it lists; host names are checked on what they resolve to.
 */
import { parseWebhookAllowList, WebhookTargets } from '../src/events/webhook-targets';

const anyAddress = new WebhookTargets();

test('without an allow list, a webhook may go anywhere but to addresses no receiver has', () => {
  for (const url of ['http://127.0.0.1:8080/hook', 'https://hooks.example.com/x', 'http://10.1.2.3/', 'http://[::1]:9000/', 'http://192.168.0.10/', 'http://[64:ff9b::808:808]/', 'http://[2001:0:4136:e378:8000:63bf:f7f7:f7f7]/']) {
    expect([url, anyAddress.urlProblem(url)]).toEqual([url, undefined]);
  }
  const refused: [string, RegExp][] = [
    ['http://169.254.169.254/latest/meta-data/', /169\.254\.169\.254 is a link-local address/],
    ['http://[fe80::1]/', /fe80::1 is a link-local address/],
    // An IPv4 address written as IPv6 is the IPv4 address.
    ['http://[::ffff:169.254.169.254]/', /is a link-local address/],
    ['http://0.0.0.0:4000/', /0\.0\.0\.0 is an unspecified address/],
    ['http://224.0.0.1/', /is a multicast address/],
    ['http://255.255.255.255/', /is a broadcast address/],
    ['http://[fd00:ec2::254]/', /is a cloud metadata service/],
    ['http://100.100.100.200/', /is a cloud metadata service/],
    // IPv4 reached through NAT64, 6to4 or Teredo is the IPv4 address.
    ['http://[64:ff9b::a9fe:a9fe]/', /64:ff9b::a9fe:a9fe \(through NAT64: 169\.254\.169\.254\) is a link-local address/],
    ['http://[2002:a9fe:a9fe::1]/', /\(through 6to4: 169\.254\.169\.254\) is a link-local address/],
    // Teredo: the client's address, bits inverted, in the last 32 bits (~169.254.169.254 = 5601:5601).
    ['http://[2001:0:4136:e378:8000:63bf:5601:5601]/', /\(through Teredo: 169\.254\.169\.254\) is a link-local address/],
    ['ftp://hooks.example.com/', /over http or https, not ftp/],
    ['https://user:secret@hooks.example.com/', /carries no credentials/],
    ['not a url', /is not a URL/],
  ];
  for (const [url, problem] of refused) expect([url, anyAddress.urlProblem(url)]).toEqual([url, expect.stringMatching(problem)]);
});

test('with an allow list, only the hosts and ranges it names; a range it names overrides the rule above', () => {
  const byName = new WebhookTargets(parseWebhookAllowList('hooks.example.com, *.corp.example'));
  expect(byName.urlProblem('https://hooks.example.com/x')).toBeUndefined();
  expect(byName.urlProblem('https://a.b.corp.example/x')).toBeUndefined();
  expect(byName.urlProblem('https://corp.example/x')).toBe('host corp.example is not in LOCKSTEP_WEBHOOK_ALLOW');
  expect(byName.urlProblem('http://127.0.0.1/x')).toBe('127.0.0.1 is not in LOCKSTEP_WEBHOOK_ALLOW');
  // A listed name is still never sent to an address no receiver has.
  expect(byName.addressProblem('10.0.0.7', 'hooks.example.com')).toBeUndefined();
  expect(byName.addressProblem('169.254.169.254', 'hooks.example.com')).toMatch(/^hooks\.example\.com \(169\.254\.169\.254\) is a link-local address/);

  const byRange = new WebhookTargets(parseWebhookAllowList('10.20.0.0/16,::ffff:192.168.7.0/120,169.254.169.254'));
  // A name passes until it is resolved: then its address decides.
  expect(byRange.urlProblem('http://receiver.internal/')).toBeUndefined();
  expect(byRange.addressProblem('10.20.3.4', 'receiver.internal')).toBeUndefined();
  expect(byRange.addressProblem('10.21.3.4', 'receiver.internal')).toBe('receiver.internal (10.21.3.4) is not in LOCKSTEP_WEBHOOK_ALLOW');
  expect(byRange.addressProblem('192.168.7.99', 'receiver.internal')).toBeUndefined();
  expect(byRange.addressProblem('::ffff:10.20.0.1', 'receiver.internal')).toBeUndefined();
  expect(byRange.urlProblem('http://169.254.169.254/')).toBeUndefined();
  expect(byRange.urlProblem('http://169.254.169.253/')).toMatch(/is a link-local address/);
});

test('a bad allow list is refused at start, naming the entry', () => {
  expect(() => parseWebhookAllowList('hooks.example.com, http://x/')).toThrow('"http://x/" is neither a host name');
  expect(() => parseWebhookAllowList('10.0.0.0/33')).toThrow('"10.0.0.0/33" is neither');
  expect(() => parseWebhookAllowList(' , ')).toThrow('lists no host name or address range');
});

/** Runs a delivery's lookup as node:net would, for one address or all. */
function lookUp(targets: WebhookTargets, host: string, all: boolean): Promise<{ error?: string; addresses?: string[] }> {
  return new Promise((resolve) => {
    targets.lookupFor(host)(host, { all }, (error, address) => {
      if (error) return resolve({ error: error.message });
      resolve({ addresses: typeof address === 'string' ? [address] : address.map((a) => a.address) });
    });
  });
}

test('a delivery connects only to an address its host may be sent to, as resolved at that moment', async () => {
  for (const all of [false, true]) {
    const allowed = await lookUp(anyAddress, 'localhost', all);
    expect(allowed.addresses!.length).toBeGreaterThan(0);
    expect(allowed.addresses!.every((a) => a === '127.0.0.1' || a === '::1')).toBe(true);
    const refused = await lookUp(new WebhookTargets(parseWebhookAllowList('10.0.0.0/8')), 'localhost', all);
    expect(refused.error).toMatch(/^refused: localhost \((127\.0\.0\.1|::1)\) is not in LOCKSTEP_WEBHOOK_ALLOW$/);
  }
});
