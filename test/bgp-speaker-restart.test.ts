// The speaker's side of graceful restart (RFC 4724) against raw peers on
// loopback, message by message: a speaker started as a restart opens with
// the Restart State bit and the Forwarding State bit it was given, holds
// End-of-RIB until ribComplete(), and opens later sessions as no restart; a
// graceful stop leaves the routes with a peer that advertised graceful
// restart (no UPDATE, no NOTIFICATION) and withdraws from one that did not,
// saying which per peer; --bgp-stop is checked like every agent setting.
import net from 'node:net';

import { afterEach, describe, expect, it } from 'vitest';

import {
  Afi,
  GracefulRestartFlag,
  GracefulRestartForwarding,
  Safi,
} from '../control/bgp/codec/capabilities.js';
import type { BgpMessage } from '../control/bgp/codec/message.js';
import { capabilitiesOf, type OpenMessage } from '../control/bgp/codec/open.js';
import { endOfRibFamily } from '../control/bgp/codec/update.js';
import { BgpSpeaker, type SpeakerInput, type SpeakerRestart } from '../control/bgp/speaker.js';
import { AgentConfigError, resolveAgentSettings } from '../control/agent/config.js';
import { Cleanup, handshake, peerOpen, RawServer, recordingLog } from './support/bgp/harness.js';
import type { RawPeer } from './support/bgp/raw-peer.js';
import { speakerInput } from './support/bgp/speaker-input.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

const LOCAL = '127.0.0.92';
const PREFIX = '203.0.113.60/32';

function peerObject(name: string, address: string, port: number, gr: boolean): unknown {
  return {
    apiVersion: 'xlb.dev/v1alpha1',
    kind: 'BGPPeer',
    metadata: { name },
    spec: {
      peerAddress: address,
      port,
      peerASN: 65001,
      localASN: 65002,
      sourceAddress: LOCAL,
      holdTime: 90,
      ...(gr ? { gracefulRestart: { enabled: true, restartTime: 60 } } : {}),
    },
  };
}

function input(peers: unknown[]): SpeakerInput {
  return speakerInput(peers, PREFIX.split('/')[0]);
}

/** The peer's OPEN, with a graceful restart capability when `gr`. */
function openOf(gr: boolean): OpenMessage {
  const open = peerOpen();
  if (!gr) return open;
  return {
    ...open,
    parameters: [
      {
        kind: 'capabilities',
        capabilities: [
          ...capabilitiesOf(open),
          { kind: 'gracefulRestart', flags: 0, restartTime: 90, families: [] },
        ],
      },
    ],
  };
}

function speakerOf(restart?: SpeakerRestart) {
  const { log, lines } = recordingLog();
  const speaker = new BgpSpeaker({
    node: { name: 'node-a', labels: {}, addresses: [LOCAL] },
    connect: ({ host, port, localAddress }) =>
      net.connect({ host, port, ...(localAddress === undefined ? {} : { localAddress }) }),
    sessionDefaults: { backoff: { initialMs: 20, maxMs: 200, jitter: 0 } },
    log,
    ...(restart === undefined ? {} : { restart }),
  });
  cleanup.add(() => speaker.stop());
  return { speaker, lines };
}

const grCapability = (peer: RawPeer) => {
  const open = peer.messages().find((m) => m.type === 'open') as OpenMessage;
  return capabilitiesOf(open).find((c) => c.kind === 'gracefulRestart');
};

const describeUpdate = (m: BgpMessage): string =>
  m.type === 'update' ? (endOfRibFamily(m) ?? 'routes') : m.type;

const settle = () => new Promise((r) => setTimeout(r, 150));

