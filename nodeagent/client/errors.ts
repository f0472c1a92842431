import { status as GrpcStatus } from '@grpc/grpc-js';
import { MeshError, type ErrorCode } from '../../common/index.js';
import type { ErrorDetail } from '../../proto/index.js';
import type { Rejection } from '../datapath/index.js';

/** The control plane and this agent speak different discovery protocols. */
export class ProtocolMismatchError extends MeshError {
  /** the control plane's version, when it announced one */
  readonly serverVersion: number | undefined;
  readonly agentVersion: number;

  constructor(
    message: string,
    serverVersion: number | undefined,
    agentVersion: number,
    options?: { cause?: unknown },
  ) {
    super('PROTOCOL_MISMATCH', message, options);
    this.name = 'ProtocolMismatchError';
    this.serverVersion = serverVersion;
    this.agentVersion = agentVersion;
  }
}

/** A discovery stream ended (network, control plane gone, refused); `grpcCode` when gRPC gave one. */
export class StreamError extends MeshError {
  readonly grpcCode: number | undefined;

  constructor(
    code: ErrorCode,
    message: string,
    grpcCode: number | undefined,
    options?: { cause?: unknown },
  ) {
    super(code, message, options);
    this.name = 'StreamError';
    this.grpcCode = grpcCode;
  }
}

/** google.rpc.Code of a rejection (numerically the same as gRPC status codes). */
export function rpcCodeOf(code: Rejection['code']): number {
  switch (code) {
    case 'VALIDATION':
      return GrpcStatus.INVALID_ARGUMENT;
    case 'CAPACITY':
      return GrpcStatus.RESOURCE_EXHAUSTED;
    case 'INTERNAL':
      return GrpcStatus.INTERNAL;
  }
}

/** One ErrorDetail for a NACK: the most severe code, every message, every rejected resource. */
export function errorDetailOf(rejections: readonly Rejection[]): ErrorDetail {
  const code: Rejection['code'] = rejections.some((r) => r.code === 'VALIDATION')
    ? 'VALIDATION'
    : rejections.some((r) => r.code === 'CAPACITY')
      ? 'CAPACITY'
      : 'INTERNAL';
  return {
    code: rpcCodeOf(code),
    message: rejections.map((r) => r.message).join('; '),
    resourceNames: [...new Set(rejections.flatMap((r) => r.resourceNames))].sort(),
  };
}
