/** What bench/render.ts asks of bench/lib/render-worker.ts, and what it answers. */

export interface RenderJob {
  snapshot: string;
  outDir: string;
  warmup: number;
  runs: number;
  /** The cluster's `nodeAddress` override (the throughput configs point every backend at 127.0.0.1). */
  nodeAddress?: string;
  haproxyPort: number;
  nginxPort: number;
}

export interface StageTimes {
  parse: number;
  map: number;
  routes: number;
  haproxy: number;
  nginx: number;
}

export interface RunTimes {
  /** Wall time per stage, in milliseconds. */
  wall: StageTimes;
  /**
   * CPU time (user + system, every thread of the process: GC helpers too) per stage, in
   * milliseconds. Less disturbed than wall time when other processes compete for the CPUs.
   */
  cpu: StageTimes;
}

export interface RenderResult {
  /** One entry per measured run (warm-up excluded). */
  runs: RunTimes[];
  /** RSS after loading the code and reading the snapshot text, before any render. */
  rssBeforeBytes: number;
  /** Peak RSS (maxRSS) after the first render: what one `interlock render` needs. */
  peakFirstBytes: number;
  /** Peak RSS after every run. */
  peakAllBytes: number;
  snapshotBytes: number;
  services: number;
  routes: number;
  servers: number;
  diagnostics: number;
  firstDiagnostics: string[];
  files: Record<string, number>;
}

export const RESULT_PREFIX = 'RESULT ';
