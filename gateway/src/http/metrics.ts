// Prometheus text exposition of the box's counters (no client library: a handful of series).
import type { FastifyInstance } from 'fastify';

type Labels = Record<string, string>;
const key = (name: string, labels: Labels) =>
  `${name}{${Object.entries(labels).map(([k, v]) => `${k}="${v.replace(/["\\\n]/g, '_')}"`).join(',')}}`;

export class Metrics {
  private readonly counters = new Map<string, { help: string; values: Map<string, number> }>();
  private readonly gauges = new Map<string, { help: string; read: () => number | Promise<number> }>();

  inc(name: string, help: string, labels: Labels = {}, by = 1): void {
    let c = this.counters.get(name);
    if (!c) this.counters.set(name, (c = { help, values: new Map() }));
    const k = key(name, labels);
    c.values.set(k, (c.values.get(k) ?? 0) + by);
  }

  /** `read` may ask the database (async): a gauge that fails to read is left out of that scrape */
  gauge(name: string, help: string, read: () => number | Promise<number>): void {
    this.gauges.set(name, { help, read });
  }

  async render(): Promise<string> {
    const lines: string[] = [];
    for (const [name, c] of this.counters) {
      lines.push(`# HELP ${name} ${c.help}`, `# TYPE ${name} counter`);
      for (const [k, v] of c.values) lines.push(`${k} ${v}`);
    }
    for (const [name, g] of this.gauges) {
      let v: number;
      try { v = await g.read(); } catch { continue; }
      lines.push(`# HELP ${name} ${g.help}`, `# TYPE ${name} gauge`, `${name} ${v}`);
    }
    return lines.join('\n') + '\n';
  }

  /** Counts requests and bytes by listener, route and status. */
  instrument(app: FastifyInstance, listener: string): void {
    app.addHook('onResponse', async (req, reply) => {
      const route = req.routeOptions.url ?? 'unmatched';
      this.inc('drimbox_http_requests_total', 'HTTP requests answered', { listener, route, status: String(reply.statusCode) });
      this.inc('drimbox_http_request_seconds_sum', 'Total time spent answering', { listener, route }, reply.elapsedTime / 1000);
      if (req.bytesOut) this.inc('drimbox_http_response_bytes_total', 'Response body bytes sent', { listener, route }, req.bytesOut);
    });
  }
}
