#!/usr/bin/python3
"""libtorrent's reading (and making) of .torrent files, for the metainfo compatibility test
(test/interop/metainfoCompat.test.ts). No network.

  lt_metainfo.py read <file.torrent>...
      One JSON line per file, what libtorrent's torrent_info makes of it:
      {"accepted": true, "infoHash": hex, "name", "multiFile", "totalLength",
       "files": [{"path", "length", "padding", "executable", "hidden", "symlink"}]}
      or {"accepted": false, "error": libtorrent's message}. Paths and symlink targets are
      "/"-joined and relative to the torrent's folder for a multi-file torrent (as `info --json`).
  lt_metainfo.py create <out.torrent>
      Reads a JSON spec on stdin and writes the torrent create_torrent makes of it:
      {"pieceLength": n, "flags": ["v1_only", "canonical_files", "symlinks", ...],
       "files": [{"path": "root/a", "size": n, "attr": "x" | "h" | "l", "symlink": "root/d"}]}
      Piece hashes are 0x01 bytes (create_torrent takes zeros for a missing hash) (only the metainfo is compared).
"""
import json
import sys

import libtorrent as lt

FLAGS = {"p": lt.file_storage.flag_pad_file, "h": lt.file_storage.flag_hidden,
         "x": lt.file_storage.flag_executable, "l": lt.file_storage.flag_symlink}


def relative(path, name, multi):
    prefix = name + "/"
    return path[len(prefix):] if multi and path.startswith(prefix) else path


def describe(path):
    try:
        ti = lt.torrent_info(path)
    except RuntimeError as e:
        return {"accepted": False, "error": str(e)}
    fs = ti.files()
    name = ti.name()
    # a single-file torrent's one file is named by `name` itself
    multi = fs.num_files() > 1 or fs.file_path(0) != name
    files = []
    for i in range(fs.num_files()):
        flags = fs.file_flags(i)
        is_link = bool(flags & FLAGS["l"])
        files.append({
            "path": relative(fs.file_path(i), name, multi),
            "length": fs.file_size(i),
            "padding": bool(flags & FLAGS["p"]),
            "executable": bool(flags & FLAGS["x"]),
            "hidden": bool(flags & FLAGS["h"]),
            "symlink": relative(fs.symlink(i), name, multi) if is_link else None,
        })
    return {"accepted": True, "infoHash": str(ti.info_hash()), "name": name, "multiFile": multi,
            "totalLength": fs.total_size(), "files": files}


def create(out):
    spec = json.load(sys.stdin)
    fs = lt.file_storage()
    for f in spec["files"]:
        flags = 0
        for letter in f.get("attr", ""):
            flags |= FLAGS[letter]
        fs.add_file(f["path"], f["size"], flags, 0, f.get("symlink", ""))
    flags = 0
    for flag in spec.get("flags", []):
        flags |= getattr(lt.create_torrent, flag)
    ct = lt.create_torrent(fs, spec["pieceLength"], flags=flags)
    for i in range(ct.num_pieces()):
        ct.set_hash(i, b"\x01" * 20)
    with open(out, "wb") as f:
        f.write(lt.bencode(ct.generate()))


if __name__ == "__main__":
    if sys.argv[1] == "read":
        for path in sys.argv[2:]:
            print(json.dumps(describe(path)))
    elif sys.argv[1] == "create":
        create(sys.argv[2])
    else:
        sys.exit(__doc__)
