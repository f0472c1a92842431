/** meshctl exit codes (DESIGN.md): the contract scripts rely on. */
export const EXIT = {
  ok: 0,
  /** a gate or expectation failed */
  failed: 1,
  /** usage or validation error */
  usage: 2,
  /** the mesh is unreachable */
  unreachable: 3,
} as const;

/** Thrown by commands to end with a given exit code and message. */
export class CliExit extends Error {
  readonly exitCode: number;
  constructor(exitCode: number, message: string) {
    super(message);
    this.name = 'CliExit';
    this.exitCode = exitCode;
  }
}
