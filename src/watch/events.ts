/**
 * The Docker events stream (GET /events): newline-separated JSON objects, arriving in chunks that
 * split lines and multi-byte characters anywhere. Events are hints that something changed, never
 * the truth (a re-list is), so parsing is forgiving: an unreadable line is counted and skipped.
 */
import { StringDecoder } from 'node:string_decoder';

/** The event types the daemon subscribes to. */
export const WATCHED_EVENT_TYPES = ['service', 'container', 'network', 'node'] as const;

export interface ClusterEvent {
  /** `service`, `container`, `network` or `node`. */
  type: string;
  /** `create`, `update`, `remove`, `start`, `die`, `connect`, ... */
  action: string;
  /** The object the event is about (`Actor.ID`). */
  id: string;
  /** Its name, when the engine says (`Actor.Attributes.name`). */
  name?: string;
  /** The Swarm service the event is about: the service itself, or the service of a task's container. */
  serviceId?: string;
  serviceName?: string;
  /** When it happened, in ms since the epoch. */
  timeMs?: number;
}

/**
 * Actions that say nothing about routing. Container health checks alone produce three exec
 * events per interval per container; re-listing on each would keep the daemon busy for nothing.
 */
const IGNORED_ACTIONS =
  /^(exec_create|exec_start|exec_die|exec_detach|top|attach|detach|resize|commit|copy|archive-path|extract-to-dir|export)\b/;

export function isRelevant(event: ClusterEvent): boolean {
  return !IGNORED_ACTIONS.test(event.action);
}

/** Splits a byte stream into lines; a line longer than `maxLineBytes` is dropped whole and counted. */
export class LineSplitter {
  readonly #decoder = new StringDecoder('utf8');
  readonly #maxLine: number;
  #rest = '';
  /** True while skipping the remainder of an over-long line. */
  #skipping = false;
  dropped = 0;

  constructor(options: { maxLineBytes?: number } = {}) {
    // Docker events are a few hundred bytes; 1 MiB bounds memory if something else answers.
    this.#maxLine = options.maxLineBytes ?? 1024 * 1024;
  }

  push(chunk: Buffer | string): string[] {
    const text = this.#rest + (typeof chunk === 'string' ? chunk : this.#decoder.write(chunk));
    const parts = text.split('\n');
    this.#rest = parts.pop() ?? '';
    const lines: string[] = [];
    for (const part of parts) {
      if (this.#skipping) {
        // The end of the over-long line: what follows the newline is a fresh line.
        this.#skipping = false;
        continue;
      }
      const line = part.endsWith('\r') ? part.slice(0, -1) : part;
      if (line.trim() !== '') lines.push(line);
    }
    if (this.#rest.length > this.#maxLine) {
      this.#rest = '';
      if (!this.#skipping) this.dropped++;
      this.#skipping = true;
    }
    return lines;
  }
}

function str(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

/** One line of the stream → an event, or undefined when it is not one. */
export function parseEvent(line: string): ClusterEvent | undefined {
  let raw: unknown;
  try {
    raw = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (typeof raw !== 'object' || raw === null) return undefined;
  const e = raw as Record<string, unknown>;
  // API ≥ 1.22 has Type/Action/Actor; older engines only status/id/from.
  const type = str(e.Type) ?? (str(e.status) ? 'container' : undefined);
  const action = str(e.Action) ?? str(e.status);
  const actor = (typeof e.Actor === 'object' && e.Actor !== null ? e.Actor : {}) as Record<string, unknown>;
  const attributes = (
    typeof actor.Attributes === 'object' && actor.Attributes !== null ? actor.Attributes : {}
  ) as Record<string, unknown>;
  const id = str(actor.ID) ?? str(e.id);
  if (!type || !action || !id) return undefined;
  const name = str(attributes.name);
  const event: ClusterEvent = { type, action, id };
  if (name) event.name = name;
  if (type === 'service') {
    event.serviceId = id;
    if (name) event.serviceName = name;
  } else {
    const serviceId = str(attributes['com.docker.swarm.service.id']);
    const serviceName = str(attributes['com.docker.swarm.service.name']);
    if (serviceId) event.serviceId = serviceId;
    if (serviceName) event.serviceName = serviceName;
  }
  const timeNano = e.timeNano;
  if (typeof timeNano === 'number' && Number.isFinite(timeNano)) event.timeMs = Math.floor(timeNano / 1e6);
  else if (typeof e.time === 'number' && Number.isFinite(e.time)) event.timeMs = e.time * 1000;
  return event;
}
