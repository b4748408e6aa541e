import { describe, expect, it, vi } from 'vitest';
import { dockerSignalTarget, type SignalApi } from '../../src/apply/reload.ts';

describe('docker-signal reloads', () => {
  it('signals labelled containers and the containers of labelled services, each once', async () => {
    const killed: string[] = [];
    const api: SignalApi = {
      listServices: vi.fn(async () => [{ ID: 'svc1' }]),
      listContainers: vi.fn(async (o?: { filters?: Record<string, string[]> }) => {
        const label = o?.filters?.label?.[0];
        if (label === 'role=proxy') return [{ Id: 'c1' }, { Id: 'c2' }];
        if (label === 'com.docker.swarm.service.id=svc1') return [{ Id: 'c2' }, { Id: 'c3' }];
        return [];
      }),
      getContainer: (id: string) => ({
        kill: async (o?: { signal?: string }) => {
          killed.push(`${id}:${o?.signal}`);
        },
      }),
    };
    const lookup = vi.fn(async () => api);
    const n = await dockerSignalTarget(lookup).signalContainers('edge', 'role=proxy', 'SIGHUP');
    expect(n).toBe(3);
    expect(killed.sort()).toEqual(['c1:SIGHUP', 'c2:SIGHUP', 'c3:SIGHUP']);
    expect(lookup).toHaveBeenCalledWith('edge');
    expect(api.listServices).toHaveBeenCalledWith({ filters: { label: ['role=proxy'] } });
  });
});
