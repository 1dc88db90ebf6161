import { describe, expect, it } from "@effect/vitest"
import { FastCheck as fc } from "effect"
import { authorized, basicCredentials, hostAllowed, hostName, parseCredentials } from "../../src/domain/HttpAccess.js"

const base64 = (text: string) => Buffer.from(text, "utf8").toString("base64")
const basic = (user: string, password: string) => `Basic ${base64(`${user}:${password}`)}`

/** Any text, non-ASCII included (whole code points: what a client can encode as UTF-8). */
const textArb = fc.fullUnicodeString({ maxLength: 40 })
const userArb = fc.fullUnicodeString({ minLength: 1, maxLength: 20 }).filter((u) => !u.includes(":"))
const portArb = fc.integer({ min: 0, max: 65535 })
/** Changes the case of some letters, as a client may. */
const recase = (text: string, flips: ReadonlyArray<boolean>) =>
  [...text].map((c, i) => (flips[i % Math.max(1, flips.length)] === true ? c.toUpperCase() : c)).join("")

describe("Basic credentials", () => {
  it.prop("round-trip through an Authorization header, colons and any Unicode in the password", [userArb, textArb], ([user, password]) => {
    expect(basicCredentials(basic(user, password))).toEqual({ user, password })
    expect(authorized(basic(user, password), { user, password })).toBe(true)
  })

  it.prop("the scheme's case and surrounding spaces do not matter", [userArb, textArb, fc.constantFrom("basic", "BASIC", "bAsIc")], ([user, password, scheme]) => {
    expect(basicCredentials(`${scheme}  ${base64(`${user}:${password}`)} `)).toEqual({ user, password })
  })

  it.prop("a wrong user or password is refused", [userArb, textArb, textArb], ([user, password, other]) => {
    fc.pre(other !== password)
    expect(authorized(basic(user, other), { user, password })).toBe(false)
    expect(authorized(basic(`${user}x`, password), { user, password })).toBe(false)
  })

  it.prop("never throws on arbitrary headers; what is not Basic is no credentials", [fc.string()], ([header]) => {
    const parsed = basicCredentials(header)
    if (!/^basic\s/i.test(header)) expect(parsed).toBeUndefined()
    expect(authorized(header, { user: "u", password: "p" })).toBe(parsed?.user === "u" && parsed.password === "p")
  })

  it.each([
    ["no header", undefined],
    ["another scheme", `Bearer ${base64("u:p")}`],
    ["the scheme alone", "Basic"],
    ["not base64", "Basic !!!!"],
    ["base64 of the wrong length", "Basic dTpwc"],
    ["no colon", `Basic ${base64("user")}`],
    ["no user", `Basic ${base64(":password")}`],
    ["two tokens", `Basic ${base64("u:p")} ${base64("u:p")}`]
  ])("refuses %s", (_, header) => {
    expect(basicCredentials(header)).toBeUndefined()
    expect(authorized(header, { user: "u", password: "p" })).toBe(false)
  })

  it("parses user:password from a flag: the password may hold colons, the user may not be empty", () => {
    expect(parseCredentials("admin:se:cret")).toEqual({ user: "admin", password: "se:cret" })
    expect(parseCredentials("admin:")).toEqual({ user: "admin", password: "" })
    expect(parseCredentials(":pw")).toBeUndefined()
    expect(parseCredentials("nocolon")).toBeUndefined()
  })
})

const octet = fc.integer({ min: 0, max: 255 })
const ipv4Arb = fc.tuple(octet, octet, octet, octet).map((o) => o.join("."))
const group = fc.integer({ min: 0, max: 0xffff }).map((n) => n.toString(16))
const ipv6Arb = fc.oneof(
  fc.array(group, { minLength: 8, maxLength: 8 }).map((g) => g.join(":")),
  fc.tuple(fc.array(group, { maxLength: 3 }), fc.array(group, { maxLength: 3 })).map(([a, b]) => `${a.join(":")}::${b.join(":")}`),
  ipv4Arb.map((v4) => `::ffff:${v4}`)
)
const label = fc.stringMatching(/^[a-z][a-z0-9-]{0,10}$/)
const domainArb = fc.array(label, { minLength: 1, maxLength: 3 }).map((l) => [...l, "com"].join("."))

describe("Host allowlist", () => {
  it.prop("IPv4 literals are served, with or without a port", [ipv4Arb, fc.option(portArb)], ([ip, port]) => {
    expect(hostAllowed(port === null ? ip : `${ip}:${port}`, [])).toBe(true)
  })

  it.prop("IPv6 literals are served in brackets, with or without a port, in any case", [ipv6Arb, fc.option(portArb), fc.array(fc.boolean())], ([ip, port, flips]) => {
    const header = recase(port === null ? `[${ip}]` : `[${ip}]:${port}`, flips)
    expect(hostName(header)).toBe(ip)
    expect(hostAllowed(header, [])).toBe(true)
  })

  it.prop("localhost and the allowed names are served in any case, with a port or a final dot; other names are not", [domainArb, domainArb, fc.option(portArb), fc.array(fc.boolean())], ([allowed, other, port, flips]) => {
    fc.pre(allowed !== other)
    const withPort = (name: string) => recase(port === null ? name : `${name}:${port}`, flips)
    expect(hostAllowed(withPort(allowed), [allowed])).toBe(true)
    expect(hostAllowed(withPort(`${allowed}.`), [recase(allowed, flips)])).toBe(true)
    expect(hostAllowed(withPort("localhost"), [])).toBe(true)
    expect(hostAllowed(withPort(`app.localhost`), [])).toBe(true)
    expect(hostAllowed(withPort(other), [allowed])).toBe(false)
    expect(hostAllowed(withPort(`${allowed}.${other}`), [allowed])).toBe(false)
  })

  it.each([
    ["no Host header", undefined],
    ["an empty one", ""],
    ["a port alone", ":9091"],
    ["an unclosed bracket", "[::1"],
    ["a name in brackets", "[evil.com]"],
    ["a name with colons in brackets", "[evil:com]"],
    ["an octet out of range", "256.1.1.1"],
    ["an address inside a name", "127.0.0.1.evil.com"],
    ["a name that starts like localhost", "localhost.evil.com"]
  ])("refuses %s", (_, header) => {
    expect(hostAllowed(header, [])).toBe(false)
  })

  it.prop("never throws on arbitrary headers", [fc.string(), fc.array(fc.string(), { maxLength: 3 })], ([header, allowed]) => {
    expect(typeof hostAllowed(header, allowed)).toBe("boolean")
  })
})
