// Long-lived TCP connections from the client to a Service, each knowing the
// pod that holds it (the pods' line protocol answers with their name). They
// show what a pod's or a node's loss does to connections already open.
import { renderTable } from '../cli/table.js';
import type { ClusterBed } from '../topology/cluster.js';
import type { Session } from '../topology/testbed.js';

export interface Connection {
  session: Session;
  /** The pod that answered when it opened. */
  pod: string;
  /** Still answering from that pod, as far as the last probe knows. */
  alive: boolean;
}

export interface ProbeResult {
  /** Answered from the same pod. */
  answered: number;
  /** Answered, but from another pod: the original connection is gone. */
  otherPod: number;
  /** No answer in time, or the connection broke. */
  lost: number;
}

/** How long a connection has to answer before it counts as lost. */
const ANSWER_MS = 1500;

export class Connections {
  private constructor(readonly all: readonly Connection[]) {}

  /** Opens `count` connections to host:port; those that fail to open are left out. */
  static async open(
    bed: ClusterBed,
    host: string,
    port: number,
    count: number,
  ): Promise<Connections> {
    const opened = await Promise.allSettled(
      Array.from({ length: count }, async () => {
        const session = await bed.session(host, port);
        const answer = await session.send('hello');
        return { session, pod: answer.pod, alive: true };
      }),
    );
    return new Connections(opened.filter((r) => r.status === 'fulfilled').map((r) => r.value));
  }

  get alive(): Connection[] {
    return this.all.filter((c) => c.alive);
  }

  /** Asks each connection again; one that does not answer from its pod is marked dead. */
  async probe(which: readonly Connection[]): Promise<ProbeResult> {
    const result: ProbeResult = { answered: 0, otherPod: 0, lost: 0 };
    await Promise.all(
      which.map(async (c) => {
        try {
          const a = await c.session.send('still there?', ANSWER_MS);
          if (a.pod === c.pod) result.answered++;
          else {
            result.otherPod++;
            c.alive = false;
          }
        } catch {
          result.lost++;
          c.alive = false;
        }
      }),
    );
    return result;
  }

  /** Live connections per pod. */
  table(nodeOfPod: (pod: string) => string): string[] {
    const by = new Map<string, number>();
    for (const c of this.alive) by.set(c.pod, (by.get(c.pod) ?? 0) + 1);
    return renderTable(
      ['pod', 'node', 'connections'],
      [...by.entries()]
        .sort(([a], [b]) => a.localeCompare(b, undefined, { numeric: true }))
        .map(([pod, n]) => [pod, nodeOfPod(pod), String(n)]),
    );
  }

  close(): void {
    for (const c of this.all) c.session.close();
  }
}
