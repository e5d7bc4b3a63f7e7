// Malformed /proc text is a parse failure the caller can tell apart from I/O errors
// (ENOENT, ESRCH, EACCES), which are passed through untouched.

export class ProcParseError extends Error {
  /** 1-based line of the text the parser stopped at. */
  readonly line: number;
  /** What the parser expected to find there. */
  readonly expected: string;

  constructor(source: string, line: number, expected: string, found: string) {
    super(`${source} line ${line}: expected ${expected}, found ${JSON.stringify(clip(found))}`);
    this.name = 'ProcParseError';
    this.line = line;
    this.expected = expected;
  }
}

function clip(text: string): string {
  return text.length > 120 ? `${text.slice(0, 120)}...` : text;
}
