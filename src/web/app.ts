/**
 * The daemon's web page: a table of torrents kept live by the event stream (`/api/v1/events`),
 * forms to add a magnet link or upload a .torrent, buttons to pause, resume and remove, and a
 * torrent's files (wanted or not) and peers. Everything goes through the REST API; text from the
 * daemon (torrent and file names, peer clients) only ever lands in `textContent`.
 */
import { formatBytes, formatEta, formatPercent, formatRate } from "./format.js"

interface TorrentView {
  readonly id: number
  readonly infoHash: string
  readonly name: string | null
  readonly status: string
  readonly progress: number
  readonly sizes: { readonly total: number; readonly verified: number }
  readonly rates: { readonly download: number; readonly upload: number }
  readonly peers: number
  readonly eta: number | null
  readonly ratio: number
  readonly error: string | null
}

interface SessionView {
  readonly rates: { readonly download: number; readonly upload: number }
  readonly torrents: { readonly total: number }
}

interface FileView {
  readonly index: number
  readonly path: string
  readonly length: number
  readonly progress: number
  readonly priority: string
  readonly wanted: boolean
}

interface PeerView {
  readonly address: string
  readonly client: string
  readonly transport: string
  readonly encrypted: boolean
  readonly inbound: boolean
  readonly progress: number
  readonly downloadRate: number
  readonly uploadRate: number
}

interface ProgressEvent {
  readonly id: number
  readonly verifiedBytes: number
  readonly totalBytes: number
  readonly downloadRate: number
  readonly uploadRate: number
  readonly peers: number
  readonly progress: number
}

const api = "/api/v1"
const torrents = new Map<number, TorrentView>()
const state: { selected: number | undefined } = { selected: undefined }

const byId = <T extends HTMLElement>(id: string): T => document.getElementById(id) as T

/** An element with attributes and children; text children become text nodes (never markup). */
const el = (tag: string, attributes: Record<string, string> = {}, ...children: Array<Node | string>): HTMLElement => {
  const node = document.createElement(tag)
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value)
  node.append(...children)
  return node
}

const button = (label: string, accessibleName: string, onClick: () => void): HTMLElement => {
  const b = el("button", { type: "button", "aria-label": accessibleName }, label)
  b.addEventListener("click", onClick)
  return b
}

const say = (text: string, isError = false): void => {
  const message = byId("message")
  message.textContent = text
  message.classList.toggle("error", isError)
}

/** A request to the API; a failure is said on the page and comes back as undefined (204: an empty object). */
const call = async <A>(method: string, path: string, body?: BodyInit, contentType?: string): Promise<A | undefined> => {
  try {
    const response = await fetch(`${api}${path}`, { method, ...(body === undefined ? {} : { body }), headers: contentType === undefined ? {} : { "content-type": contentType } })
    if (response.status === 204) return {} as A
    const json = (await response.json()) as A & { error?: { message: string } }
    if (!response.ok) {
      say(json.error?.message ?? `${method} ${path}: ${response.status}`, true)
      return undefined
    }
    return json
  } catch (e) {
    say(`${method} ${path}: ${String(e)}`, true)
    return undefined
  }
}

const displayName = (t: TorrentView) => t.name ?? t.infoHash

const progressCell = (fraction: number, label: string): HTMLElement => {
  const bar = el("progress", { max: "1", value: String(fraction), "aria-label": label })
  return el("td", { class: "progress" }, bar, " ", el("span", { class: "percent" }, formatPercent(fraction)))
}

const number = (text: string, name: string) => el("td", { class: `number ${name}` }, text)

/** A torrent's row, changed in place as its torrent changes (so that a focused button keeps the focus). */
interface Row {
  readonly tr: HTMLElement
  readonly cells: ReadonlyArray<HTMLElement>
  readonly toggle: HTMLElement
  readonly details: HTMLElement
  readonly remove: HTMLElement
}

const rows = new Map<number, Row>()

const isRunning = (t: TorrentView) => t.status !== "paused" && t.status !== "finished" && t.status !== "error"

const makeRow = (id: number): Row => {
  const current = () => torrents.get(id)
  const toggle = button("Pause", "", () => {
    const t = current()
    if (t !== undefined) void act(id, isRunning(t) ? "pause" : "resume")
  })
  const details = button("Details", "", () => void select(id))
  const remove = button("Remove", "", () => {
    const t = current()
    if (t !== undefined) void removeTorrent(t)
  })
  const cells = ["name", "status", "progress", "number size", "number down", "number up", "number peers", "number eta", "number ratio"].map((c) =>
    c === "progress" ? progressCell(0, "") : el("td", { class: c }))
  const tr = el("tr", { "data-id": String(id) }, ...cells, el("td", { class: "actions" }, toggle, details, remove))
  return { tr, cells, toggle, details, remove }
}

