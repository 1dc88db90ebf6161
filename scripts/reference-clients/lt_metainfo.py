#!/usr/bin/python3
"""libtorrent's reading (and making) of .torrent files, for the metainfo compatibility test
(test/interop/metainfoCompat.test.ts). No network.

  lt_metainfo.py read <file.torrent>...
      One JSON line per file, what libtorrent's torrent_info makes of it:
      {"accepted": true, "infoHash": hex, "infoHashV2": hex or null, "name", "multiFile", "totalLength",
       "files": [{"path", "length", "padding", "executable", "hidden", "symlink"}]}
      or {"accepted": false, "error": libtorrent's message}. Paths and symlink targets are
      "/"-joined and relative to the torrent's folder for a multi-file torrent (as `info --json`).
  lt_metainfo.py create <out.torrent>
      Reads a JSON spec on stdin and writes the torrent create_torrent makes of it:
      {"pieceLength": n, "flags": ["v1_only", "canonical_files", "symlinks", ...],
       "files": [{"path": "root/a", "size": n, "attr": "x" | "h" | "l", "symlink": "root/d"}]}
      Piece hashes are 0x01 bytes (create_torrent takes zeros for a missing hash) (only the metainfo is compared).
      Without "v1_only" (v2 and hybrid), the files are written with pattern bytes in a temporary
      folder and hashed from there: the binding cannot set v2 hashes by hand. With a "transform"
      (a JSON edit of the info dict: {"renameTreeKey": [old, new]}), the made torrent is changed
      before it is written.
"""
import json
import os
import sys
import tempfile

import libtorrent as lt

FLAGS = {"p": lt.file_storage.flag_pad_file, "h": lt.file_storage.flag_hidden,
         "x": lt.file_storage.flag_executable, "l": lt.file_storage.flag_symlink}


def relative(path, name, multi):
    # a single-file v2 torrent's pad file sits under the name too ("one.bin/.pad/9152")
    prefix = name + "/"
    return path[len(prefix):] if path.startswith(prefix) else path


def describe(path):
    try:
        ti = lt.torrent_info(path)
    except RuntimeError as e:
        return {"accepted": False, "error": str(e)}
    fs = ti.files()
    name = ti.name()
    # a single-file torrent's one file is named by `name` itself (a v2 one may have a pad file after it)
    real = [i for i in range(fs.num_files()) if not fs.file_flags(i) & FLAGS["p"]]
    multi = len(real) != 1 or fs.file_path(real[0]) != name
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
    hashes = ti.info_hashes()
    v2 = str(hashes.v2) if hashes.has_v2() else None
    # the v1 hash when there is one (info_hash() prefers the truncated v2 of a hybrid)
    v1 = str(hashes.v1) if hashes.has_v1() else str(ti.info_hash())
    return {"accepted": True, "infoHash": v1, "infoHashV2": v2, "name": name, "multiFile": multi,
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
    if "v1_only" in spec.get("flags", []):
        for i in range(ct.num_pieces()):
            ct.set_hash(i, b"\x01" * 20)
    else:
        hash_real_files(ct, spec["files"])
    made = ct.generate()
    if "transform" in spec:
        old, new = spec["transform"]["renameTreeKey"]
        rename_tree_key(made[b"info"][b"file tree"], old.encode(), new.encode())
    with open(out, "wb") as f:
        f.write(lt.bencode(made))


def hash_real_files(ct, files):
    with tempfile.TemporaryDirectory() as root:
        for f in files:
            if f.get("attr", "") in ("l",):
                continue
            path = os.path.join(root, f["path"])
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as out:
                out.write(bytes((i * 7 + 3) & 0xFF for i in range(f["size"])))
        lt.set_piece_hashes(ct, root)


def rename_tree_key(tree, old, new):
    """Renames the first key `old` found in a (nested) BEP 52 file tree."""
    if old in tree:
        tree[new] = tree.pop(old)
        return True
    return any(isinstance(v, dict) and rename_tree_key(v, old, new) for k, v in tree.items() if k != b"")


if __name__ == "__main__":
    if sys.argv[1] == "read":
        for path in sys.argv[2:]:
            print(json.dumps(describe(path)))
    elif sys.argv[1] == "create":
        create(sys.argv[2])
    else:
        sys.exit(__doc__)
