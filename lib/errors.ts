/**
 * The one error type users see. `code` says what kind of failure it is (and picks the exit code),
 * `stage`, `file` and `position` say where. Bad arguments to functions throw TypeError/RangeError.
 */
export type ErrorCode =
  | 'USAGE' // bad flag or config value
  | 'INPUT' // unreadable, binary or malformed input
  | 'STATE' // run directory in a state we cannot continue from (lock held, wrong vocab, ...)
  | 'INTERRUPTED' // Ctrl-C / SIGTERM at a safe point
  | 'INTERNAL';

export const EXIT_CODES: Record<ErrorCode, number> = {
  USAGE: 2,
  INPUT: 3,
  STATE: 4,
  INTERRUPTED: 130,
  INTERNAL: 1,
};

export interface ErrorPlace {
  stage?: string;
  file?: string;
  /** Human-readable position: "byte 1234", "line 7", "record 12". */
  position?: string;
}

export class LmpipeError extends Error {
  readonly code: ErrorCode;
  readonly stage?: string;
  readonly file?: string;
  readonly position?: string;

  constructor(code: ErrorCode, message: string, place: ErrorPlace = {}) {
    super(message);
    this.name = 'LmpipeError';
    this.code = code;
    this.stage = place.stage;
    this.file = place.file;
    this.position = place.position;
  }

  /** One line: "count: corpus.json at byte 1234: Unexpected token" */
  toLine(): string {
    const where = [this.file, this.position ? `at ${this.position}` : undefined].filter(Boolean).join(' ');
    const prefix = [this.stage, where].filter(Boolean).join(': ');
    return prefix ? `${prefix}: ${this.message}` : this.message;
  }
}

/** Formats any thrown value as the one line a CLI prints, and picks the exit code. */
export function describeFailure(error: unknown): { line: string; exitCode: number } {
  if (error instanceof LmpipeError) return { line: `error: ${error.toLine()}`, exitCode: EXIT_CODES[error.code] };
  if (error instanceof TypeError || error instanceof RangeError) {
    return { line: `error: ${error.message}`, exitCode: EXIT_CODES.USAGE };
  }
  const message = error instanceof Error ? error.message : String(error);
  return { line: `error: ${message}`, exitCode: EXIT_CODES.INTERNAL };
}
