/**
 * Hand-written checks of the Docker API entries, for the common case: each says whether an entry
 * surely passes its zod schema in ./snapshot-map.ts (ENTRY_SCHEMAS), without copying it. An entry
 * that passes is read as it is; one that does not (or that a check is unsure of) goes through
 * the zod schema, which gives the same result and the same diagnostic as before. So a check may
 * be stricter than its schema, never looser: test/cluster/snapshot-fast.test.ts holds them to
 * that on the goldens' snapshots, generated ones and malformed variants.
 *
 * Why: zod builds a new object per entry and per nested field; at 10,000 services (50,000 tasks)
 * that was a second full copy of the snapshot and most of the mapping time (issue 12).
 * Pure: no file system, clock or environment.
 */

type Obj = Record<string, unknown>;

const ID_RE = /^[A-Za-z0-9_.-]{1,128}$/;
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
const isNullish = (v: unknown) => v === undefined || v === null;
const optString = (v: unknown) => v === undefined || typeof v === 'string';
const nullishString = (v: unknown) => v === undefined || v === null || typeof v === 'string';
const isId = (v: unknown) => typeof v === 'string' && ID_RE.test(v);
const isName = (v: unknown) => typeof v === 'string' && NAME_RE.test(v);
const isInt = (v: unknown, min: number, max: number): boolean =>
  typeof v === 'number' && Number.isSafeInteger(v) && v >= min && v <= max;
const isPort = (v: unknown) => isInt(v, 1, 65535);

/** A nullish list whose items all pass `item`. */
function nullishListOf(v: unknown, item: (x: unknown) => boolean): boolean {
  if (isNullish(v)) return true;
  if (!Array.isArray(v)) return false;
  for (let i = 0; i < v.length; i++) if (!item(v[i])) return false;
  return true;
}

/** Labels: absent, null, or an object of strings. */
function isLabels(v: unknown): boolean {
  if (v === undefined || v === null) return true;
  if (!isObj(v)) return false;
  for (const key in v) if (typeof v[key] !== 'string') return false;
  return true;
}

function isApiPort(v: unknown): boolean {
  return (
    isObj(v) &&
    optString(v.Protocol) &&
    isPort(v.TargetPort) &&
    (v.PublishedPort === undefined || isInt(v.PublishedPort, 0, 65535)) &&
    optString(v.PublishMode)
  );
}

const isNetworkRef = (v: unknown) => isObj(v) && typeof v.Target === 'string';

export function networkOk(v: Obj): boolean {
  return (
    isId(v.Id) &&
    isName(v.Name) &&
    nullishString(v.Driver) &&
    nullishString(v.Scope) &&
    (isNullish(v.Ingress) || typeof v.Ingress === 'boolean')
  );
}

/** A nullish object whose listed fields are absent or strings. */
function nullishStrings(v: unknown, ...keys: string[]): boolean {
  if (isNullish(v)) return true;
  if (!isObj(v)) return false;
  for (const k of keys) if (!optString(v[k])) return false;
  return true;
}

export function nodeOk(v: Obj): boolean {
  return (
    isId(v.ID) &&
    nullishStrings(v.Description, 'Hostname') &&
    nullishStrings(v.Spec, 'Role', 'Availability') &&
    nullishStrings(v.Status, 'State', 'Addr') &&
    nullishStrings(v.ManagerStatus, 'Addr')
  );
}

function isVip(v: unknown): boolean {
  return isObj(v) && typeof v.NetworkID === 'string' && optString(v.Addr);
}

export function serviceOk(v: Obj): boolean {
  if (!isId(v.ID) || !optString(v.CreatedAt)) return false;
  const spec = v.Spec;
  if (!isObj(spec) || !isName(spec.Name) || !isLabels(spec.Labels)) return false;
  const mode = spec.Mode;
  if (!isNullish(mode)) {
    if (!isObj(mode)) return false;
    const replicated = mode.Replicated;
    if (!isNullish(replicated)) {
      if (!isObj(replicated)) return false;
      if (replicated.Replicas !== undefined && !isInt(replicated.Replicas, 0, Number.MAX_SAFE_INTEGER)) return false;
    }
  }
  const template = spec.TaskTemplate;
  if (!isNullish(template) && !(isObj(template) && nullishListOf(template.Networks, isNetworkRef))) return false;
  if (!nullishListOf(spec.Networks, isNetworkRef)) return false;
  const endpoint = v.Endpoint;
  if (isNullish(endpoint)) return true;
  return isObj(endpoint) && nullishListOf(endpoint.Ports, isApiPort) && nullishListOf(endpoint.VirtualIPs, isVip);
}

function isAttachment(v: unknown): boolean {
  if (!isObj(v)) return false;
  const network = v.Network;
  if (!isNullish(network)) {
    if (!isObj(network) || !optString(network.ID) || !nullishStrings(network.Spec, 'Name')) return false;
  }
  return nullishListOf(v.Addresses, (a) => typeof a === 'string');
}

export function taskOk(v: Obj): boolean {
  if (!isId(v.ID) || typeof v.ServiceID !== 'string' || typeof v.DesiredState !== 'string') return false;
  if (v.Slot !== undefined && !isInt(v.Slot, 0, Number.MAX_SAFE_INTEGER)) return false;
  if (!optString(v.NodeID)) return false;
  const status = v.Status;
  if (!isObj(status) || typeof status.State !== 'string' || !nullishStrings(status.ContainerStatus, 'ContainerID'))
    return false;
  const portStatus = status.PortStatus;
  if (!isNullish(portStatus) && !(isObj(portStatus) && nullishListOf(portStatus.Ports, isApiPort))) return false;
  return nullishListOf(v.NetworksAttachments, isAttachment);
}

function isContainerPort(v: unknown): boolean {
  return (
    isObj(v) &&
    optString(v.IP) &&
    isPort(v.PrivatePort) &&
    (v.PublicPort === undefined || isPort(v.PublicPort)) &&
    optString(v.Type)
  );
}

/** The `Ports` of a /containers/json entry. */
export function containerPortsOk(v: unknown): boolean {
  return nullishListOf(v, isContainerPort);
}

function isEndpointSettings(v: unknown): boolean {
  return isNullish(v) || (isObj(v) && nullishString(v.IPAddress) && nullishString(v.GlobalIPv6Address));
}

export function containerOk(v: Obj): boolean {
  if (!isId(v.Id)) return false;
  if (v.Created !== undefined && !(typeof v.Created === 'number' && Number.isFinite(v.Created))) return false;
  if (!nullishListOf(v.Names, (n) => typeof n === 'string') || !isLabels(v.Labels) || !optString(v.State)) return false;
  if (!containerPortsOk(v.Ports)) return false;
  const settings = v.NetworkSettings;
  if (isNullish(settings)) return true;
  if (!isObj(settings)) return false;
  const networks = settings.Networks;
  if (isNullish(networks)) return true;
  if (!isObj(networks)) return false;
  for (const key in networks) if (!isEndpointSettings(networks[key])) return false;
  return true;
}
