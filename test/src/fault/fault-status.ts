// What fault-relay.ts answers on its extra route, shared with the harness.
export const FAULT_STATUS_PATH = "/fault-test/status";

export interface FaultStatus {
  /** An armed write fault was consumed: a write transaction failed. */
  readonly fired: boolean;
  /** POST/PUT requests that arrived after the failed write and were answered 2xx (must be 0). */
  readonly acceptedAfterFailure: number;
}
