/**
 * The payload and .torrent of a loopback swarm: pseudo-random files (an AES-CTR stream, so a seed
 * gives the same bytes, hence the same info hash, everywhere), written in 1 MiB chunks while their
 * piece hashes and the SHA-256 of the whole payload are computed, so that 1 GiB never sits in memory.
 */
import { createCipheriv, createHash, type Hash } from "node:crypto"
import { createReadStream } from "node:fs"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import * as Bencode from "../../src/domain/Bencode.js"
import { concatBytes } from "../../src/domain/Bytes.js"

export interface PayloadOptions {
  /** The folder the payload goes into (`<dataDir>/payload.bin`, or `<dataDir>/payload/file_NNNN.bin`). */
  readonly dataDir: string
  readonly sizeBytes: number
  readonly files: number
  readonly pieceLength: number
  readonly seed: string
}

export interface PayloadFile {
  /** Path inside the torrent's folder (the file name alone for a single-file torrent). */
  readonly path: ReadonlyArray<string>
  readonly length: number
}

export interface Payload {
  /** `payload.bin` or `payload`. */
  readonly name: string
  /** `<dataDir>/<name>`. */
  readonly dataPath: string
  readonly files: ReadonlyArray<PayloadFile>
  /** SHA-256 (hex) of every file concatenated in torrent order. */
  readonly sha256: string
  /** The concatenated SHA-1 of every piece. */
  readonly pieces: Uint8Array
}

const chunkBytes = 1 << 20

/**
 * `files` lengths adding up to `total`, deliberately unequal and not multiples of a piece (so
 * that pieces span files).
 */
export const fileLengths = (total: number, files: number): Array<number> => {
  if (files === 1) return [total]
  const weights = Array.from({ length: files }, (_, i) => i + 1)
  const sum = weights.reduce((a, b) => a + b, 0)
  const lengths = weights.slice(0, -1).map((w) => Math.floor((total * w) / sum) + 7 * w)
  return [...lengths, total - lengths.reduce((a, b) => a + b, 0)]
}

/** Cuts a byte stream into pieces and hashes each. */
class PieceHasher {
  private readonly hashes: Array<Uint8Array> = []
  private current: Hash = createHash("sha1")
  private filled = 0
  constructor(private readonly pieceLength: number) {}

  update(bytes: Uint8Array): void {
    let at = 0
    while (at < bytes.length) {
      const take = Math.min(this.pieceLength - this.filled, bytes.length - at)
      this.current.update(bytes.subarray(at, at + take))
      this.filled += take
      at += take
      if (this.filled === this.pieceLength) this.flush()
    }
  }

  digest(): Uint8Array {
    if (this.filled > 0) this.flush()
    return concatBytes(this.hashes)
  }

  private flush(): void {
    this.hashes.push(new Uint8Array(this.current.digest()))
    this.current = createHash("sha1")
    this.filled = 0
  }
}

/** Writes the payload and returns what the torrent needs. */
export const writePayload = async (options: PayloadOptions): Promise<Payload> => {
  const single = options.files === 1
  const name = single ? "payload.bin" : "payload"
  const dataPath = path.join(options.dataDir, name)
  const files: Array<PayloadFile> = fileLengths(options.sizeBytes, options.files).map((length, i) => ({
    path: single ? [name] : [`file_${String(i).padStart(4, "0")}.bin`],
    length
  }))
  await fs.mkdir(single ? options.dataDir : dataPath, { recursive: true })
  const key = createHash("sha256").update(options.seed).digest()
  const stream = createCipheriv("aes-128-ctr", key.subarray(0, 16), key.subarray(16))
  const zeros = new Uint8Array(chunkBytes)
  const pieces = new PieceHasher(options.pieceLength)
  const whole = createHash("sha256")
  for (const file of files) {
    const handle = await fs.open(single ? dataPath : path.join(dataPath, ...file.path), "w")
    try {
      for (let written = 0; written < file.length; ) {
        const chunk = stream.update(zeros.subarray(0, Math.min(chunkBytes, file.length - written)))
        pieces.update(chunk)
        whole.update(chunk)
        await handle.write(chunk)
        written += chunk.length
      }
    } finally {
      await handle.close()
    }
  }
  return { name, dataPath, files, sha256: whole.digest("hex"), pieces: pieces.digest() }
}

/** The bencoded info dictionary of a payload. */
export const infoOf = (payload: Payload, pieceLength: number, isPrivate: boolean): Bencode.BencodeDict => {
  const fields: Record<string, Bencode.Bencode | undefined> = {
    name: Bencode.text(payload.name),
    "piece length": Bencode.int(pieceLength),
    pieces: payload.pieces,
    private: isPrivate ? Bencode.int(1) : undefined
  }
  if (payload.files.length === 1) fields["length"] = Bencode.int(payload.files[0]!.length)
  else fields["files"] = payload.files.map((f) => Bencode.dict({ length: Bencode.int(f.length), path: f.path.map(Bencode.text) }))
  return Bencode.dict(fields)
}

/** SHA-256 of the files under `root` (a torrent's output folder) in torrent order, or why not. */
export const payloadSha256 = async (root: string, payload: Pick<Payload, "name" | "files">): Promise<string> => {
  const paths = payload.files.length === 1
    ? [path.join(root, payload.name)]
    : payload.files.map((f) => path.join(root, payload.name, ...f.path))
  const hash = createHash("sha256")
  for (const [i, file] of paths.entries()) {
    const size = await fs.stat(file).then((s) => s.size, () => -1)
    if (size !== payload.files[i]!.length) return `size of ${path.relative(root, file)}: ${size}`
    for await (const chunk of createReadStream(file, { highWaterMark: chunkBytes })) hash.update(chunk as Buffer)
  }
  return hash.digest("hex")
}
