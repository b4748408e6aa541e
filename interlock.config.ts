// The example config the README walks through. `npx interlock validate` checks it;
// `npx interlock render --snapshot examples/swarm-demo.snapshot.json` renders it without Docker.
import { defineConfig } from 'interlock';

export default defineConfig({
  clusters: {
    // No endpoint: the same engine the docker CLI would use (DOCKER_HOST, DOCKER_CONTEXT, or the
    // local socket). On a one-node Swarm, published ports are reached on loopback.
    local: { nodeAddress: '127.0.0.1' },
  },
  rules: [
    // interlock 1.x labels (interlock.hostname, interlock.port, ...).
    { kind: 'interlock' },
    // Interlock 2 / Docker EE labels (com.docker.lb.hosts, com.docker.lb.port, ...).
    { kind: 'docker-lb' },
  ],
  outputs: [
    {
      kind: 'haproxy',
      file: 'out/haproxy.cfg',
      http: { address: '127.0.0.1', port: 8080 },
      stats: { address: '127.0.0.1', port: 8404, path: '/stats' },
    },
    {
      kind: 'nginx',
      file: 'out/nginx.conf',
      http: { address: '127.0.0.1', port: 8081 },
    },
    // Container and service statistics for Graphite (`interlock watch`, or `interlock stats`).
    { kind: 'carbon', address: '127.0.0.1:2003', prefix: 'interlock', interval: '10s' },
    { kind: 'log' },
  ],
  watch: {
    debounce: { min: '100ms', max: '1s' },
    reconcile: '5s',
  },
});
