/**
 * One benchmark size in a fresh process, so its peak RSS is its own: reads a snapshot file, then
 * runs snapshot → routes → both files (parseSnapshotText, mapSnapshot, buildRoutes, renderHaproxy,
 * renderNginx, as `interlock render --snapshot` does) `warmup + runs` times, timing each stage.
 * Writes the files of the first render to `outDir` and prints one `RESULT {json}` line.
 *
 *   node node_modules/jiti/lib/jiti-cli.mjs bench/lib/render-worker.ts '<RenderJob as JSON>'
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { SnapshotDocument } from '../../src/cluster/snapshot.ts';
import { mapSnapshot, parseSnapshotText } from '../../src/cluster/snapshot-map.ts';
import { configSchema, type HaproxyOutput, type NginxOutput } from '../../src/config/schema.ts';
import { buildRoutes } from '../../src/routes/build.ts';
import { renderHaproxy, renderNginx } from '../../test/helpers/render.ts';
import { RESULT_PREFIX, type RenderJob, type RenderResult, type StageTimes } from './render-job.ts';

function main(): void {
  const job = JSON.parse(process.argv[2] ?? '') as RenderJob;
  const config = configSchema.parse({
    clusters: { bench: job.nodeAddress === undefined ? {} : { nodeAddress: job.nodeAddress } },
    rules: [{ kind: 'interlock' }, { kind: 'docker-lb' }],
    outputs: [
      {
        kind: 'haproxy',
        file: path.join(job.outDir, 'haproxy.cfg'),
        http: { address: '127.0.0.1', port: job.haproxyPort },
      },
      {
        kind: 'nginx',
        file: path.join(job.outDir, 'nginx.conf'),
        runDir: job.outDir,
        http: { address: '127.0.0.1', port: job.nginxPort },
      },
    ],
  });
  const haproxyOutput = config.outputs[0] as HaproxyOutput;
  const nginxOutput = config.outputs[1] as NginxOutput;
  const nodeAddress = config.clusters['bench']?.nodeAddress;

  // The first run's text is read here, so the RSS before the renders counts it.
  let first: string | undefined = readFileSync(job.snapshot, 'utf8');
  const rssBeforeBytes = process.memoryUsage().rss;
  const result: RenderResult = {
    runs: [],
    rssBeforeBytes,
    peakFirstBytes: 0,
    peakAllBytes: 0,
    snapshotBytes: Buffer.byteLength(first),
    services: 0,
    routes: 0,
    servers: 0,
    diagnostics: 0,
    firstDiagnostics: [],
    files: {},
  };

  // Wall and CPU clocks read together at each stage boundary.
  const marks: Array<{ wall: number; cpu: number }> = [];
  const mark = () => {
    const cpu = process.cpuUsage();
    marks.push({ wall: performance.now(), cpu: (cpu.user + cpu.system) / 1000 });
  };
  const stages = (clock: 'wall' | 'cpu'): StageTimes => {
    const d = (i: number) => (marks[i + 1]?.[clock] ?? 0) - (marks[i]?.[clock] ?? 0);
    return { parse: d(0), map: d(1), routes: d(2), haproxy: d(3), nginx: d(4) };
  };

  for (let i = 0; i < job.warmup + job.runs; i++) {
    // Held as `interlock render --snapshot` holds them (cluster/sources.ts, cli/render.ts): the
    // file's text until it is parsed, the document until it is mapped. Held longer, the ~300 MB of
    // parsed document stays live through the routes and the renders, and every full collection
    // there marks it again: a cost the command does not pay. Reading the file is not timed.
    let text: string | undefined = first ?? readFileSync(job.snapshot, 'utf8');
    first = undefined;
    marks.length = 0;
    mark();
    let doc: SnapshotDocument | undefined = parseSnapshotText(text, job.snapshot);
    text = undefined;
    mark();
    const mapped = mapSnapshot(doc, { cluster: 'bench', ...(nodeAddress === undefined ? {} : { nodeAddress }) });
    doc = undefined;
    mark();
    const built = buildRoutes([mapped.state], config.rules);
    mark();
    const haproxy = renderHaproxy(built.routes, haproxyOutput);
    mark();
    const nginx = renderNginx(built.routes, nginxOutput, { runDir: job.outDir });
    mark();
    if (i >= job.warmup) result.runs.push({ wall: stages('wall'), cpu: stages('cpu') });
    if (i === 0) {
      result.peakFirstBytes = process.resourceUsage().maxRSS * 1024;
      const diagnostics = [...mapped.diagnostics, ...built.diagnostics];
      result.services = mapped.state.services.length;
      result.routes = built.routes.length;
      result.servers = built.routes.reduce((n, r) => n + r.backends.length, 0);
      result.diagnostics = diagnostics.length;
      result.firstDiagnostics = diagnostics.slice(0, 3).map((d) => `${d.severity} ${d.service ?? ''}: ${d.message}`);
      for (const f of [...haproxy, ...nginx]) {
        writeFileSync(path.join(job.outDir, f.name), f.content);
        result.files[f.name] = Buffer.byteLength(f.content);
      }
    }
  }
  result.peakAllBytes = process.resourceUsage().maxRSS * 1024;
  process.stdout.write(`${RESULT_PREFIX}${JSON.stringify(result)}\n`);
}

main();
