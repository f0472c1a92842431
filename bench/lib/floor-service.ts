import type * as grpc from '@grpc/grpc-js';

/**
 * The gRPC floor benchmark's one bidirectional method, on raw bytes (no
 * protobuf): what grpc-js, HTTP/2 and TLS cost per message with nothing of
 * meshplane on top.
 */
export const FLOOR_SERVICE = {
  echo: {
    path: '/meshplane.bench.Floor/Echo',
    requestStream: true,
    responseStream: true,
    requestSerialize: (b: Buffer): Buffer => b,
    requestDeserialize: (b: Buffer): Buffer => b,
    responseSerialize: (b: Buffer): Buffer => b,
    responseDeserialize: (b: Buffer): Buffer => b,
  },
} satisfies grpc.ServiceDefinition;

/** What a floor worker is told (a JSON file, as agent workers get their plan). */
export interface FloorPlan {
  server: string;
  ca: string;
  cert: string;
  key: string;
  connections: number;
  /** bytes of each answer a client sends per server message */
  answerBytes: number;
}
