/**
 * The snapshot document: the Docker Engine API's own response bodies, keyed by call, plus
 * optional metadata. `interlock snapshot` writes it; `render --snapshot` reads it; a user can
 * assemble one with curl against the Docker socket:
 *
 *   for c in services tasks networks nodes containers/json; do curl -s --unix-socket /var/run/docker.sock http://x/$c; done
 *
 * `interlock snapshot` keeps only the fields interlock reads (./snapshot-fields.ts); a document
 * with the bodies untouched (unknown fields and all) reads the same. ./snapshot-map.ts maps them
 * to the model.
 */
export interface SnapshotMetadata {
  /** Name of the cluster in the config this snapshot belongs to. */
  cluster?: string;
  /** ISO time the snapshot was taken. */
  takenAt?: string;
  /** How long reading the cluster took, in milliseconds. */
  durationMs?: number;
  /** Engine API version used (e.g. "1.41"). */
  apiVersion?: string;
  /** Engine version (GET /version `Version`). */
  engineVersion?: string;
}

export interface SnapshotDocument {
  metadata?: SnapshotMetadata;
  /** GET /services. Absent or empty on a standalone (non-Swarm) engine. */
  services?: unknown[];
  /** GET /tasks */
  tasks?: unknown[];
  /** GET /networks */
  networks?: unknown[];
  /** GET /nodes */
  nodes?: unknown[];
  /** GET /containers/json */
  containers?: unknown[];
}
