/**
 * Prometheus's text exposition format (version 0.0.4): each metric family's `# HELP` and `# TYPE`
 * lines, then one line per sample, `name{label="value",...} number`.
 */

export type MetricType = "counter" | "gauge"

export interface MetricSample {
  readonly name: string
  readonly help: string
  readonly type: MetricType
  readonly labels: ReadonlyArray<readonly [string, string]>
  readonly value: number
}

export const contentType = "text/plain; version=0.0.4; charset=utf-8"

const metricName = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/
const labelName = /^[a-zA-Z_][a-zA-Z0-9_]*$/

/** Whether the format can carry this name (a metric name) or label name; others are left out. */
export const validMetricName = (name: string): boolean => metricName.test(name)
export const validLabelName = (name: string): boolean => labelName.test(name) && !name.startsWith("__")

/** A label value in double quotes: backslash, quote and newline escaped. */
export const escapeLabelValue = (value: string): string =>
  value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n")

const escapeHelp = (text: string): string => text.replace(/\\/g, "\\\\").replace(/\n/g, "\\n")

const formatValue = (value: number): string =>
  Number.isNaN(value) ? "NaN" : value === Infinity ? "+Inf" : value === -Infinity ? "-Inf" : String(value)

const sampleLine = (sample: MetricSample): string => {
  const labels = sample.labels.filter(([name]) => validLabelName(name))
  const body = labels.length === 0 ? "" : `{${labels.map(([k, v]) => `${k}="${escapeLabelValue(v)}"`).join(",")}}`
  return `${sample.name}${body} ${formatValue(sample.value)}`
}

/**
 * The exposition of these samples, grouped by name in order of first appearance; a family's help
 * and type are its first sample's. Samples with a name the format cannot carry are left out.
 */
export const render = (samples: ReadonlyArray<MetricSample>): string => {
  const families = new Map<string, Array<MetricSample>>()
  for (const sample of samples) {
    if (!validMetricName(sample.name)) continue
    const family = families.get(sample.name)
    if (family === undefined) families.set(sample.name, [sample])
    else family.push(sample)
  }
  const lines: Array<string> = []
  for (const [name, family] of families) {
    lines.push(`# HELP ${name} ${escapeHelp(family[0]!.help)}`, `# TYPE ${name} ${family[0]!.type}`)
    for (const sample of family) lines.push(sampleLine(sample))
  }
  return lines.length === 0 ? "" : `${lines.join("\n")}\n`
}