const setText = (node: HTMLElement, text: string) => {
  if (node.textContent !== text) node.textContent = text
}

const updateRow = (row: Row, t: TorrentView): void => {
  const name = displayName(t)
  const [nameCell, status, progress, size, down, up, peers, eta, ratio] = row.cells as [HTMLElement, ...Array<HTMLElement>]
  row.tr.dataset["infoHash"] = t.infoHash
  row.tr.classList.toggle("selected", state.selected === t.id)
  setText(nameCell, name)
  setText(status!, t.status)
  status!.className = `status status-${t.status}`
  status!.title = t.error ?? ""
  const bar = progress!.querySelector("progress")!
  bar.value = t.progress
  bar.setAttribute("aria-label", `Progress of ${name}`)
  setText(progress!.querySelector(".percent") as HTMLElement, formatPercent(t.progress))
  setText(size!, t.sizes.total > 0 ? formatBytes(t.sizes.total) : "—")
  setText(down!, formatRate(t.rates.download))
  setText(up!, formatRate(t.rates.upload))
  setText(peers!, String(t.peers))
  setText(eta!, formatEta(t.eta))
  setText(ratio!, t.ratio.toFixed(2))
  const verb = isRunning(t) ? "Pause" : "Resume"
  setText(row.toggle, verb)
  row.toggle.setAttribute("aria-label", `${verb} ${name}`)
  row.details.setAttribute("aria-label", `Details of ${name}`)
  row.remove.setAttribute("aria-label", `Remove ${name}`)
}

const renderTorrents = (): void => {
  const body = byId("torrents").querySelector("tbody")!
  for (const [id, row] of rows) {
    if (torrents.has(id)) continue
    row.tr.remove()
    rows.delete(id)
  }
  for (const t of [...torrents.values()].sort((a, b) => a.id - b.id)) {
    let row = rows.get(t.id)
    if (row === undefined) {
      row = makeRow(t.id)
      rows.set(t.id, row)
      body.append(row.tr)
    }
    updateRow(row, t)
  }
  byId("empty").hidden = torrents.size > 0
  byId("total-count").textContent = String(torrents.size)
}

const renderSession = (s: SessionView): void => {
  byId("total-down").textContent = formatRate(s.rates.download)
  byId("total-up").textContent = formatRate(s.rates.upload)
}

const refreshTorrent = async (id: number): Promise<void> => {
  const t = await call<TorrentView>("GET", `/torrents/${id}`)
  if (t === undefined) return
  torrents.set(id, t)
  renderTorrents()
}

const act = async (id: number, verb: "pause" | "resume"): Promise<void> => {
  const t = await call<TorrentView>("POST", `/torrents/${id}/${verb}`)
  if (t === undefined) return
  torrents.set(id, t)
  renderTorrents()
  say(`${verb === "pause" ? "Paused" : "Resumed"} ${displayName(t)}.`)
}

const removeTorrent = async (t: TorrentView): Promise<void> => {
  if (!window.confirm(`Remove ${displayName(t)}? Its downloaded files stay on disk.`)) return
  if ((await call<object>("DELETE", `/torrents/${t.id}`)) === undefined) return
  torrents.delete(t.id)
  if (state.selected === t.id) closeDetails()
  renderTorrents()
  say(`Removed ${displayName(t)}.`)
}

const fileRow = (id: number, f: FileView): HTMLElement => {
  const box = el("input", { type: "checkbox", id: `file-${f.index}`, ...(f.wanted ? { checked: "" } : {}) }) as HTMLInputElement
  box.addEventListener("change", () => void setWanted(id, f.index, box.checked))
  return el(
    "tr",
    { "data-index": String(f.index) },
    el("td", {}, box),
    el("td", { class: "name" }, el("label", { for: `file-${f.index}` }, f.path)),
    number(formatBytes(f.length), "size"),
    progressCell(f.progress, `Progress of ${f.path}`),
    el("td", { class: "priority" }, f.priority)
  )
}

const peerRow = (p: PeerView): HTMLElement => {
  const flags = [p.encrypted ? "encrypted" : "", p.inbound ? "inbound" : "outbound"].filter((x) => x !== "").join(", ")
  return el("tr", {}, el("td", {}, p.address), el("td", {}, p.client), el("td", {}, p.transport), progressCell(p.progress, `Progress of peer ${p.address}`),
    number(formatRate(p.downloadRate), "down"), number(formatRate(p.uploadRate), "up"), el("td", {}, flags))
}

