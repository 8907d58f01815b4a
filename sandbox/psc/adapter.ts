// Storage for the simulator's provider state (sessions, codes, tokens, grants): one Map per
// simulator, entries expire with their TTL. Unlike oidc-provider's quick-start adapter it has no
// 1000-entry cap (benchmarks mint many tokens) and it is not shared between simulators.
type Payload = Record<string, unknown> & { grantId?: string; uid?: string; userCode?: string; jti?: string };

export function createSimulatorAdapter(): (model: string) => unknown {
  const entries = new Map<string, { value: unknown; expiresAt: number }>();
  const grants = new Map<string, Set<string>>(); // grantId → keys of tokens issued under it
  let writes = 0;

  const get = (key: string): unknown => {
    const e = entries.get(key);
    if (!e) return undefined;
    if (e.expiresAt <= Date.now()) {
      entries.delete(key);
      return undefined;
    }
    return e.value;
  };
  const set = (key: string, value: unknown, expiresIn?: number) => {
    entries.set(key, { value, expiresAt: typeof expiresIn === 'number' ? Date.now() + expiresIn * 1000 : Infinity });
    if (++writes % 1000 === 0) sweep();
  };
  const sweep = () => {
    const now = Date.now();
    for (const [k, e] of entries) if (e.expiresAt <= now) entries.delete(k);
    for (const [g, keys] of grants) {
      for (const k of keys) if (!entries.has(k)) keys.delete(k);
      if (!keys.size) grants.delete(g);
    }
  };

  return (model: string) => {
    const key = (id: string) => `${model}:${id}`;
    return {
      async upsert(id: string, payload: Payload, expiresIn?: number) {
        set(key(id), payload, expiresIn);
        if (model === 'Session' && payload.uid) set(`sessionUid:${payload.uid}`, id, expiresIn);
        if (payload.userCode) set(`userCode:${payload.userCode}`, id, expiresIn);
        if (payload.grantId && model !== 'Grant') {
          const keys = grants.get(payload.grantId) ?? new Set<string>();
          keys.add(key(id));
          grants.set(payload.grantId, keys);
        }
      },
      async find(id: string) {
        return get(key(id));
      },
      async findByUid(uid: string) {
        const id = get(`sessionUid:${uid}`);
        return typeof id === 'string' ? get(key(id)) : undefined;
      },
      async findByUserCode(userCode: string) {
        const id = get(`userCode:${userCode}`);
        return typeof id === 'string' ? get(key(id)) : undefined;
      },
      async consume(id: string) {
        const p = get(key(id)) as Payload | undefined;
        if (p) p.consumed = Math.floor(Date.now() / 1000);
      },
      async destroy(id: string) {
        entries.delete(key(id));
      },
      async revokeByGrantId(grantId: string) {
        for (const k of grants.get(grantId) ?? []) entries.delete(k);
        grants.delete(grantId);
      },
    };
  };
}
