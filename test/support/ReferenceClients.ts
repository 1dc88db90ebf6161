/**
 * The command lines of the reference clients, as seeders and as downloaders, each loopback-only:
 * DHT, LSD/LPD, PEX, UPnP/NAT-PMP and uTP off, listening on and dialling from one 127.x address.
 * scripts/install-deps.sh installs them (the npm ones into `referenceDir`).
 *
 * What each needs on loopback:
 * - aria2 tries an encrypted handshake first, then plain (`--bt-min-crypto-level=plain`); it must
 *   be told to seed forever (`--seed-ratio=0.0`) and to re-announce often, so that it learns of new
 *   leechers and dials them (`--bt-tracker-interval`).
 * - Transmission never dials 127/8 peers (it only answers their connections) and, as a
 *   downloader, exits only at a ratio limit of 0; its settings live in a fresh config folder.
 * - WebTorrent and libtorrent run through scripts/reference-clients (webtorrent.cjs, lt.py).
 */
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { repoRoot } from "./cli.js"

export const referenceDir = process.env["EFFECT_BITTORRENT_REFERENCE_DIR"] ?? "/opt/effect-bittorrent-reference"
export const webtorrentScript = path.join(repoRoot, "scripts/reference-clients/webtorrent.cjs")
export const libtorrentScript = path.join(repoRoot, "scripts/reference-clients/lt.py")
/** Debian's python3, which python3-libtorrent is built for (another python3 may come first on the PATH). */
export const debianPython = "/usr/bin/python3"

export type SeederKind = "aria2" | "transmission" | "webtorrent" | "libtorrent"
export type LeecherKind = "aria2c" | "transmission" | "webtorrent" | "libtorrent"

export interface Command {
  readonly file: string
  readonly args: ReadonlyArray<string>
  readonly env?: Readonly<Record<string, string>>
}

const aria2Common = [
  "--enable-dht=false", "--enable-dht6=false", "--bt-enable-lpd=false", "--enable-peer-exchange=false",
  "--disable-ipv6=true", "--bt-save-metadata=false", "--auto-save-interval=0", "--file-allocation=none",
  "--summary-interval=0", "--show-console-readout=false", "--console-log-level=notice", "--no-conf=true",
  "--bt-require-crypto=false", "--bt-min-crypto-level=plain", "--rpc-save-upload-metadata=false"
]

/**
 * aria2c seeding `torrent` from `dataDir`, re-announcing every `announceS` seconds; `uploadLimit`
 * (aria2's syntax: `1M` is 1 MiB/s) caps what it sends in all.
 */
export const aria2Seeder = (
  torrent: string,
  dataDir: string,
  bind: string,
  port: number,
  options: { readonly announceS?: number; readonly uploadLimit?: string | undefined; readonly extraArgs?: ReadonlyArray<string> } = {}
): Command => ({
  file: "aria2c",
  args: [
    ...aria2Common, `--interface=${bind}`, `--listen-port=${port}`, "--check-integrity=true", "--seed-ratio=0.0",
    `--bt-tracker-interval=${options.announceS ?? 2}`,
    ...(options.uploadLimit === undefined ? [] : [`--max-overall-upload-limit=${options.uploadLimit}`]),
    ...(options.extraArgs ?? []),
    "-d", dataDir, torrent
  ]
})

/** aria2 options (later ones win) for encrypted connections only: MSE with RC4, no plaintext. */
export const aria2RequireCrypto: ReadonlyArray<string> = ["--bt-require-crypto=true", "--bt-min-crypto-level=arc4"]

