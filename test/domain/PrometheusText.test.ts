import { describe, expect, it } from "@effect/vitest"
import * as fc from "effect/FastCheck"
import { escapeLabelValue, type MetricSample, render, validLabelName, validMetricName } from "../../src/domain/PrometheusText.js"

const name = fc.stringMatching(/^[a-zA-Z_][a-zA-Z0-9_]{0,12}$/)
const sample: fc.Arbitrary<MetricSample> = fc.record({
  name,
  help: fc.string(),
  type: fc.constantFrom("counter" as const, "gauge" as const),
  labels: fc.array(fc.tuple(name.filter((n) => !n.startsWith("__")), fc.string()), { maxLength: 3 }),
  value: fc.oneof(fc.double(), fc.integer())
})

/** Undoes escapeLabelValue: what a Prometheus parser reads back. */
const unescape = (text: string) => text.replace(/\\(.)/g, (_, c: string) => (c === "n" ? "\n" : c))

describe("PrometheusText", () => {
  it("escapes label values so that a parser reads them back, on one line", () => {
    fc.assert(fc.property(fc.string(), (value) => {
      const escaped = escapeLabelValue(value)
      expect(escaped).not.toContain("\n")
      expect(unescape(escaped)).toBe(value)
      // Every quote is escaped: the value cannot end the quoted string early.
      expect(/(^|[^\\])(\\\\)*"/.test(escaped)).toBe(false)
    }))
  })

  it("renders each family's HELP and TYPE once, then one line per sample", () => {
    fc.assert(fc.property(fc.array(sample, { maxLength: 12 }), (samples) => {
      const lines = render(samples).split("\n").filter((l) => l !== "")
      const names = [...new Set(samples.map((s) => s.name))]
      expect(lines.filter((l) => l.startsWith("# TYPE ")).map((l) => l.split(" ")[2])).toEqual(names)
      expect(lines.filter((l) => !l.startsWith("#"))).toHaveLength(samples.length)
      for (const line of lines.filter((l) => !l.startsWith("#"))) {
        expect(line).toMatch(/^[a-zA-Z_:][a-zA-Z0-9_:]*(\{.*\})? (NaN|[+-]Inf|-?[0-9.e+-]+)$/)
      }
    }))
  })

  it("renders a known exposition exactly", () => {
    const text = render([
      { name: "bt_torrents", help: "Torrents", type: "gauge", labels: [["status", "seeding"]], value: 2 },
      { name: "bt_pieces_verified_total", help: "Pieces\nverified", type: "counter", labels: [], value: 7 },
      { name: "bt_torrents", help: "ignored", type: "gauge", labels: [["status", 'a"b']], value: 0 }
    ])
    expect(text).toBe([
      "# HELP bt_torrents Torrents",
      "# TYPE bt_torrents gauge",
      'bt_torrents{status="seeding"} 2',
      'bt_torrents{status="a\\"b"} 0',
      "# HELP bt_pieces_verified_total Pieces\\nverified",
      "# TYPE bt_pieces_verified_total counter",
      "bt_pieces_verified_total 7",
      ""
    ].join("\n"))
  })

  it("leaves out names the format cannot carry", () => {
    expect(validMetricName("bt-peers")).toBe(false)
    expect(validLabelName("__reserved")).toBe(false)
    expect(render([{ name: "bt-peers", help: "", type: "gauge", labels: [], value: 1 }])).toBe("")
    expect(render([{ name: "ok", help: "h", type: "gauge", labels: [["bad-label", "x"]], value: 1 }])).toContain("ok 1")
  })
})
