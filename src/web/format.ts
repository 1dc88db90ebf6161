/**
 * How the web UI writes numbers: sizes and rates in binary units, percentages, durations. No DOM
 * here, so the tests run it under Node.
 */

const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"]

/** `1.5 MiB`: about three significant figures from KiB on, whole bytes below. */
export const formatBytes = (bytes: number): string => {
  if (!Number.isFinite(bytes) || bytes < 1024) return `${Math.max(0, Math.round(Number.isFinite(bytes) ? bytes : 0))} B`
  let value = bytes
  let unit = 0
  // 1023.9 KiB would print as "1024 KiB": it is 1 MiB.
  while ((value >= 1024 || Math.round(value) >= 1024) && unit < units.length - 1) {
    value /= 1024
    unit++
  }
  const text = value.toFixed(value >= 100 ? 0 : value >= 10 ? 1 : 2)
  return `${text.includes(".") ? text.replace(/0+$/, "").replace(/\.$/, "") : text} ${units[unit]}`
}

export const formatRate = (bytesPerSecond: number): string => `${formatBytes(bytesPerSecond)}/s`

/** A fraction as a percentage with one decimal, never rounded up to 100% before it is done. */
export const formatPercent = (fraction: number): string => {
  const tenths = Math.floor(Math.min(1, Math.max(0, fraction)) * 1000)
  return `${(tenths / 10).toFixed(1)}%`
}

/** `2h 5m`, `3m 20s`, `45s`; a dash when unknown. */
export const formatEta = (seconds: number | null): string => {
  if (seconds === null || !Number.isFinite(seconds) || seconds < 0) return "—"
  const s = Math.round(seconds)
  const days = Math.floor(s / 86400)
  const hours = Math.floor((s % 86400) / 3600)
  const minutes = Math.floor((s % 3600) / 60)
  if (days > 0) return `${days}d ${hours}h`
  if (hours > 0) return `${hours}h ${minutes}m`
  if (minutes > 0) return `${minutes}m ${s % 60}s`
  return `${s}s`
}
