import type * as grpc from '@grpc/grpc-js';

/**
 * gRPC server options for a server that carries the discovery streams (one
 * long-lived stream per node agent): merged by the control plane under its
 * own (interceptors). bench/RESULTS.md has the A/B figures.
 */
export function discoveryServerOptions(): grpc.ServerOptions {
  return {
    // channelz keeps, per connection, a registry entry, a call tracker and a
    // closure, and per message two Date.now() calls and counters: ~1.3 KiB
    // of heap per connected agent and work on every push and ACK, for an
    // introspection service this control plane does not serve.
    'grpc.enable_channelz': 0,
  };
}