const renderDetails = async (id: number): Promise<void> => {
  const [files, peers] = await Promise.all([
    call<{ files: ReadonlyArray<FileView> }>("GET", `/torrents/${id}/files`),
    call<{ peers: ReadonlyArray<PeerView> }>("GET", `/torrents/${id}/peers`)
  ])
  if (state.selected !== id) return
  const t = torrents.get(id)
  byId("details-heading").textContent = `Details of ${t === undefined ? `torrent ${id}` : displayName(t)}`
  byId("files").querySelector("tbody")!.replaceChildren(...(files?.files ?? []).map((f) => fileRow(id, f)))
  byId("files-empty").hidden = (files?.files.length ?? 0) > 0
  byId("peers").querySelector("tbody")!.replaceChildren(...(peers?.peers ?? []).map(peerRow))
  byId("peers-empty").hidden = (peers?.peers.length ?? 0) > 0
}

const setWanted = async (id: number, index: number, wanted: boolean): Promise<void> => {
  await call("PUT", `/torrents/${id}/files`, JSON.stringify(wanted ? { wanted: [index] } : { unwanted: [index] }), "application/json")
  await renderDetails(id)
}

const select = async (id: number): Promise<void> => {
  state.selected = id
  byId("details").hidden = false
  renderTorrents()
  await renderDetails(id)
  byId("details-heading").focus()
}

const closeDetails = (): void => {
  state.selected = undefined
  byId("details").hidden = true
  renderTorrents()
}

const added = (t: TorrentView | undefined): void => {
  if (t === undefined) return
  torrents.set(t.id, t)
  renderTorrents()
  say(`Added ${displayName(t)}.`)
}

const paused = () => (byId("add-paused") as HTMLInputElement).checked

const wireForms = (): void => {
  const magnetForm = byId<HTMLFormElement>("add-magnet")
  magnetForm.addEventListener("submit", (event) => {
    event.preventDefault()
    const input = byId<HTMLInputElement>("magnet")
    void call<TorrentView>("POST", "/torrents", JSON.stringify({ magnet: input.value.trim(), paused: paused() }), "application/json").then((t) => {
      if (t !== undefined) input.value = ""
      added(t)
    })
  })
  const fileForm = byId<HTMLFormElement>("add-file")
  fileForm.addEventListener("submit", (event) => {
    event.preventDefault()
    const input = byId<HTMLInputElement>("torrent-file")
    const file = input.files?.[0]
    if (file === undefined) return say("Choose a .torrent file first.", true)
    void call<TorrentView>("POST", `/torrents?paused=${paused()}`, file, "application/x-bittorrent").then((t) => {
      if (t !== undefined) fileForm.reset()
      added(t)
    })
  })
  byId("close-details").addEventListener("click", closeDetails)
}

/** Progress carries what a row shows while it runs; the rest comes from the torrent itself. */
const onProgress = (p: ProgressEvent): void => {
  const t = torrents.get(p.id)
  if (t === undefined) return
  const remaining = p.totalBytes - p.verifiedBytes
  torrents.set(p.id, {
    ...t,
    progress: p.progress,
    sizes: { ...t.sizes, total: p.totalBytes, verified: p.verifiedBytes },
    rates: { download: p.downloadRate, upload: p.uploadRate },
    peers: p.peers,
    eta: remaining <= 0 ? 0 : p.downloadRate > 0 ? Math.ceil(remaining / p.downloadRate) : null
  })
  renderTorrents()
}

const follow = (): void => {
  const connection = byId("connection")
  const events = new EventSource(`${api}/events`)
  const on = <A>(name: string, f: (data: A) => void) =>
    events.addEventListener(name, (e) => f(JSON.parse((e as MessageEvent<string>).data) as A))
  events.addEventListener("open", () => {
    connection.dataset["state"] = "live"
    connection.textContent = "live"
  })
  events.addEventListener("error", () => {
    connection.dataset["state"] = "reconnecting"
    connection.textContent = "reconnecting…"
  })
  on<{ torrents: ReadonlyArray<TorrentView>; session: SessionView }>("snapshot", (s) => {
    torrents.clear()
    for (const t of s.torrents) torrents.set(t.id, t)
    renderTorrents()
    renderSession(s.session)
  })
  on<SessionView>("stats", renderSession)
  on<ProgressEvent>("Progress", onProgress)
  for (const name of ["Added", "StateChanged", "Completed", "Error", "Resumed"]) on<{ id: number }>(name, (e) => void refreshTorrent(e.id))
  on<{ id: number }>("Removed", (e) => {
    torrents.delete(e.id)
    if (state.selected === e.id) closeDetails()
    renderTorrents()
  })
}

/** While a torrent's details are open, its peers and file progress are read again every few seconds. */
const pollDetails = (): void => {
  setInterval(() => {
    if (state.selected !== undefined && !document.hidden) void renderDetails(state.selected)
  }, 3000)
}

wireForms()
follow()
pollDetails()
