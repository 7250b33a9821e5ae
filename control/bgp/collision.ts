// Connection collision resolution (RFC 4271 section 6.8, RFC 6286 section
// 2.3): when both speakers connect at once, the connection opened by the one
// with the higher BGP identifier survives (equal identifiers: higher AS).

/** Which speaker opened a connection. */
export type Initiator = 'local' | 'remote';

export interface CollisionInput {
  localId: string;
  localAs: number;
  remoteId: string;
  remoteAs: number;
  /** Who opened the connection the FSM already runs on. The newcomer is always remote-initiated. */
  existing: Initiator;
}

function idValue(id: string): number {
  return id.split('.').reduce((n, octet) => n * 256 + Number(octet), 0);
}

/** 'existing' keeps the connection the FSM runs on; 'candidate' switches to the newcomer. */
export function collisionWinner(c: CollisionInput): 'existing' | 'candidate' {
  // Two connections from the peer: the older one is from before it restarted.
  if (c.existing === 'remote') return 'candidate';
  const local = idValue(c.localId);
  const remote = idValue(c.remoteId);
  const localHigher = local === remote ? c.localAs > c.remoteAs : local > remote;
  return localHigher ? 'existing' : 'candidate';
}
