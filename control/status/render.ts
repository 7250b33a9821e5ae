// `xlb status` as text: where each view came from, then one table per topic.
import { renderTable } from '../cli/table.js';
import type { Status } from './collect.js';
import type { BackendStatus } from './datapath-status.js';

const onOff = (b: boolean | null): string =>
  b === null ? 'no election (standalone)' : b ? 'yes' : 'no';

function backendRows(serviceId: string, backends: readonly BackendStatus[]): string[][] {
  return backends.map((b) => [
    serviceId,
    String(b.id),
    b.address.includes(':') ? `[${b.address}]:${b.port}` : `${b.address}:${b.port}`,
    b.nodeAddress,
    b.state,
    b.local ? 'local' : 'remote',
    String(b.counters.packets),
    String(b.counters.bytes),
    String(b.counters.newFlows),
  ]);
}

export function renderStatus(s: Status): string[] {
  const out: string[] = [];
  const d = s.datapath;
  const a = s.agent;
  out.push(
    d
      ? `datapath: pinned at ${d.pinDir} (hash seed ${d.hashSeed})`
      : `datapath: none (${s.datapathError ?? 'not read'})`,
  );
  if (s.agentUrl === undefined) out.push('agent: not asked');
  else if (a) {
    out.push(
      `agent: ${s.agentUrl} node ${a.node} (${a.mode}): ` +
        `${a.ready ? 'ready' : `not ready: ${a.notReadyReason ?? ''}`}; leader: ${onOff(a.leader)}`,
    );
  } else out.push(`agent: unavailable, showing the pinned maps alone (${s.agentError ?? ''})`);

  if (d) {
    // Names come from the agent: the maps know services by id and frontend only.
    const names = new Map<string, string>();
    for (const svc of a?.services ?? []) for (const f of svc.frontends) names.set(f, svc.service);
    const nameOf = (frontends: readonly string[]): string =>
      [...new Set(frontends.map((f) => names.get(f)).filter((n) => n !== undefined))].join(',') ||
      '-';
    out.push('', 'SERVICES');
    out.push(
      ...renderTable(
        [
          'ID',
          'SERVICE',
          'FRONTENDS',
          'AFFINITY',
          'SOURCE RANGES',
          'M',
          'BACKENDS',
          'PACKETS',
          'BYTES',
          'NEW FLOWS',
        ],
        d.services.map((svc) => [
          String(svc.id),
          nameOf(svc.frontends),
          svc.frontends.join(','),
          svc.affinityTimeoutSeconds === undefined ? '-' : `${svc.affinityTimeoutSeconds}s`,
          svc.sourceRanges === undefined ? '-' : svc.sourceRanges.join(',') || 'none admitted',
          svc.tableSize === undefined ? '-' : String(svc.tableSize),
          `${svc.backends.filter((b) => b.state === 'active').length}/${svc.backends.length}`,
          String(svc.counters.packets),
          String(svc.counters.bytes),
          String(svc.counters.newFlows),
        ]),
      ),
    );
    out.push('', 'BACKENDS');
    out.push(
      ...renderTable(
        ['SERVICE', 'ID', 'POD', 'NODE', 'STATE', 'WHERE', 'PACKETS', 'BYTES', 'NEW FLOWS'],
        [
          ...d.services.flatMap((svc) => backendRows(String(svc.id), svc.backends)),
          ...backendRows('?', d.otherBackends),
        ],
      ),
    );
    out.push('', 'VIPS');
    out.push(
      ...renderTable(
        ['VIP', 'FRONTENDS'],
        d.vips.map((v) => [v.vip, String(v.frontends)]),
      ),
    );
    if (d.drops.length > 0) {
      out.push('', 'DROPS');
      out.push(
        ...renderTable(
          ['REASON', 'PACKETS'],
          d.drops.map((x) => [x.reason, String(x.packets)]),
        ),
      );
    }
  }
  if (a) {
    out.push('', 'BGP SESSIONS');
    out.push(
      ...(a.bgpSessions.length === 0
        ? ['(none)']
        : renderTable(
            [
              'PEER',
              'PEER AS',
              'LOCAL AS',
              'STATE',
              'SINCE',
              'ADVERTISED',
              'RECEIVED',
              'LAST ERROR',
            ],
            a.bgpSessions.map((b) => [
              b.peer,
              String(b.peerAsn),
              String(b.localAsn),
              b.state,
              b.sinceSeconds === undefined ? '-' : `${b.sinceSeconds}s`,
              b.prefixesAdvertised === undefined ? '-' : String(b.prefixesAdvertised),
              b.prefixesReceived === undefined ? '-' : String(b.prefixesReceived),
              b.lastError ?? '-',
            ]),
          )),
    );
    const decisions = [
      ...a.nodeDecisions.map((x) => [x.severity, `node ${x.node}`, x.reason, x.message]),
      ...a.decisions.map((x) => [x.severity, x.service, x.reason, x.message]),
    ];
    out.push('', 'DECISIONS');
    out.push(
      ...(decisions.length === 0
        ? ['(none)']
        : renderTable(['SEVERITY', 'OF', 'REASON', 'MESSAGE'], decisions)),
    );
  }
  return out;
}
