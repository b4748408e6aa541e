/**
 * What /healthz answers, computed from plain records: per cluster connected / stale / down, per
 * output its last successful apply and its last failure. Healthy (200) when every cluster is
 * connected and no output's last attempt failed; otherwise 503, so an orchestrator's probe or an
 * alert notices a daemon that is serving stale or rejected configuration.
 */
import type { CertificateStatus } from '../acme/issuer.ts';
import type { ClusterHealth } from './cluster-watcher.ts';

export type OutputState = 'pending' | 'ok' | 'rejected' | 'failed';

export interface OutputRecord {
  name: string;
  state: OutputState;
  /** Last time its files were replaced (or found already correct) and the proxy reloaded. */
  lastSuccessMs?: number;
  /** Last time anything was attempted (render compared with the files). */
  lastAttemptMs?: number;
  /** The proxy's complaint or the write / reload failure of the last attempt. */
  error?: string;
  /** Services the rejection is about. */
  services?: string[];
  /** Services left out of the applied files, with the proxy's (or the material check's) reason. */
  leftOut?: { service: string; reason: string }[];
  /** The last way a change reached the proxy: its runtime API, or a reload. */
  appliedBy?: { how: 'runtime' | 'reload'; atMs: number };
}

export interface HealthReport {
  status: 200 | 503;
  body: {
    ok: boolean;
    clusters: Record<string, { state: string; lastRead: string | null; error: string | null }>;
    outputs: Record<
      string,
      {
        state: OutputState;
        lastApply: string | null;
        error: string | null;
        services?: string[];
        leftOut?: { service: string; reason: string }[];
        lastApplied?: { how: 'runtime' | 'reload'; time: string };
      }
    >;
    lastError: { time: string; message: string } | null;
    /** The proxy fleet (src/fleet), when the config serves outputs to agents. */
    agents?: unknown;
    /**
     * With an `acme` config: each certificate (hosts, state, issuer, expiry, next renewal, last
     * error). A failing certificate does not turn the daemon unhealthy: the host is still served
     * (old or default certificate); alert on `interlock_acme_certificate_expiry_days` instead.
     */
    certificates?: CertificateStatus[];
  };
}

const iso = (ms: number | undefined) => (ms === undefined ? null : new Date(ms).toISOString());

export function healthReport(
  clusters: readonly ClusterHealth[],
  outputs: readonly OutputRecord[],
  lastError: { timeMs: number; message: string } | undefined,
): HealthReport {
  const ok =
    clusters.every((c) => c.state === 'connected') && outputs.every((o) => o.state === 'ok' || o.state === 'pending');
  return {
    status: ok ? 200 : 503,
    body: {
      ok,
      clusters: Object.fromEntries(
        clusters.map((c) => [c.cluster, { state: c.state, lastRead: iso(c.lastReadMs), error: c.error ?? null }]),
      ),
      outputs: Object.fromEntries(
        outputs.map((o) => [
          o.name,
          {
            state: o.state,
            lastApply: iso(o.lastSuccessMs),
            error: o.error ?? null,
            ...(o.services && o.services.length > 0 ? { services: o.services } : {}),
            ...(o.leftOut && o.leftOut.length > 0 ? { leftOut: o.leftOut } : {}),
            ...(o.appliedBy
              ? { lastApplied: { how: o.appliedBy.how, time: new Date(o.appliedBy.atMs).toISOString() } }
              : {}),
          },
        ]),
      ),
      lastError: lastError ? { time: new Date(lastError.timeMs).toISOString(), message: lastError.message } : null,
    },
  };
}
