/**
 * The one grammar of server specs (config/specs.ts): each form parses to the value the probe
 * uses, and a bad spec in a plan is a `path: reason` problem with the real reason.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseAuthoritative, parseDnsServer, parseHostPort, parseHttpUrl, parseListen, parseResolverSpec, SpecError } from '../../config/specs.js';
import { planProblemsOf, testPlan } from '../../bench/lib/plan.js';

describe('server spec grammar', () => {
  test('host:port forms, IPv6 in brackets, defaults', () => {
    assert.deepEqual(parseHostPort('127.0.0.1:5353', 53), { host: '127.0.0.1', port: 5353 });
    assert.deepEqual(parseHostPort('[::1]:5353', 53), { host: '::1', port: 5353 });
    assert.deepEqual(parseHostPort('::1', 53), { host: '::1', port: 53 });
    assert.deepEqual(parseHostPort('ns1.company.test', 53), { host: 'ns1.company.test', port: 53 });
    assert.throws(() => parseHostPort('127.0.0.1:99999', 53), new SpecError('port 99999 is out of range 1–65535'));
    assert.throws(() => parseHostPort('[127.0.0.1]:53', 53), new SpecError('"[127.0.0.1]:53": [127.0.0.1] is not an IPv6 address'));
  });

  test('every kind of resolver, with its label', () => {
    assert.deepEqual(parseResolverSpec('system'), { kind: 'system', label: 'system' });
    assert.deepEqual(parseResolverSpec('8.8.8.8'), { kind: 'dns', label: '8.8.8.8', servers: [{ host: '8.8.8.8', port: 53 }] });
    assert.deepEqual(parseResolverSpec('[::1]:5353'), { kind: 'dns', label: '[::1]:5353', servers: [{ host: '::1', port: 5353 }] });
    assert.deepEqual(parseResolverSpec('tcp://127.0.0.1:5353'), { kind: 'tcp', label: 'tcp://127.0.0.1:5353', server: { host: '127.0.0.1', port: 5353 } });
    assert.deepEqual(parseResolverSpec('tls://dns.quad9.net'), {
      kind: 'dot',
      label: 'tls://dns.quad9.net',
      server: { host: 'dns.quad9.net', port: 853 },
      servername: 'dns.quad9.net',
    });
    assert.deepEqual(parseResolverSpec('https://dns.example/dns-query'), {
      kind: 'doh',
      label: 'https://dns.example/dns-query',
      url: 'https://dns.example/dns-query',
    });
    assert.deepEqual(parseResolverSpec('https://dns.example'), { kind: 'doh', label: 'https://dns.example', url: 'https://dns.example/dns-query' });
    assert.deepEqual(parseResolverSpec('http://127.0.0.1:8053/dns-query', 'lab DoH'), {
      kind: 'doh',
      label: 'http://127.0.0.1:8053/dns-query',
      url: 'http://127.0.0.1:8053/dns-query',
      name: 'lab DoH',
    });
  });

  test('each bad resolver names its reason', () => {
    const reason = (t: string) => {
      try {
        parseResolverSpec(t);
      } catch (e) {
        return (e as Error).message;
      }
      return 'accepted';
    };
    assert.equal(reason('8.8.8.8:530000'), 'port 530000 is out of range 1–65535');
    assert.equal(reason('8.8.8.8:0'), 'port 0 is out of range 1–65535');
    assert.equal(reason('http://dns.example/dns-query'), '"http://dns.example/dns-query": plain http:// DoH is only allowed on loopback (use https://)');
    assert.equal(reason('https://dns.example:70000/dns-query'), 'port 70000 is out of range 1–65535');
    assert.equal(reason('tcp://dns.example'), '"tcp://dns.example": tcp:// needs an IP address, not the name dns.example');
    assert.equal(reason('udp://8.8.8.8'), '"udp://8.8.8.8": unknown scheme udp:// (use IP[:port], tcp://, tls:// or https://)');
    assert.equal(
      reason('resolver.example'),
      '"resolver.example" must be system, an IP (with optional :port), tcp://IP, tls://host or https://host/path (a name needs tls:// or https://)',
    );
    assert.equal(reason('8.8.8.8#53'), '"8.8.8.8#53" is not host or host:port (use 8.8.8.8:53)');
  });

  test('authoritative servers: names and IPs, host:port, IPv6; the dig notation is refused with the spelling to use', () => {
    assert.deepEqual(parseAuthoritative('ns1.company.test'), { host: 'ns1.company.test', port: 53, isIp: false, label: 'ns1.company.test' });
    assert.deepEqual(parseAuthoritative('127.0.7.50:10753'), { host: '127.0.7.50', port: 10753, isIp: true, label: '127.0.7.50:10753' });
    assert.deepEqual(parseAuthoritative('[::1]:53'), { host: '::1', port: 53, isIp: true, label: '[::1]' });
    assert.throws(() => parseAuthoritative('127.0.7.50#10753'), new SpecError('"127.0.7.50#10753" is not host or host:port (use 127.0.7.50:10753)'));
    assert.throws(() => parseAuthoritative('::1#53'), new SpecError('"::1#53" is not host or host:port (use [::1]:53)'));
    assert.throws(() => parseAuthoritative('ns1 company'), new SpecError('"ns1 company" is not host or host:port'));
  });

  test('listen addresses, DNS servers and URLs', () => {
    assert.deepEqual(parseListen('0.0.0.0:9464'), { host: '0.0.0.0', port: 9464 });
    assert.deepEqual(parseListen('[::1]:0'), { host: '::1', port: 0 });
    assert.throws(() => parseListen('0.0.0.0'), new SpecError('"0.0.0.0" is not host:port (or [v6]:port): the port is missing'));
    assert.throws(() => parseListen('127.0.0.1:65536'), new SpecError('port 65536 is out of range 0–65535'));
    assert.deepEqual(parseDnsServer('127.0.0.1:5353'), { host: '127.0.0.1', port: 5353 });
    assert.throws(() => parseDnsServer('dns.example'), new SpecError('"dns.example" must be an IP address (with optional :port), not a name'));
    assert.equal(parseHttpUrl('https://collector.example:9464').port, '9464');
    assert.throws(() => parseHttpUrl('ftp://collector'), new SpecError('"ftp://collector" must be an http:// or https:// URL'));
    assert.throws(() => parseHttpUrl('http://collector:99999'), new SpecError('port 99999 is out of range 1–65535'));
  });
});

describe('a plan names the path and the reason of every bad spec', () => {
  test('resolvers, lookup resolver and authoritative servers', () => {
    assert.deepEqual(
      planProblemsOf({
        probes: {
          resolvers: ['system', '8.8.8.8', '8.8.8.8:530000', 'bogus.example', 'http://dns.example/q'],
          authoritative: ['127.0.7.50#10753'],
          dns: { lookup_resolver: 'x y' },
        },
      }),
      [
        'probes.resolvers[2]: port 530000 is out of range 1–65535',
        'probes.resolvers[3]: "bogus.example" must be system, an IP (with optional :port), tcp://IP, tls://host or https://host/path (a name needs tls:// or https://)',
        'probes.resolvers[4]: "http://dns.example/q": plain http:// DoH is only allowed on loopback (use https://)',
        'probes.authoritative[0]: "127.0.7.50#10753" is not host or host:port (use 127.0.7.50:10753)',
        'probes.dns.lookup_resolver: "x y" is not host or host:port',
      ],
    );
  });

  test('listen addresses, collector URLs, the sink', () => {
    assert.deepEqual(
      planProblemsOf({
        probes: {
          health_listen: '127.0.0.1:70000',
          push: { collectors: ['http://127.0.0.1:9464', 'collector:9464'] },
          roundtrip: { to: 'rt@company.test', sink: { listen: '0.0.0.0', resolver: 'dns.example', url: 'https://sink.example:0/' } },
        },
        collector: { listen: '[127.0.0.1]:9464' },
      }),
      [
        'probes.roundtrip.sink.listen: "0.0.0.0" is not host:port (or [v6]:port): the port is missing',
        'probes.roundtrip.sink.resolver: "dns.example" must be an IP address (with optional :port), not a name',
        'probes.roundtrip.sink.url: port 0 is out of range 1–65535',
        'probes.push.collectors[1]: "collector:9464" must be an http:// or https:// URL',
        'probes.health_listen: port 70000 is out of range 0–65535',
        'collector.listen: "[127.0.0.1]:9464": [127.0.0.1] is not an IPv6 address',
      ],
    );
  });

  test('the validated plan carries the parsed specs the probe uses', () => {
    const plan = testPlan({
      probes: {
        resolvers: ['system', '[::1]:5353', 'tls://127.0.0.1:8853'],
        authoritative: ['127.0.7.50:10753', 'ns1.company.test'],
        dns: { lookup_resolver: 'tcp://127.0.0.1' },
      },
    });
    assert.deepEqual(plan.probes.resolvers, [
      { kind: 'system', label: 'system' },
      { kind: 'dns', label: '[::1]:5353', servers: [{ host: '::1', port: 5353 }] },
      { kind: 'dot', label: 'tls://127.0.0.1:8853', server: { host: '127.0.0.1', port: 8853 }, servername: '127.0.0.1' },
    ]);
    assert.deepEqual(plan.probes.authoritative, [
      { host: '127.0.7.50', port: 10753, isIp: true, label: '127.0.7.50:10753' },
      { host: 'ns1.company.test', port: 53, isIp: false, label: 'ns1.company.test' },
    ]);
    assert.deepEqual(plan.probes.dns.lookup_resolver, { kind: 'tcp', label: 'tcp://127.0.0.1', server: { host: '127.0.0.1', port: 53 } });
    assert.ok(Object.isFrozen(plan.probes.resolvers[1]));
  });
});
