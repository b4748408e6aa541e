/**
 * interlock's own view of one cluster: plain, sorted data mapped from the Docker Engine API at the
 * edge (see ./snapshot-map.ts). Nothing past this point sees raw API JSON.
 */

export interface ClusterState {
  /** The cluster's name in the config. */
  cluster: string;
  /** true when the engine is a Swarm manager; false for a standalone engine (containers only). */
  swarm: boolean;
  /** Services (Swarm) or standalone containers, sorted by name. */
  services: ServiceState[];
  /** Nodes sorted by id. Empty for a standalone engine. */
  nodes: NodeState[];
  /** Networks sorted by name. */
  networks: NetworkState[];
  /**
   * The cluster's `nodeAddress` override from the config, when set: published ports are reached
   * on this one address instead of on each node's own.
   */
  nodeAddress?: string;
}

export interface NodeState {
  id: string;
  hostname: string;
  /** The node's own address (`Status.Addr`), used to reach host-published ports. */
  address: string;
  role: 'manager' | 'worker';
  ready: boolean;
  available: boolean;
}

export interface NetworkState {
  id: string;
  name: string;
  driver: string;
  scope: string;
}

export interface PublishedPort {
  /** Port inside the task / container. */
  target: number;
  /** Port on the node (host mode) or on every node (ingress). */
  published: number;
  protocol: 'tcp' | 'udp' | 'sctp';
  mode: 'ingress' | 'host';
}

export interface NetworkAddress {
  /** Network name (ids are mapped to names; an unknown id is kept as is). */
  network: string;
  /** IP address without the prefix length. */
  address: string;
}

export interface TaskState {
  id: string;
  /** Replica slot for replicated services; absent for global services and containers. */
  slot?: number;
  nodeId: string;
  /** Address of the node the task runs on, after the cluster's `nodeAddress` override. */
  nodeAddress: string;
  containerId?: string;
  /** Addresses on each attached network, sorted by network name. */
  addresses: NetworkAddress[];
  /** Host-mode published ports of this task (`Status.PortStatus.Ports`). */
  hostPorts: PublishedPort[];
}

export interface ServiceState {
  id: string;
  name: string;
  /** `replicated` / `global` for Swarm services, `container` for a standalone container. */
  mode: 'replicated' | 'global' | 'container';
  /** Desired replicas of a replicated service. */
  replicas?: number;
  labels: Readonly<Record<string, string>>;
  /**
   * When the service (or container) was created, ISO 8601. Decides who keeps a contested host:
   * the route that was there first.
   */
  createdAt?: string;
  /** Names of the networks the service is attached to, sorted. */
  networks: string[];
  /** Service virtual IPs per network (`Endpoint.VirtualIPs`), sorted by network. */
  vips: NetworkAddress[];
  /** Ingress-published ports (`Endpoint.Ports` with mode ingress), sorted. */
  ingressPorts: PublishedPort[];
  /** Running tasks only (state and desired state both `running`), sorted by slot then id. */
  tasks: TaskState[];
}
