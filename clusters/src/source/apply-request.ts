import type { SourceApplyReply, SourceApplyRequest } from '../../../common/index.js';

/**
 * Decodes a change-set request from the control plane, or says what is wrong
 * with it (a reply the requester can show). Pure.
 */
export function parseApplyRequest(
  data: Uint8Array,
): SourceApplyRequest | (SourceApplyReply & { ok: false }) {
  const refuse = (message: string): SourceApplyReply & { ok: false } => ({
    ok: false,
    errors: [{ message: `malformed change-set request: ${message}`, severity: 'error' }],
  });
  let raw: unknown;
  try {
    raw = JSON.parse(new TextDecoder().decode(data));
  } catch {
    return refuse('not JSON');
  }
  const r = raw as Partial<Record<keyof SourceApplyRequest, unknown>> | null;
  if (r === null || typeof r !== 'object') return refuse('not an object');
  if (r.apiVersion !== 'meshplane/v1') return refuse(`apiVersion ${String(r.apiVersion)}`);
  if (typeof r.id !== 'string') return refuse('id must be a string');
  if (r.mode !== 'apply' && r.mode !== 'delete') return refuse('mode must be apply or delete');
  if (typeof r.dryRun !== 'boolean') return refuse('dryRun must be a boolean');
  if (
    !Array.isArray(r.files) ||
    !r.files.every(
      (f: unknown) =>
        typeof f === 'object' &&
        f !== null &&
        typeof (f as { path?: unknown }).path === 'string' &&
        typeof (f as { text?: unknown }).text === 'string',
    )
  ) {
    return refuse('files must be a list of {path, text}');
  }
  return {
    apiVersion: 'meshplane/v1',
    id: r.id,
    mode: r.mode,
    dryRun: r.dryRun,
    files: r.files as SourceApplyRequest['files'],
  };
}
