export type { ClusterState, NodeState, ServiceState, TaskState } from './cluster/model.ts';
export { type ConfigEnv, type ConfigExport, defineConfig } from './config/define.ts';
export type { Duration } from './config/duration.ts';
export type {
  CarbonOutput,
  ClusterConfig,
  Config,
  ConfigInput,
  Endpoint,
  HaproxyOutput,
  LogOutput,
  NginxOutput,
  OutputConfig,
  RuleConfig,
  RuleFunction,
} from './config/schema.ts';
export type { Backend, BalanceAlgorithm, Route, RouteSpec } from './routes/types.ts';
