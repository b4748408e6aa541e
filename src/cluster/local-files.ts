/** Small helpers for the local files endpoint resolution reads (contexts, TLS and ssh keys). */
import { stat } from 'node:fs/promises';

/** The file when it exists and is a regular file. */
export async function existing(file: string): Promise<string | undefined> {
  try {
    return (await stat(file)).isFile() ? file : undefined;
  } catch {
    return undefined;
  }
}

/** An environment value or a stored field: empty means unset, as for the docker CLI. */
export function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}

export function isErrno(error: unknown, code: string): boolean {
  return (error as NodeJS.ErrnoException | undefined)?.code === code;
}

const ERRNO_TEXT: Record<string, string> = {
  ENOENT: 'no such file',
  EACCES: 'permission denied',
  EISDIR: 'is a directory',
};

/** A file system error in a few words (`no such file`), for messages. */
export function errorText(error: unknown): string {
  const e = error as NodeJS.ErrnoException;
  const text = (e?.code && ERRNO_TEXT[e.code]) ?? e?.code ?? e?.message ?? String(error);
  return text.replace(/\s+/g, ' ');
}
