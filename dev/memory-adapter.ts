/**
 * A storage adapter for the dev issuer: one Map per issuer instance.
 *
 * oidc-provider's built-in memory adapter shares one 1,000-entry LRU between
 * every provider in the process (many test issuers would evict each other's
 * codes and sessions) and prints a warning on every start. This one is private
 * to one issuer, drops entries when they expire, and keeps the grant index
 * that refresh-token reuse detection needs to revoke a whole grant.
 */
import type { Adapter, AdapterFactory, AdapterPayload } from 'oidc-provider';

interface Entry {
  readonly payload: AdapterPayload;
  readonly expiresAt: number;
}

/** Models whose entries belong to a grant and die with it. */
const grantable = new Set(['AccessToken', 'AuthorizationCode', 'RefreshToken', 'DeviceCode', 'BackchannelAuthenticationRequest']);

/** Creates the adapter factory for one issuer; nothing is shared with another. */
export function createMemoryAdapter(): AdapterFactory {
  const entries = new Map<string, Entry>();
  // Secondary indexes hold full entry keys ("Model:id").
  const byUid = new Map<string, string>();
  const byUserCode = new Map<string, string>();
  const grants = new Map<string, Set<string>>();

  const get = (key: string): AdapterPayload | undefined => {
    const entry = entries.get(key);
    if (entry && entry.expiresAt <= Date.now()) {
      entries.delete(key);
      return undefined;
    }
    return entry?.payload;
  };

  // Expired entries are also dropped when the store grows, so a long-running
  // quick start does not keep every code it ever issued.
  const sweep = () => {
    const now = Date.now();
    for (const [key, entry] of entries) if (entry.expiresAt <= now) entries.delete(key);
    for (const index of [byUid, byUserCode]) for (const [k, v] of index) if (!entries.has(v)) index.delete(k);
    for (const [grantId, members] of grants) {
      for (const member of members) if (!entries.has(member)) members.delete(member);
      if (members.size === 0) grants.delete(grantId);
    }
  };

  return (model: string): Adapter => {
    const key = (id: string) => `${model}:${id}`;
    return {
      async upsert(id, payload, expiresIn) {
        if (entries.size > 10_000) sweep();
        const expiresAt = typeof expiresIn === 'number' ? Date.now() + expiresIn * 1000 : Infinity;
        entries.set(key(id), { payload, expiresAt });
        if (model === 'Session' && typeof payload.uid === 'string') byUid.set(payload.uid, key(id));
        if (typeof payload.userCode === 'string') byUserCode.set(payload.userCode, key(id));
        if (grantable.has(model) && typeof payload.grantId === 'string') {
          const members = grants.get(payload.grantId) ?? new Set();
          grants.set(payload.grantId, members.add(key(id)));
        }
      },
      async find(id) {
        return get(key(id));
      },
      async findByUid(uid) {
        const entryKey = byUid.get(uid);
        return entryKey === undefined ? undefined : get(entryKey);
      },
      async findByUserCode(userCode) {
        const entryKey = byUserCode.get(userCode);
        return entryKey === undefined ? undefined : get(entryKey);
      },
      async consume(id) {
        const payload = get(key(id));
        if (payload) payload.consumed = Math.floor(Date.now() / 1000);
      },
      async destroy(id) {
        entries.delete(key(id));
      },
      async revokeByGrantId(grantId) {
        for (const member of grants.get(grantId) ?? []) entries.delete(member);
        grants.delete(grantId);
      },
    };
  };
}
