/**
 * A small Prometheus registry (text exposition format 0.0.4): counters and gauges with labels.
 * Enough for a node daemon's few series, without another dependency.
 */

type Labels = Record<string, string>;

interface Series { help: string; type: 'counter' | 'gauge'; values: Map<string, { labels: Labels; value: number }> }

function labelKey(labels: Labels): string {
  return Object.keys(labels).sort().map((k) => `${k}=${labels[k] ?? ''}`).join(',');
}

function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

export class Metrics {
  private readonly series = new Map<string, Series>();

  private get(name: string, type: Series['type'], help: string): Series {
    let s = this.series.get(name);
    if (!s) {
      s = { help, type, values: new Map() };
      this.series.set(name, s);
    }
    return s;
  }

  counter(name: string, help: string): (labels?: Labels, by?: number) => void {
    const s = this.get(name, 'counter', help);
    return (labels = {}, by = 1) => {
      const k = labelKey(labels);
      const cur = s.values.get(k);
      s.values.set(k, { labels, value: (cur?.value ?? 0) + by });
    };
  }

  gauge(name: string, help: string): (value: number, labels?: Labels) => void {
    const s = this.get(name, 'gauge', help);
    return (value, labels = {}) => {
      s.values.set(labelKey(labels), { labels, value });
    };
  }

  /** Current value of a series (for tests and /status). */
  value(name: string, labels: Labels = {}): number | undefined {
    return this.series.get(name)?.values.get(labelKey(labels))?.value;
  }

  render(): string {
    const lines: string[] = [];
    for (const [name, s] of this.series) {
      lines.push(`# HELP ${name} ${s.help}`, `# TYPE ${name} ${s.type}`);
      for (const { labels, value } of s.values.values()) {
        const l = Object.entries(labels).map(([k, v]) => `${k}="${escapeLabel(v)}"`).join(',');
        lines.push(`${name}${l ? `{${l}}` : ''} ${value}`);
      }
    }
    return lines.join('\n') + '\n';
  }
}
