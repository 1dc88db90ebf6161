/**
 * The daemon's web UI end to end, in Debian's Chromium driven by playwright-core: the real daemon
 * process (`bittorrent daemon`) and our `seed` command on 127.0.0.1, a magnet link that names the
 * seeder (x.pe, so no tracker or DHT). In the page: add the magnet, watch its progress reach 100%
 * through the event stream, see its files and unselect one, pause it, remove it; then upload its
 * .torrent file, added paused. A screenshot goes to test-output/web-ui.png. Skipped, saying why,
 * where /usr/bin/chromium is absent (CI installs it through scripts/install-deps.sh).
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { existsSync } from "node:fs"
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import * as path from "node:path"
import { chromium, type Page } from "playwright-core"
import * as Bencode from "../../src/domain/Bencode.js"
import { toHex } from "../../src/domain/Bytes.js"
import { cliPath, ensureBuilt, repoRoot } from "../support/cli.js"
import { startProcess } from "../support/Process.js"
import { request } from "../support/restClient.js"
import { multiFileInfo, payloadBytes, sha1, torrentBytes } from "../support/torrent.js"

const chromiumPath = "/usr/bin/chromium"
const chromiumArgs = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
  // No name is looked up (the loopback guard saw a DNS query go out without this): the page is on an IP.
  "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"
]
const screenshot = path.join(repoRoot, "test-output", "web-ui.png")

if (!existsSync(chromiumPath)) console.warn(`web UI test skipped: ${chromiumPath} is absent (scripts/install-deps.sh installs it)`)

/** A folder that goes with the scope. */
const tempDir = (prefix: string) =>
  Effect.acquireRelease(
    Effect.promise(() => mkdtemp(path.join(tmpdir(), prefix))),
    (dir) => Effect.promise(() => rm(dir, { recursive: true, force: true }))
  )

/** Two files, so that the page has one to unselect; written for the seeder with their .torrent. */
const payload = (dir: string) =>
  Effect.promise(async () => {
    const files = [
      { path: ["movie.bin"], data: payloadBytes(1_500_000, 5) },
      { path: ["extras", "notes.txt"], data: payloadBytes(40_000, 6) }
    ]
    const info = multiFileInfo("web-ui-payload", files, 32 * 1024)
    const root = path.join(dir, "web-ui-payload")
    for (const f of files) {
      await mkdir(path.join(root, ...f.path.slice(0, -1)), { recursive: true })
      await writeFile(path.join(root, ...f.path), f.data)
    }
    const torrent = path.join(dir, "payload.torrent")
    await writeFile(torrent, torrentBytes(info, {}))
    return { torrent, root, infoHash: toHex(sha1(Bencode.encode(info))) }
  })

const browserPage = (profile: string) =>
  Effect.acquireRelease(
    Effect.promise(() => chromium.launchPersistentContext(profile, { executablePath: chromiumPath, headless: true, args: chromiumArgs })),
    (context) => Effect.promise(() => context.close())
  ).pipe(Effect.flatMap((context) => Effect.promise(async () => context.pages()[0] ?? (await context.newPage()))))

/** The steps in the page; each waits (bounded) for what the page should come to show. */
const drive = (page: Page, url: string, magnet: string, infoHash: string, torrentFile: string) =>
  Effect.promise(async () => {
    await page.goto(`${url}/web/`)
    await page.locator("#connection[data-state=live]").waitFor({ timeout: 15_000 })
    await page.getByLabel("Magnet link").fill(magnet)
    await page.getByRole("button", { name: "Add magnet" }).click()
    const row = page.locator(`#torrents tr[data-info-hash="${infoHash}"]`)
    await row.locator(".percent", { hasText: "100.0%" }).waitFor({ timeout: 60_000 })
    await row.locator(".status", { hasText: "seeding" }).waitFor({ timeout: 30_000 })
    const name = await row.locator(".name").textContent()
    await page.getByRole("button", { name: `Details of ${name}` }).click()
    await page.getByRole("checkbox", { name: "web-ui-payload/extras/notes.txt" }).uncheck({ timeout: 15_000 })
    await page.locator("#files tr[data-index='1'] .priority", { hasText: "skip" }).waitFor({ timeout: 15_000 })
    await page.getByRole("button", { name: `Pause ${name}` }).click()
    await row.locator(".status", { hasText: "paused" }).waitFor({ timeout: 15_000 })
    await page.getByRole("button", { name: `Resume ${name}` }).waitFor({ timeout: 15_000 })
    await mkdir(path.dirname(screenshot), { recursive: true })
    await page.screenshot({ path: screenshot, fullPage: true })
    page.once("dialog", (dialog) => void dialog.accept())
    await page.getByRole("button", { name: `Remove ${name}` }).click()
    await row.waitFor({ state: "detached", timeout: 15_000 })
    // The event stream may take the row away before the DELETE's answer: the message follows that answer.
    await page.locator("#message", { hasText: /^Removed / }).waitFor({ timeout: 15_000 })
    const removed = await page.locator("#message").textContent()
    // The same torrent again, from its .torrent file this time, added paused.
    await page.getByLabel("Add paused").check()
    await page.getByLabel(".torrent file").setInputFiles(torrentFile)
    await page.getByRole("button", { name: "Upload" }).click()
    await row.locator(".status", { hasText: "paused" }).waitFor({ timeout: 15_000 })
    return { name, removed }
  })

describe("web UI (Chromium)", () => {
  it.live.skipIf(!existsSync(chromiumPath))("adds a magnet link, shows it reach 100% live, unselects a file, pauses and removes it; uploads a .torrent", () =>
    Effect.gen(function* () {
      yield* Effect.promise(() => ensureBuilt())
      const seedDir = yield* tempDir("bt-web-seed-")
      const stateDir = yield* tempDir("bt-web-state-")
      const downloads = yield* tempDir("bt-web-downloads-")
      const profile = yield* tempDir("bt-web-chromium-")
      const { torrent, root, infoHash } = yield* payload(seedDir)
      const seeder = yield* startProcess(process.execPath, [cliPath, "seed", torrent, root, "--port", "0", "--host", "127.0.0.1", "--no-dht"], {
        ready: /listening on 127\.0\.0\.1:\d+/
      })
      const seederPort = /listening on 127\.0\.0\.1:(\d+)/.exec((yield* seeder.output).stderr)![1]
      const daemon = yield* startProcess(process.execPath, [
        cliPath, "daemon", "--rpc-port", "0", "--port", "0", "--host", "127.0.0.1", "--no-dht", "--state-dir", stateDir, "--download-dir", downloads
      ], { ready: /daemon: listening on http:\/\/\S+/ })
      const url = /daemon: listening on (http:\/\/[^\s]+)/.exec((yield* daemon.output).stdout)![1]!
      const page = yield* browserPage(profile)
      const magnet = `magnet:?xt=urn:btih:${infoHash}&dn=web-ui-payload&x.pe=127.0.0.1:${seederPort}`
      const { name, removed } = yield* drive(page, url, magnet, infoHash, torrent)
      expect(name).toBe("web-ui-payload")
      expect(removed).toBe("Removed web-ui-payload.")
      const [uploaded, ...others] = (yield* request(url, "GET", "/api/v1/torrents")).body.torrents
      expect(others).toEqual([])
      expect(uploaded).toMatchObject({ infoHash, name: "web-ui-payload", status: "paused" })
      expect(existsSync(screenshot)).toBe(true)
    }).pipe(Effect.scoped), 180_000)
})
