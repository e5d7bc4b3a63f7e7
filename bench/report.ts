// The bench's results as markdown: the measurements, ratios between peers of the same run, and
// the targets marked met / not met.

export type Unit = 'GB/s' | 'ms' | 'µs' | 'MiB';

export interface Row {
  /** Which target it was measured on, e.g. '1 GiB'. */
  target: string;
  name: string;
  value: number;
  unit: Unit;
  /** Every repetition, in unit (empty when the value is a percentile or a single reading). */
  runs: number[];
  detail: string;
}

/** numerator / denominator, both rows of the same target. */
export interface Ratio {
  numerator: string;
  denominator: string;
}

/** A row of one target against a fixed bound or against another row of the same target. */
export interface Goal {
  label: string;
  target: string;
  name: string;
  compare: '>=' | '<=';
  /** A fixed bound, or another row's value times factor (default 1). */
  bound: number | { name: string; factor?: number };
}

export function median(values: number[]): number {
  return percentile(values, 50);
}

/** Nearest-rank percentile. */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) throw new Error('percentile of no values');
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)];
}

const DIGITS: Record<Unit, number> = { 'GB/s': 2, ms: 1, 'µs': 1, MiB: 0 };
const format = (value: number, unit: Unit) => value.toFixed(DIGITS[unit]);

function table(header: string[], rows: string[][]): string {
  return [header, header.map(() => '---'), ...rows].map((cells) => `| ${cells.join(' | ')} |`).join('\n');
}

function find(rows: Row[], target: string, name: string): Row | undefined {
  return rows.find((row) => row.target === target && row.name === name);
}

export function measurementsTable(rows: Row[]): string {
  return table(['target', 'measurement', 'result', 'runs', 'notes'], rows.map((row) => [
    row.target,
    `\`${row.name}\``,
    `**${format(row.value, row.unit)} ${row.unit}**`,
    row.runs.map((value) => format(value, row.unit)).join(', '),
    row.detail,
  ]));
}

export function ratiosTable(rows: Row[], ratios: Ratio[], targets: string[]): string {
  const lines: string[][] = [];
  for (const target of targets) {
    for (const { numerator, denominator } of ratios) {
      const top = find(rows, target, numerator);
      const bottom = find(rows, target, denominator);
      if (top && bottom) lines.push([target, `\`${numerator}\` / \`${denominator}\``, (top.value / bottom.value).toFixed(2)]);
    }
  }
  return table(['target', 'ratio', 'value'], lines);
}

export function goalsTable(rows: Row[], goals: Goal[]): string {
  return table(['target (issue)', 'measured', 'status'], goals.map((goal) => {
    const row = find(rows, goal.target, goal.name);
    const other = typeof goal.bound === 'number' ? undefined : find(rows, goal.target, goal.bound.name)?.value;
    const bound = typeof goal.bound === 'number' ? goal.bound : other === undefined ? undefined : other * (goal.bound.factor ?? 1);
    if (!row || bound === undefined) return [goal.label, '—', 'not measured in this run'];
    const met = goal.compare === '>=' ? row.value >= bound : row.value <= bound;
    // The bound a peer of the same run sets, and which peer: "needs ≥ 0.66 GB/s: 0.9 × `cp dump <file>`".
    const factor = typeof goal.bound === 'number' || (goal.bound.factor ?? 1) === 1 ? '' : `${goal.bound.factor} × `;
    const against = typeof goal.bound === 'number' ? '' : ` (needs ${goal.compare === '>=' ? '≥' : '≤'} ${format(bound, row.unit)} ${row.unit}: ${factor}\`${goal.bound.name}\`)`;
    return [goal.label, `${format(row.value, row.unit)} ${row.unit}${against}`, met ? 'met' : '**not met**'];
  }));
}