describe('the speaker as a restarting speaker (RFC 4724)', () => {
  it('opens with R and the given F bit, holds End-of-RIB until ribComplete(); later sessions are no restart', async () => {
    const first = await RawServer.start('127.0.0.93', cleanup);
    const later = await RawServer.start('127.0.0.94', cleanup);
    const { speaker } = speakerOf({ forwardingPreserved: false });
    const one = peerObject('one', '127.0.0.93', first.port, true);
    expect(speaker.update(input([one])).problems).toEqual([]);
    const peer = await first.next();
    await handshake(peer, openOf(true));
    expect(grCapability(peer)).toEqual({
      kind: 'gracefulRestart',
      flags: GracefulRestartFlag.Restarting,
      restartTime: 60,
      families: [{ afi: Afi.Ipv4, safi: Safi.Unicast, flags: 0 }],
    });
    await peer.waitFor('the route', (m) => m.type === 'update');
    await settle();
    expect(
      peer
        .messages()
        .filter((m) => m.type === 'update')
        .map(describeUpdate),
    ).toEqual(['routes']);
    speaker.ribComplete();
    const updates = await peer.waitFor('End-of-RIB', (m) => m.type === 'update', 2);
    expect(updates.map(describeUpdate)).toEqual(['routes', 'ipv4']);

    // A peer added once the routes are complete: no restart for it.
    const two = peerObject('two', '127.0.0.94', later.port, true);
    expect(speaker.update(input([one, two])).problems).toEqual([]);
    const peer2 = await later.next();
    await handshake(peer2, openOf(true));
    expect(grCapability(peer2)).toMatchObject({
      flags: 0,
      families: [{ afi: Afi.Ipv4, safi: Safi.Unicast, flags: GracefulRestartForwarding }],
    });
    const updates2 = await peer2.waitFor('route and End-of-RIB', (m) => m.type === 'update', 2);
    expect(updates2.map(describeUpdate)).toEqual(['routes', 'ipv4']);
  });

  it('a graceful stop leaves the routes with a peer that negotiated it and withdraws from the others', async () => {
    const withGr = await RawServer.start('127.0.0.95', cleanup);
    const peerWithout = await RawServer.start('127.0.0.96', cleanup);
    const disabled = await RawServer.start('127.0.0.97', cleanup);
    const { speaker, lines } = speakerOf();
    expect(
      speaker.update(
        input([
          peerObject('gr', '127.0.0.95', withGr.port, true),
          // We offer graceful restart; the peer does not.
          peerObject('peer-without', '127.0.0.96', peerWithout.port, true),
          // The peer offers it; our BGPPeer does not enable it.
          peerObject('disabled', '127.0.0.97', disabled.port, false),
        ]),
      ).problems,
    ).toEqual([]);
    const [a, b, c] = [await withGr.next(), await peerWithout.next(), await disabled.next()];
    await Promise.all([
      handshake(a, openOf(true)),
      handshake(b, openOf(false)),
      handshake(c, openOf(true)),
    ]);
    for (const p of [a, b, c])
      await p.waitFor('route and End-of-RIB', (m) => m.type === 'update', 2);

    await speaker.stop({ mode: 'graceful' });
    for (const p of [a, b, c]) await p.waitClosed();
    const after = (p: RawPeer) => p.messages().slice(-2).map(describeUpdate);
    // Nothing after End-of-RIB: the connection just closed.
    expect(after(a)).toEqual(['routes', 'ipv4']);
    expect(a.messages().some((m) => m.type === 'notification')).toBe(false);
    for (const p of [b, c]) {
      expect(after(p)).toEqual(['routes', 'notification']);
      expect(p.messages().at(-1)).toMatchObject({ type: 'notification', code: 6, subcode: 2 });
      const updates = p.messages().filter((m) => m.type === 'update');
      // The withdrawal of the route came before the Cease.
      expect(updates.at(-1)).toMatchObject({ withdrawn: [PREFIX] });
    }
    const said = (peer: string) =>
      lines
        .map((l) => JSON.parse(l) as Record<string, unknown>)
        .find((l) => l.peer === peer && l.stop !== undefined);
    expect(said('gr')).toMatchObject({ stop: 'graceful', routes: 1, restartTime: 60 });
    expect(said('peer-without')).toMatchObject({ stop: 'withdraw', routes: 1 });
    expect(said('peer-without')?.reason).toMatch(/not negotiated/);
    expect(said('disabled')).toMatchObject({ stop: 'withdraw', routes: 1 });
    expect(said('disabled')?.reason).toMatch(/spec\.gracefulRestart\.enabled/);
  });
});

describe('--bgp-stop', () => {
  const base = { uplink: 'eth0', manifests: '/etc/xlb/manifests' };
  it('is graceful when left out, takes withdraw from a flag or the file, and names a bad value', () => {
    expect(resolveAgentSettings({ flags: base, hostname: 'node-a' }).bgpStop).toBeUndefined();
    expect(
      resolveAgentSettings({ flags: { ...base, bgpStop: 'withdraw' }, hostname: 'node-a' }).bgpStop,
    ).toBe('withdraw');
    expect(
      resolveAgentSettings({
        flags: base,
        file: { path: '/etc/xlb/agent.yaml', text: 'bgpStop: graceful\n' },
        hostname: 'node-a',
      }).bgpStop,
    ).toBe('graceful');
    let error: unknown;
    try {
      resolveAgentSettings({ flags: { ...base, bgpStop: 'flush' }, hostname: 'node-a' });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(AgentConfigError);
    expect((error as Error).message).toContain(
      "--bgp-stop: 'flush' is not valid: the BGP stop mode is graceful (peers keep the routes across a restart) or withdraw",
    );
  });
});
