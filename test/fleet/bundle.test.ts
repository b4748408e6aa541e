import { describe, expect, it } from 'vitest';
import { badName, bundleHash, makeBundle, parseBundle, rebase } from '../../src/fleet/bundle.ts';

const files = [
  { name: 'certs/a.pem', content: 'PEM', secret: true },
  { name: 'haproxy.hosts.0123456789ab.map', content: 'a.test/ web\n' },
  {
    name: 'haproxy.cfg',
    content: 'stats socket /srv/p/stats.sock\ncrt-list /srv/p/certs/list\nx /srv/px/no\ny "/srv/p"\n',
  },
];

describe('bundle hash', () => {
  it('is stable, and changes with any byte, name, secrecy, kind or root', () => {
    const h = bundleHash('haproxy', '/srv/p', files);
    expect(h).toMatch(/^[0-9a-f]{64}$/);
    expect(
      bundleHash(
        'haproxy',
        '/srv/p',
        files.map((f) => ({ ...f })),
      ),
    ).toBe(h);
    const variants = [
      bundleHash('nginx', '/srv/p', files),
      bundleHash('haproxy', '/srv/q', files),
      bundleHash('haproxy', '/srv/p', [{ ...files[0], content: 'PEM!' }, files[1], files[2]] as typeof files),
      bundleHash('haproxy', '/srv/p', [{ ...files[0], name: 'certs/b.pem' }, files[1], files[2]] as typeof files),
      bundleHash('haproxy', '/srv/p', [{ ...files[0], secret: false }, files[1], files[2]] as typeof files),
      // Moving bytes between name and content must not collide.
      bundleHash('haproxy', '/srv/p', [{ name: 'a', content: 'bc' }]),
    ];
    expect(new Set([h, ...variants]).size).toBe(variants.length + 1);
    expect(bundleHash('haproxy', '/srv/p', [{ name: 'ab', content: 'c' }])).not.toBe(variants[5]);
  });
});

describe('parseBundle', () => {
  const good = makeBundle('edge', 'haproxy', '/srv/p', files);

  it('accepts what makeBundle makes', () => {
    expect(parseBundle(JSON.parse(JSON.stringify(good)))).toEqual(good);
  });

  it('refuses a wrong hash, unsafe names, a main file that is not last, a relative root', () => {
    expect(() => parseBundle({ ...good, hash: 'f'.repeat(64) })).toThrow(/hash does not match/);
    for (const name of ['../etc/passwd', '/etc/passwd', 'a/../../b', 'a\nb', '', './a']) {
      const files2 = [{ name, content: 'x' }, ...good.files];
      expect(() => parseBundle({ ...good, files: files2, hash: bundleHash('haproxy', '/srv/p', files2) })).toThrow(
        /file name/,
      );
    }
    const reordered = [good.files[2], good.files[0], good.files[1]];
    expect(() =>
      parseBundle({ ...good, files: reordered, hash: bundleHash('haproxy', '/srv/p', reordered as typeof files) }),
    ).toThrow(/main file/);
    expect(() => parseBundle({ ...good, root: 'srv/p', hash: bundleHash('haproxy', 'srv/p', files) })).toThrow(
      /not absolute/,
    );
    expect(() => parseBundle({ ...good, extra: 1 })).toThrow(/not a bundle/);
    expect(() => parseBundle({ ...good, kind: 'caddy' })).toThrow(/not a bundle/);
  });

  it('carries the folders to create (Nginx run folder): in the hash, names checked like file names', () => {
    const withRun = makeBundle('edge', 'nginx', '/srv/p', files, ['run', 'run']);
    expect(withRun.dirs).toEqual(['run']);
    expect(withRun.hash).not.toBe(makeBundle('edge', 'nginx', '/srv/p', files).hash);
    // without folders the hash is what it was before bundles could carry them
    expect(makeBundle('edge', 'nginx', '/srv/p', files, []).hash).toBe(bundleHash('nginx', '/srv/p', files));
    expect(makeBundle('edge', 'nginx', '/srv/p', files)).not.toHaveProperty('dirs');
    expect(parseBundle(JSON.parse(JSON.stringify(withRun)))).toEqual(withRun);
    expect(() => parseBundle({ ...withRun, dirs: ['other'] })).toThrow(/hash does not match/);
    for (const d of ['../run', '/run/nginx', 'a/../../b', '']) {
      const hash = bundleHash('nginx', '/srv/p', files, [d]);
      expect(() => parseBundle({ ...withRun, dirs: [d], hash })).toThrow(/folder name/);
    }
  });

  it('badName accepts plain relative names', () => {
    expect(badName('certs/a.pem')).toBeUndefined();
    expect(badName('haproxy.cfg')).toBeUndefined();
  });
});

describe('rebase', () => {
  const b = makeBundle('edge', 'haproxy', '/srv/p', files);

  it("puts the files under the agent's folder and rebases the root where it is a path", () => {
    const out = rebase(b, '/var/agent1/');
    expect(out.map((f) => f.path)).toEqual([
      '/var/agent1/certs/a.pem',
      '/var/agent1/haproxy.hosts.0123456789ab.map',
      '/var/agent1/haproxy.cfg',
    ]);
    expect(out[0]?.secret).toBe(true);
    expect(out[2]?.content).toBe(
      'stats socket /var/agent1/stats.sock\ncrt-list /var/agent1/certs/list\nx /srv/px/no\ny "/var/agent1"\n',
    );
  });

  it('leaves the contents alone when the folder is the root', () => {
    expect(rebase(b, '/srv/p').map((f) => f.content)).toEqual(files.map((f) => f.content));
  });
});
