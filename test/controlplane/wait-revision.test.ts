// The server side of `meshctl wait`: it ends at its own timeout, also when
// the garbage collector runs meanwhile (a timeout signal inside
// AbortSignal.any() could be collected on Node 20 and never fire).
import { describe, expect, it } from 'vitest';
import { waitForRevision } from '../../controlplane/admin/index.js';
import { Tracker } from '../../controlplane/telemetry/index.js';
import { underGc } from '../harness/index.js';

describe('waitForRevision', () => {
  it("ends a server-side wait at its timeout (meshctl wait's), not at the client's deadline", async () => {
    // A mesh whose model never reaches the revision waited for.
    const tracker = new Tracker({ clock: { now: () => Date.now() } });
    const started = Date.now();
    const w = await underGc(
      waitForRevision({ tracker, observedRevision: () => 1 }, { revision: 5, timeoutMs: 300 }),
    );
    expect(w).toMatchObject({ synced: false, observedRevision: 1 });
    expect(Date.now() - started).toBeLessThan(5_000);
  }, 15_000);
});
