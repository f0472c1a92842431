import { isIP } from 'node:net';
import type { FlowPeer, ObservedFlow, ObserveRequest } from '../../proto/index.js';
import { FLOW_VERDICTS, type FlowVerdict } from './enrich.js';

/** One side's selector: an address, an identity number, or a cluster[/namespace[/pod]] prefix. */
export type PeerSelector =
  | { kind: 'ip'; ip: string }
  | { kind: 'identity'; identity: number }
  | { kind: 'name'; parts: string[] };

export interface FlowFilter {
  from?: PeerSelector;
  to?: PeerSelector;
  verdict?: FlowVerdict;
}

export type FilterResult = { ok: true; value: FlowFilter } | { ok: false; errors: string[] };

function parseSelector(
  field: 'from' | 'to',
  text: string,
  errors: string[],
): PeerSelector | undefined {
  if (text === '') return undefined;
  if (isIP(text) !== 0) return { kind: 'ip', ip: text };
  if (/^\d+$/.test(text)) {
    const identity = Number(text);
    if (identity > 0xffffffff) errors.push(`${field}: identity ${text} is not a 32-bit number`);
    return { kind: 'identity', identity };
  }
  const parts = text.split('/');
  if (parts.length > 3 || parts.some((p) => p === '')) {
    errors.push(
      `${field}: "${text}" is not CLUSTER[/NAMESPACE[/POD]], an IP address or an identity number`,
    );
    return undefined;
  }
  return { kind: 'name', parts };
}

/** Validates an observe request's filters; every problem at once. */
export function parseFlowFilter(
  req: Pick<ObserveRequest, 'from' | 'to' | 'verdict'>,
): FilterResult {
  const errors: string[] = [];
  const filter: FlowFilter = {};
  const from = parseSelector('from', req.from.trim(), errors);
  const to = parseSelector('to', req.to.trim(), errors);
  if (from) filter.from = from;
  if (to) filter.to = to;
  const verdict = req.verdict.trim().toUpperCase();
  if (verdict !== '') {
    if ((FLOW_VERDICTS as readonly string[]).includes(verdict))
      filter.verdict = verdict as FlowVerdict;
    else errors.push(`verdict: "${req.verdict}" is not one of ${FLOW_VERDICTS.join(', ')}`);
  }
  return errors.length > 0 ? { ok: false, errors } : { ok: true, value: filter };
}

function peerMatches(sel: PeerSelector, peer: FlowPeer | undefined): boolean {
  if (peer === undefined) return false;
  switch (sel.kind) {
    case 'ip':
      return peer.ip === sel.ip;
    case 'identity':
      return peer.identity === sel.identity;
    case 'name': {
      const names = [peer.cluster, peer.namespace, peer.pod];
      return peer.cluster !== '' && sel.parts.every((p, i) => names[i] === p);
    }
  }
}

export function matchesFlow(flow: ObservedFlow, filter: FlowFilter): boolean {
  if (filter.verdict !== undefined && flow.verdict !== filter.verdict) return false;
  if (filter.from && !peerMatches(filter.from, flow.source)) return false;
  if (filter.to && !peerMatches(filter.to, flow.destination)) return false;
  return true;
}
