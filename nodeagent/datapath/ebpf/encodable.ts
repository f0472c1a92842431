import { endpointName, serviceName } from '../entries.js';
import type { Rejection } from '../errors.js';
import type { DatapathChange } from '../types.js';
import {
  EP_META_MAX,
  SVC_DATA_MAX,
  SVC_NAME_MAX,
  endpointMetaSize,
  serviceValueSize,
} from './layout.js';

/** Records too large for their fixed-size kernel values. */
export function checkEncodable(change: DatapathChange): Rejection[] {
  const out: Rejection[] = [];
  for (const ep of change.endpoints.upserts) {
    const size = endpointMetaSize(ep);
    if (size > EP_META_MAX) {
      out.push({
        code: 'VALIDATION',
        message: `endpoint ${endpointName(ep)}: its names, addresses and ports take ${size} bytes, the kernel record holds ${EP_META_MAX}`,
        resourceNames: [ep.resource],
      });
    }
  }
  for (const s of change.services.upserts) {
    const name = serviceName(s);
    const size = serviceValueSize(s);
    if (Buffer.byteLength(name) >= SVC_NAME_MAX || size > SVC_DATA_MAX) {
      out.push({
        code: 'VALIDATION',
        message: `service ${name}: record of ${size} bytes (name ${Buffer.byteLength(name)}) exceeds the kernel record (${SVC_DATA_MAX}, name < ${SVC_NAME_MAX})`,
        resourceNames: [s.resource],
      });
    }
  }
  return out;
}
