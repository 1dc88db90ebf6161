#!/usr/bin/python3
"""libtorrent's create_torrent (python3-libtorrent, Debian's /usr/bin/python3): makes a torrent of a
file or folder, as libtorrent 2 (qBittorrent) makes them.

  lt-create.py <v1|v2|hybrid> <file-or-folder> <out.torrent> [--announce URL] [--piece-length BYTES]

v2 is v2-only (BEP 52), hybrid carries v1 and v2 hashes with pad files (libtorrent's default)."""
import argparse
import os
import sys

import libtorrent as lt

FLAGS = {"v1": lt.create_torrent.v1_only, "v2": lt.create_torrent.v2_only, "hybrid": 0}


def main():
    parser = argparse.ArgumentParser(prog="lt-create.py")
    parser.add_argument("kind", choices=sorted(FLAGS))
    parser.add_argument("source")
    parser.add_argument("out")
    parser.add_argument("--announce")
    parser.add_argument("--piece-length", type=int, default=0)
    args = parser.parse_args()
    source = os.path.abspath(args.source)
    fs = lt.file_storage()
    lt.add_files(fs, source)
    ct = lt.create_torrent(fs, args.piece_length, flags=FLAGS[args.kind])
    if args.announce:
        ct.add_tracker(args.announce)
    lt.set_piece_hashes(ct, os.path.dirname(source))
    with open(args.out, "wb") as f:
        f.write(lt.bencode(ct.generate()))
    hashes = lt.torrent_info(args.out).info_hashes()
    print(f"lt: created v1={hashes.v1 if hashes.has_v1() else '-'} v2={hashes.v2 if hashes.has_v2() else '-'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
