#!/usr/bin/python3
"""libtorrent (python3-libtorrent, Debian's /usr/bin/python3) as a loopback-only reference client.

  lt.py seed  <torrent> <data-dir>          [--listen 127.0.0.1:PORT] [--peer IP:PORT]... [--set KEY=VALUE]...
  lt.py leech <torrent|magnet> <out-dir>    [--listen 127.0.0.1:PORT] [--peer IP:PORT]... [--set KEY=VALUE]...
                                            [--timeout SECONDS] [--list-peers]

libtorrent's default settings, except: DHT, LSD, UPnP and NAT-PMP off; uTP off (TCP only, as every
other client of the harness); listening and dialling on the --listen address only (loopback);
several connections per IP allowed (on loopback every peer is 127.0.0.x). `--set` overrides any
settings_pack key (`--set connections_limit=50`; true/false, integers, else strings).

`seed` checks the data, prints `lt: seeding <info hash> on <addr>` once every piece is there and
serves until SIGTERM/SIGINT. `leech` prints `lt: metadata <name> (<n> pieces)` once it has the
torrent's metadata (at once from a .torrent, from a peer for a magnet link), `lt: progress ...`
each second and, once every piece is verified on disk, `lt: done in <s> s (<MiB/s> MiB/s)`, then
exits 0; 124 on --timeout, 1 on a torrent error. `--peer` adds a peer to dial besides the tracker's.
With `--list-peers`, each progress line is followed by `lt: peers IP:PORT/SOURCE ...`, SOURCE being
libtorrent's peer source bits (1 tracker, 2 DHT, 4 PEX, 8 LSD, 32 incoming).
Why a peer left (libtorrent's words) goes to stderr as `lt: peer: ...`.
"""
import argparse
import signal
import sys
import time

import libtorrent as lt


def parse_value(text):
    if text in ("true", "false"):
        return text == "true"
    try:
        return int(text)
    except ValueError:
        return text


def session_for(listen, overrides):
    host = listen.rsplit(":", 1)[0]
    settings = {
        "listen_interfaces": listen,
        "outgoing_interfaces": host,
        "enable_dht": False,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "enable_incoming_utp": False,
        "enable_outgoing_utp": False,
        "allow_multiple_connections_per_ip": True,
        "alert_mask": lt.alert_category.error | lt.alert_category.status | lt.alert_category.peer | lt.alert_category.connect,
    }
    for pair in overrides:
        key, _, value = pair.partition("=")
        settings[key] = parse_value(value)
    return lt.session(settings)


def add_params(source, save_path):
    if source.startswith("magnet:"):
        params = lt.parse_magnet_uri(source)
    else:
        params = lt.add_torrent_params()
        params.ti = lt.torrent_info(source)
    params.save_path = save_path
    return params


def add_peers(handle, peers):
    for peer in peers:
        host, _, port = peer.rpartition(":")
        handle.connect_peer((host, int(port)))


def torrent_errors(session):
    """The torrent's errors since the last call; on the way, says on stderr why each peer left."""
    errors = []
    for a in session.pop_alerts():
        if isinstance(a, (lt.torrent_error_alert, lt.file_error_alert)):
            errors.append(a.message())
        elif isinstance(a, (lt.peer_disconnected_alert, lt.peer_error_alert)):
            print(f"lt: peer: {a.message()}", file=sys.stderr, flush=True)
    return errors


def seed(session, handle, args, stopping):
    announced = False
    while not stopping():
        status = handle.status()
        errors = torrent_errors(session)
        if errors:
            print("lt: error: " + "; ".join(errors), file=sys.stderr, flush=True)
            return 1
        if not announced and status.is_seeding:
            print(f"lt: seeding {status.info_hashes.v1} on {args.listen}", flush=True)
            announced = True
        if announced and args.peer:
            add_peers(handle, args.peer)  # a peer we dial may have left and come back
        time.sleep(1 if announced else 0.1)
    return 0


def leech(session, handle, args, stopping):
    started = time.monotonic()
    last_report = 0.0
    has_metadata = False
    while not stopping():
        status = handle.status()
        elapsed = time.monotonic() - started
        if not has_metadata and status.has_metadata:
            has_metadata = True
            info = handle.torrent_file()
            print(f"lt: metadata {info.name()} ({info.num_pieces()} pieces)", flush=True)
        errors = torrent_errors(session)
        if errors:
            print("lt: error: " + "; ".join(errors), file=sys.stderr, flush=True)
            return 1
        if status.is_seeding:
            size_mib = status.total_wanted / 1048576
            print(f"lt: done in {elapsed:.3f} s ({size_mib / max(elapsed, 1e-9):.1f} MiB/s)", flush=True)
            return 0
        if args.timeout > 0 and elapsed > args.timeout:
            print(f"lt: timeout after {args.timeout} s", file=sys.stderr, flush=True)
            return 124
        if elapsed - last_report >= 1:
            last_report = elapsed
            print(f"lt: progress={status.progress * 100:.1f}% peers={status.num_peers} "
                  f"down={status.download_rate / 1048576:.1f}MiB/s", flush=True)
            if args.list_peers:
                peers = " ".join(f"{p.ip[0]}:{p.ip[1]}/{p.source}" for p in handle.get_peer_info())
                print(f"lt: peers {peers}", flush=True)
        time.sleep(0.05)
    return 130


def main():
    parser = argparse.ArgumentParser(prog="lt.py", description="libtorrent as a loopback-only reference client")
    parser.add_argument("mode", choices=["seed", "leech"])
    parser.add_argument("source", help="a .torrent file (or, to leech, a magnet link)")
    parser.add_argument("path", help="the folder holding (seed) or receiving (leech) the torrent's files")
    parser.add_argument("--listen", default="127.0.0.1:6881", help="loopback ip:port to listen and dial from")
    parser.add_argument("--peer", action="append", default=[], help="ip:port of a peer to dial (repeatable)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a settings_pack override")
    parser.add_argument("--timeout", type=float, default=0, help="leech: give up after this many seconds (0: never)")
    parser.add_argument("--list-peers", action="store_true", help="leech: list the connected peers and their sources each second")
    args = parser.parse_args()
    if not args.listen.startswith("127."):
        parser.error("--listen must be a 127.0.0.0/8 address")
    if args.mode == "seed" and args.source.startswith("magnet:"):
        parser.error("seed needs a .torrent file")

    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(143))
    signal.signal(signal.SIGINT, lambda *_: stop.append(130))
    session = session_for(args.listen, args.set)
    handle = session.add_torrent(add_params(args.source, args.path))
    add_peers(handle, args.peer)
    run = seed if args.mode == "seed" else leech
    code = run(session, handle, args, lambda: bool(stop))
    session.pause()
    return stop[0] if stop else code


if __name__ == "__main__":
    sys.exit(main())