/** Writes Transmission's settings.json into `configDir`: a seeder (with RPC on `rpcPort`) or a downloader. */
export const writeTransmissionSettings = (
  configDir: string,
  options: { readonly bind: string; readonly port: number; readonly downloadDir: string; readonly rpcPort?: number }
): Promise<void> =>
  fs.mkdir(configDir, { recursive: true }).then(() =>
    fs.writeFile(
      path.join(configDir, "settings.json"),
      JSON.stringify({
        "bind-address-ipv4": options.bind,
        "bind-address-ipv6": "::1",
        "dht-enabled": false,
        "lpd-enabled": false,
        "pex-enabled": false,
        "utp-enabled": false,
        "port-forwarding-enabled": false,
        "peer-port": options.port,
        "peer-port-random-on-start": false,
        "rpc-enabled": options.rpcPort !== undefined,
        "rpc-bind-address": "127.0.0.1",
        "rpc-port": options.rpcPort ?? 9091,
        "rpc-whitelist": "127.0.0.1",
        "rpc-whitelist-enabled": true,
        "rpc-host-whitelist-enabled": false,
        "rpc-authentication-required": false,
        "download-dir": options.downloadDir,
        "incomplete-dir-enabled": false,
        "watch-dir-enabled": false,
        "blocklist-enabled": false,
        encryption: 0,
        // a downloader stops, and transmission-cli exits, at completion
        "ratio-limit-enabled": options.rpcPort === undefined,
        "ratio-limit": 0,
        "idle-seeding-limit-enabled": false,
        "speed-limit-up-enabled": false,
        "speed-limit-down-enabled": false,
        "alt-speed-enabled": false,
        "alt-speed-time-enabled": false,
        "start-added-torrents": true,
        "download-queue-enabled": false,
        "seed-queue-enabled": false,
        "queue-stalled-enabled": false,
        "message-level": 2
      }, null, 2)
    )
  )

/** transmission-daemon in the foreground with the seeder settings in `configDir`. */
export const transmissionDaemon = (configDir: string): Command => ({
  file: "transmission-daemon",
  args: ["-f", "-g", configDir, "--logfile", path.join(configDir, "transmission.log")]
})

export const webtorrent = (mode: "seed" | "leech", source: string, dir: string, bind: string, port: number, timeoutS = 0): Command => ({
  file: process.execPath,
  args: [webtorrentScript, mode, source, dir, String(port), String(timeoutS)],
  env: { BIND: bind, EFFECT_BITTORRENT_REFERENCE_DIR: referenceDir }
})

export const libtorrent = (
  mode: "seed" | "leech",
  source: string,
  dir: string,
  bind: string,
  port: number,
  options: {
    readonly peers?: ReadonlyArray<string>
    readonly timeoutS?: number
    readonly listPeers?: boolean
    /** settings_pack overrides (lt.py --set KEY=VALUE), e.g. uTP only. */
    readonly settings?: Readonly<Record<string, string | number | boolean>>
  } = {}
): Command => ({
  file: debianPython,
  args: [
    libtorrentScript, mode, source, dir, "--listen", `${bind}:${port}`,
    ...(options.peers ?? []).flatMap((p) => ["--peer", p]),
    ...(options.timeoutS === undefined ? [] : ["--timeout", String(options.timeoutS)]),
    ...(options.listPeers === true ? ["--list-peers"] : []),
    ...Object.entries(options.settings ?? {}).flatMap(([key, value]) => ["--set", `${key}=${value}`])
  ]
})

/** A reference downloader of `source` (a .torrent or, but for Transmission's config, a magnet link) into `out`. */
export const leecher = async (
  kind: LeecherKind,
  source: string,
  out: string,
  options: { readonly bind: string; readonly port: number; readonly workDir: string; readonly timeoutS: number; readonly peers?: ReadonlyArray<string> }
): Promise<Command> => {
  switch (kind) {
    case "aria2c":
      return {
        file: "aria2c",
        args: [...aria2Common, `--interface=${options.bind}`, `--listen-port=${options.port}`, "--seed-time=0",
          `--log=${path.join(options.workDir, "aria2.log")}`, "--log-level=notice", "-d", out, source]
      }
    case "transmission": {
      const config = path.join(options.workDir, "transmission")
      await writeTransmissionSettings(config, { bind: options.bind, port: options.port, downloadDir: out })
      return { file: "transmission-cli", args: ["-g", config, "-w", out, source] }
    }
    case "webtorrent":
      return webtorrent("leech", source, out, options.bind, options.port, options.timeoutS)
    case "libtorrent":
      return libtorrent("leech", source, out, options.bind, options.port, {
        timeoutS: options.timeoutS,
        ...(options.peers === undefined ? {} : { peers: options.peers })
      })
  }
}
