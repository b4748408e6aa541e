import { describe, expect, it } from 'vitest';
import { createNamer, patternProblems, sanitizeSegment, sanitizeTagValue } from '../../src/stats/names.ts';

describe('default names', () => {
  const namer = createNamer({ prefix: 'interlock' });

  it('service and task series under the documented layout', () => {
    expect(namer.service({ cluster: 'prod', service: 'web' }, 'cpu.percent')).toBe(
      'interlock.prod.services.web.cpu.percent',
    );
    expect(namer.task({ cluster: 'prod', service: 'web', task: '3' }, 'memory.used')).toBe(
      'interlock.prod.tasks.web.3.memory.used',
    );
  });

  it('a dot inside a value never creates a level (Swarm task names hold dots)', () => {
    const path = namer.task({ cluster: 'prod', service: 'web.v2', task: 'web.1.qzqm7dye9rqf' }, 'pids');
    expect(path).toBe('interlock.prod.tasks.web_v2.web_1_qzqm7dye9rqf.pids');
    expect(path.split('.')).toHaveLength(6);
  });

  it('slashes, `..`, spaces, tag and line separators and non-ASCII become `_`', () => {
    expect(namer.service({ cluster: 'a/b', service: '../x y;z=1\nq' }, 'pids')).toBe(
      'interlock.a_b.services.___x_y_z_1_q.pids',
    );
    // One `_` per code point: é, the space, the emoji.
    expect(sanitizeSegment('café 🚀')).toBe('caf___');
  });

  it('empty values leave no empty level; a node is a level only when given', () => {
    expect(namer.service({ cluster: '', service: 'web' }, 'pids')).toBe('interlock.services.web.pids');
    expect(namer.service({ cluster: 'prod', service: 'web', node: 'n1' }, 'pids')).toBe(
      'interlock.prod.services.web.n1.pids',
    );
  });

  it('a dotted prefix keeps its levels', () => {
    const n = createNamer({ prefix: 'ops.docker' });
    expect(n.service({ cluster: 'c', service: 's' }, 'cpu.percent')).toBe('ops.docker.c.services.s.cpu.percent');
  });

  it("interlock's own series are per instance, so daemons on several nodes do not overwrite each other", () => {
    expect(namer.daemon('node-1', 'renders')).toBe('interlock.interlock.node-1.renders');
    expect(namer.daemon('host.example', 'metrics.sent')).toBe('interlock.interlock.host_example.metrics.sent');
  });
});

describe('custom pattern', () => {
  it('placeholders can sit inside a segment with literal text', () => {
    const n = createNamer({ prefix: 'p', pattern: 'docker.{prefix}.{cluster}.svc-{service}.{task}.{metric}' });
    expect(n.task({ cluster: 'c', service: 'web', task: '1' }, 'cpu.percent')).toBe('docker.p.c.svc-web.1.cpu.percent');
    // No task on a service series: the segment is empty and dropped.
    expect(n.service({ cluster: 'c', service: 'web' }, 'cpu.percent')).toBe('docker.p.c.svc-web.cpu.percent');
  });

  it('inside a mixed segment a dotted value cannot add levels either', () => {
    const n = createNamer({ prefix: 'p', pattern: '{prefix}.{cluster}.{service}.{task}.m-{metric}' });
    expect(n.task({ cluster: 'c', service: 's', task: '1' }, 'cpu.percent')).toBe('p.c.s.1.m-cpu_percent');
  });

  it('problems are all reported at once', () => {
    expect(patternProblems('{prefix}.{servce}.x y')).toEqual([
      'unknown placeholder {servce}: use {prefix} {cluster} {service} {task} {node} {metric}',
      '" ": only letters, digits, _ - and . are allowed outside placeholders',
      'no {metric}: every figure would be written to the same series',
      'no {service}: all services would share one series',
      "no {task}: a service's tasks would share one series with each other and with the service total",
    ]);
    expect(patternProblems('{prefix}.{metric')).toContain('unbalanced `{` or `}`');
    expect(patternProblems('{prefix}.{cluster}.{service}.{task}.{metric}')).toEqual([]);
    // Tags tell service and task series apart, so the name alone need not.
    expect(patternProblems('{prefix}.{metric}', { tags: true })).toEqual([]);
  });

  it('createNamer refuses a broken pattern', () => {
    expect(() => createNamer({ prefix: 'p', pattern: '{prefix}.{metric}' })).toThrow(/no \{service\}/);
  });
});

describe('tag mode', () => {
  const namer = createNamer({ prefix: 'interlock', tags: true });

  it('values move into sorted tags; the name says service or task and what is measured', () => {
    expect(namer.service({ cluster: 'prod', service: 'web' }, 'cpu.percent')).toBe(
      'interlock.services.cpu.percent;cluster=prod;service=web',
    );
    expect(namer.task({ cluster: 'prod', service: 'web', task: '2', node: 'abc' }, 'pids')).toBe(
      'interlock.tasks.pids;cluster=prod;node=abc;service=web;task=2',
    );
    expect(namer.daemon('n1', 'renders')).toBe('interlock.interlock.renders;instance=n1');
  });

  it('tag values keep dots but lose `;`, `~`, `=`, spaces; an empty value drops the tag', () => {
    expect(sanitizeTagValue('~a;b=c d.e')).toBe('_a_b_c_d.e');
    expect(namer.service({ cluster: '', service: 'web.v2' }, 'pids')).toBe('interlock.services.pids;service=web.v2');
  });
});
