/**
 * Who may talk to the daemon's HTTP server: the `Host` header against an allowlist (a page on some
 * other site that resolves its own name to 127.0.0.1, DNS rebinding, must not reach the API), and
 * HTTP Basic credentials.
 */
import { fromBase64 } from "./Bytes.js"

export interface Credentials {
  readonly user: string
  readonly password: string
}

/** `user:password` (the password may hold colons); undefined when there is no colon or no user. */
export const parseCredentials = (text: string): Credentials | undefined => {
  const colon = text.indexOf(":")
  if (colon <= 0) return undefined
  return { user: text.slice(0, colon), password: text.slice(colon + 1) }
}

/** The credentials of an `Authorization: Basic ...` header, if it is one and decodes. */
export const basicCredentials = (header: string | undefined): Credentials | undefined => {
  const match = header === undefined ? null : /^Basic\s+([A-Za-z0-9+/]+=*)\s*$/i.exec(header)
  if (match === null) return undefined
  const bytes = fromBase64(match[1]!)
  return bytes === undefined ? undefined : parseCredentials(new TextDecoder().decode(bytes))
}

/** Compares every byte whatever the first difference, so that timing tells nothing of the password. */
const sameText = (a: string, b: string): boolean => {
  const x = new TextEncoder().encode(a)
  const y = new TextEncoder().encode(b)
  let diff = x.length ^ y.length
  for (let i = 0; i < Math.max(x.length, y.length); i++) diff |= (x[i] ?? 0) ^ (y[i] ?? 0)
  return diff === 0
}

export const authorized = (header: string | undefined, expected: Credentials): boolean => {
  const given = basicCredentials(header)
  return given !== undefined && sameText(given.user, expected.user) && sameText(given.password, expected.password)
}

/** The host name of a `Host` header, lower case, without its port or a final dot (IPv6 literals keep no brackets). */
export const hostName = (header: string): string | undefined => {
  const text = header.trim().toLowerCase()
  if (text.startsWith("[")) {
    const end = text.indexOf("]")
    return end < 0 ? undefined : text.slice(1, end)
  }
  const colon = text.indexOf(":")
  const name = (colon < 0 ? text : text.slice(0, colon)).replace(/\.$/, "")
  return name === "" ? undefined : name
}

const ipv4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/
/** Hex groups and colons, at most one `::`, an IPv4 tail allowed: no name can look like this. */
const ipv6 = /^(?=.*:)(?!.*::.*::)[0-9a-f:]*(:(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3})?$/

/**
 * Whether a request naming this `Host` is served: an IP address literal always is (no name to
 * rebind), as are `localhost` and the names allowed; a missing header is not.
 */
export const hostAllowed = (header: string | undefined, allowed: ReadonlyArray<string>): boolean => {
  const name = header === undefined ? undefined : hostName(header)
  if (name === undefined) return false
  if (ipv4.test(name) || ipv6.test(name)) return true
  if (name === "localhost" || name.endsWith(".localhost")) return true
  return allowed.some((a) => a.toLowerCase().replace(/\.$/, "") === name)
}
