import type { NatsCredentials } from '../clusters/src/index.js';
import {
  MeshError,
  SUBJECT_APPLY_PREFIX,
  SUBJECT_EVENTS_PREFIX,
  SUBJECT_HEALTH_PREFIX,
  SUBJECT_RESYNC_PREFIX,
} from '../common/index.js';
import type { NatsAuthorization, NatsPermissions } from '../launcher/index.js';

export const CONTROL_PLANE_NATS_USER = 'controlplane';

/** Cluster names are DNS labels, so they are single NATS tokens: no `.`, `*` or `>`. */
const DNS_LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

export function sourceNatsUser(cluster: string): string {
  return `source-${checkedCluster(cluster)}`;
}

/**
 * Where a source receives its JetStream PubAcks. Per cluster, because a
 * source allowed `_INBOX.>` could subscribe to everyone's replies — the
 * control plane's pull-consumer deliveries included, i.e. every cluster's events.
 */
export function sourceInboxPrefix(cluster: string): string {
  return `_INBOX.source.${checkedCluster(cluster)}`;
}

/** The control plane owns the stream and its consumers, and reads every cluster's subjects. */
export function controlPlanePermissions(): NatsPermissions {
  return { publish: ['>'], subscribe: ['>'] };
}

/**
 * What the server lets cluster C's source do, and nothing else:
 * - publish its change sets on `meshplane.events.C.<kind>` (one message per
 *   kind a change set names; also `meshplane.events.C` for a whole change set
 *   in one message; the stream captures `meshplane.events.>`), and its health
 *   on `meshplane.health.C`. The control plane still refuses a message whose
 *   payload names another cluster, or objects of another kind than its
 *   subject. A JetStream publish is an ordinary
 *   publish the stream captures, so it needs no `$JS.API` subject;
 * - no JetStream API at all: the control plane creates the stream before it
 *   reports ready, so the source does not create or inspect it (STREAM.INFO
 *   would show every cluster's subjects and counts; CREATE would let a source
 *   pick the retention of everyone's events);
 * - subscribe only to its own inbox, for the PubAcks, to the control plane's
 *   resync requests for it, and to its change-set requests
 *   (`meshplane.apply.C`, `meshctl apply`), which it answers (`allow_responses`:
 *   one reply to each request received, nothing else).
 */
export function sourcePermissions(cluster: string): NatsPermissions {
  const c = checkedCluster(cluster);
  return {
    publish: [
      `${SUBJECT_EVENTS_PREFIX}.${c}`,
      // one token: the kind of a change set's part (the control plane reads nothing deeper)
      `${SUBJECT_EVENTS_PREFIX}.${c}.*`,
      `${SUBJECT_HEALTH_PREFIX}.${c}`,
    ],
    // Its own inbox (PubAcks) and the control plane's resync and change-set requests for it.
    subscribe: [
      `${sourceInboxPrefix(c)}.>`,
      `${SUBJECT_RESYNC_PREFIX}.${c}`,
      `${SUBJECT_APPLY_PREFIX}.${c}`,
    ],
    allowResponses: true,
  };
}

export interface MeshNatsUsers {
  authorization: NatsAuthorization;
  controlPlane: NatsCredentials;
  /** by cluster name */
  sources: Map<string, NatsCredentials>;
}

/**
 * One NATS user for the control plane and one per cluster source, each with a
 * fresh password from `newPassword`, and the server-side authorization that
 * goes with them. Pure given `newPassword`.
 */
export function meshNatsUsers(
  clusters: readonly string[],
  newPassword: () => string,
): MeshNatsUsers {
  const controlPlane: NatsCredentials = { user: CONTROL_PLANE_NATS_USER, pass: newPassword() };
  const sources = new Map<string, NatsCredentials>();
  for (const cluster of clusters) {
    if (sources.has(cluster)) throw new MeshError('VALIDATION', `cluster ${cluster} listed twice`);
    sources.set(cluster, {
      user: sourceNatsUser(cluster),
      pass: newPassword(),
      inboxPrefix: sourceInboxPrefix(cluster),
    });
  }
  return {
    authorization: {
      users: [
        {
          user: controlPlane.user,
          password: controlPlane.pass,
          permissions: controlPlanePermissions(),
        },
        ...[...sources].map(([cluster, c]) => ({
          user: c.user,
          password: c.pass,
          permissions: sourcePermissions(cluster),
        })),
      ],
    },
    controlPlane,
    sources,
  };
}

function checkedCluster(cluster: string): string {
  if (!DNS_LABEL.test(cluster)) {
    throw new MeshError('VALIDATION', `cluster name ${JSON.stringify(cluster)} is not a DNS label`);
  }
  return cluster;
}
